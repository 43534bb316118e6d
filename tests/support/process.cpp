#include "support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/test_util.hpp"

namespace cairn::test {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& out,
            const std::filesystem::path& err, const std::optional<std::filesystem::path>& in) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    setpgid(0, 0);  // own process group: kill() reaches its children too
    int infd = open(in ? in->c_str() : "/dev/null", O_RDONLY);
    int outfd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int errfd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(infd, 0);
    dup2(outfd, 1);
    dup2(errfd, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

std::optional<int> reap(pid_t pid, bool block) {
  int status = 0;
  pid_t r = waitpid(pid, &status, block ? 0 : WNOHANG);
  if (r != pid) return std::nullopt;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::string cairn_binary() { return CAIRN_BINARY; }

RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
              const std::optional<std::filesystem::path>& input_file) {
  TempDir dir;
  pid_t pid = spawn(argv, dir / "out", dir / "err", input_file);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<int> code;
  while (!(code = reap(pid, false))) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      reap(pid, true);
      code = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return RunResult{*code, slurp(dir / "out"), slurp(dir / "err")};
}

Process::Process(std::vector<std::string> argv, std::filesystem::path log_dir)
    : out_path_(log_dir / "stdout.log"), err_path_(log_dir / "stderr.log") {
  std::filesystem::create_directories(log_dir);
  pid_ = spawn(argv, out_path_, err_path_, std::nullopt);
}

Process::~Process() {
  if (running()) {
    if (!stop(SIGTERM, std::chrono::seconds(10))) stop(SIGKILL, std::chrono::seconds(5));
  }
}

bool Process::running() {
  if (exit_code_) return false;
  exit_code_ = reap(pid_, false);
  return !exit_code_;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return exit_code_;
}

std::optional<int> Process::stop(int sig, std::chrono::milliseconds timeout) {
  if (!running()) return exit_code_;
  kill(-pid_, sig);
  return wait(timeout);
}

std::string Process::stdout_text() const { return slurp(out_path_); }
std::string Process::stderr_text() const { return slurp(err_path_); }

bool Process::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (stdout_text().find(needle) != std::string::npos) return true;
    if (!running()) return stdout_text().find(needle) != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace cairn::test
