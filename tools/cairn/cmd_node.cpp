#include <CLI/CLI.hpp>

#include <csignal>
#include <filesystem>
#include <iostream>

#include "cairn/erasure/params.hpp"
#include "cairn/p2p/identity.hpp"
#include "cairn/shards/settings.hpp"
#include "cairn/shards/store.hpp"
#include "commands.hpp"

namespace cairn::tools {
namespace {

struct NodeSettings {
  std::string data_dir = default_data_dir();
  shards::ShardsSettings shards;
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

  // The network parameters come from the genesis once the chain is wired in;
  // until then the node runs the defaults of DESIGN.md section 2.
  const auto store_dir = std::filesystem::path(s.data_dir) / "store";
  auto store = shards::Store::open(store_dir, erasure::NetworkParams::defaults(), s.shards.store);
  if (!store) return report_error("node", store.error());

  std::cout << "cairn node " << CAIRN_VERSION << "\n"
            << "  node id   " << key->public_key().hex() << (created ? "  (new identity)" : "") << "\n"
            << "  data dir  " << s.data_dir << "\n"
            << "  store     " << store_dir.string() << " (" << (*store)->blob_count() << " blobs)\n"
            << "running; press Ctrl-C to stop" << std::endl;
  const int sig = wait_for_stop_signal();
  std::cout << "received " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", stopping" << std::endl;
  // Flushing is not needed for durability (the WAL holds every write); it
  // spares the next start a log replay.
  if (auto flushed = (*store)->flush(); !flushed) return report_error("node", flushed.error());
  if (auto closed = (*store)->close(); !closed) return report_error("node", closed.error());
  std::cout << "stopped" << std::endl;
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
