#include <CLI/CLI.hpp>

#include <csignal>
#include <filesystem>
#include <iostream>

#include "cairn/p2p/identity.hpp"
#include "commands.hpp"

namespace cairn::tools {
namespace {

struct NodeSettings {
  std::string data_dir = default_data_dir();
};

// Blocks SIGINT/SIGTERM for the process (threads inherit the mask) and waits
// for one of them; returns the signal number.
int wait_for_stop_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

int run_node(const NodeSettings& s) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  std::error_code ec;
  std::filesystem::create_directories(s.data_dir, ec);
  if (ec) {
    return report_error("node", Error{Errc::io_error, "cannot create data dir " + s.data_dir + ": " +
                                                          ec.message()});
  }
  bool created = false;
  auto key = p2p::load_or_create_identity(std::filesystem::path(s.data_dir) / "identity.key", &created);
  if (!key) return report_error("node", key.error());

  std::cout << "cairn node " << CAIRN_VERSION << "\n"
            << "  node id   " << key->public_key().hex() << (created ? "  (new identity)" : "") << "\n"
            << "  data dir  " << s.data_dir << "\n"
            << "running; press Ctrl-C to stop" << std::endl;
  const int sig = wait_for_stop_signal();
  std::cout << "received " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", stopping" << std::endl;
  return kExitOk;
}

}  // namespace

void register_node(CLI::App& app, int& exit_code) {
  auto settings = std::make_shared<NodeSettings>();
  auto* cmd = app.add_subcommand("node", "Run a storage node");
  cmd->add_option("--data-dir", settings->data_dir, "Data directory (identity key, store)")
      ->capture_default_str()->envname("CAIRN_DATA_DIR");
  cmd->callback([settings, &exit_code] { exit_code = run_node(*settings); });
}

}  // namespace cairn::tools
