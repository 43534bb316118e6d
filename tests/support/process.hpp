#pragma once
// A child process for process-level tests: started with argv, stdout and
// stderr captured to files, killed (SIGTERM, then SIGKILL) on destruction so
// no test leaves a process behind.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cairn::test {

// Path of the cairn binary under test (compiled in by CMake).
std::string cairn_binary();

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string out;
  std::string err;
};

// Runs to completion (killed after `timeout`). stdin is /dev/null unless
// `input_file` is given.
RunResult run(const std::vector<std::string>& argv,
              std::chrono::milliseconds timeout = std::chrono::seconds(60),
              const std::optional<std::filesystem::path>& input_file = std::nullopt);

class Process {
 public:
  Process(std::vector<std::string> argv, std::filesystem::path log_dir);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `sig` and waits up to `timeout` for exit; returns the exit code
  // (128 + signal when killed by one), nullopt if still running.
  std::optional<int> stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  std::optional<int> wait(std::chrono::milliseconds timeout);
  std::string stdout_text() const;
  std::string stderr_text() const;
  // Polls stdout until it contains `needle` or the process exits / times out.
  bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::filesystem::path out_path_, err_path_;
};

}  // namespace cairn::test
