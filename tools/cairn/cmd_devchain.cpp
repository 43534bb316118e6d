#include <CLI/CLI.hpp>

#include <asio/any_io_executor.hpp>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>

#include "cairn/contracts/devchain.hpp"
#include "cairn/contracts/rpc.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/p2p/identity.hpp"
#include "cairn/p2p/io_thread.hpp"
#include "commands.hpp"

namespace cairn::tools {
namespace {

struct DevchainSettings {
  std::string listen = "127.0.0.1:8645";
  std::string data_dir = default_data_dir() + "/devchain";
  bool localnet = false;
  std::optional<uint32_t> block_time_ms;
  std::optional<uint64_t> blobs_per_shard;
  std::optional<uint32_t> epoch_blocks;
  std::optional<uint32_t> deadline_blocks;
  contracts::ChainSettings chain;
};

// "HOST:PORT" or "[V6]:PORT".
Status parse_listen(const std::string& s, contracts::RpcServerSettings& rpc) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
    return make_error(Errc::invalid_argument, "--listen '" + s + "' must be HOST:PORT, e.g. 127.0.0.1:8645");
  }
  std::string host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned long port = 0;
  try {
    size_t used = 0;
    port = std::stoul(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    return make_error(Errc::invalid_argument, "--listen '" + s + "': the port is not a number");
  }
  if (port > 65535) return make_error(Errc::invalid_argument, "--listen '" + s + "': port above 65535");
  rpc.host = host;
  rpc.port = static_cast<uint16_t>(port);
  return {};
}

// Parameters for a new chain, or for checking an existing one: nullopt when
// no parameter flag was given (an existing chain keeps its genesis values).
std::optional<erasure::NetworkParams> requested_params(const DevchainSettings& s) {
  if (!s.localnet && !s.block_time_ms && !s.blobs_per_shard && !s.epoch_blocks && !s.deadline_blocks) {
    return std::nullopt;
  }
  erasure::NetworkParams p = s.localnet ? erasure::NetworkParams::localnet() : erasure::NetworkParams::defaults();
  if (s.block_time_ms) p.block_time_ms = *s.block_time_ms;
  if (s.blobs_per_shard) p.blobs_per_shard = *s.blobs_per_shard;
  if (s.epoch_blocks) p.epoch_blocks = *s.epoch_blocks;
  if (s.deadline_blocks) p.deadline_blocks = *s.deadline_blocks;
  return p;
}

int run_devchain(DevchainSettings s) {
  // Block the stop signals before any thread starts (threads inherit the
  // mask); the main thread takes them with sigwait. SIGUSR1 is how the
  // sequencer thread reports a failed block.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  if (auto st = parse_listen(s.listen, s.chain.rpc); !st) return report_error("devchain", st.error());
  std::error_code ec;
  std::filesystem::create_directories(s.data_dir, ec);
  if (ec) {
    return report_error("devchain",
                        Error{Errc::io_error, "cannot create data dir " + s.data_dir + ": " + ec.message()});
  }
  const std::filesystem::path dir(s.data_dir);
  bool created = false;
  auto key = p2p::load_or_create_identity(dir / "sequencer.key", &created);
  if (!key) return report_error("devchain", key.error());

  s.chain.devchain.db_path = (dir / "chain").string();
  auto chain = contracts::DevChain::open(s.chain.devchain, *key, requested_params(s));
  if (!chain) return report_error("devchain", chain.error());
  auto server = contracts::RpcServer::start(**chain, p2p::real_clock(), s.chain.rpc);
  if (!server) return report_error("devchain", server.error());

  const contracts::ChainInfo& info = (*chain)->info();
  std::cout << "cairn devchain " << CAIRN_VERSION << "\n"
            << "  listening   " << (*server)->url() << "\n"
            << "  sequencer   " << info.sequencer.hex() << (created ? "  (new key)" : "") << "\n"
            << "  chain id    " << to_hex(info.chain_id) << "\n"
            << "  head        " << (*chain)->head()->number.value << "\n"
            << "  block time  " << info.params.block_time_ms << " ms\n"
            << "  data dir    " << s.data_dir << "\n"
            << "running; press Ctrl-C to stop" << std::endl;

  std::mutex failure_mu;
  std::optional<Error> failure;
  p2p::IoThread producer("cairn-devchain");
  (*chain)->start(producer.executor(), p2p::real_clock(), [&](const Error& e) {
    {
      std::lock_guard lock(failure_mu);
      failure = e;
    }
    kill(getpid(), SIGUSR1);
  });
  producer.start();

  int sig = 0;
  sigwait(&set, &sig);
  (*server)->stop();
  producer.stop();
  (*chain)->stop();
  std::lock_guard lock(failure_mu);
  if (failure) return report_error("devchain", *failure);
  std::cout << "received " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", stopped at block "
            << (*chain)->head()->number.value << std::endl;
  return kExitOk;
}

}  // namespace

void register_devchain(CLI::App& app, int& exit_code) {
  auto s = std::make_shared<DevchainSettings>();
  auto* cmd = app.add_subcommand("devchain",
                                 "Run the single-sequencer dev chain (the consensus clock) with its JSON-RPC server");
  cmd->add_option("--listen", s->listen, "JSON-RPC address HOST:PORT (port 0: any free port)")->capture_default_str();
  cmd->add_option("--data-dir", s->data_dir, "Sequencer key and chain database (DIR/sequencer.key, DIR/chain)")
      ->capture_default_str()
      ->envname("CAIRN_DEVCHAIN_DIR");
  cmd->add_option("--block-time-ms", s->block_time_ms, "Block interval of a new chain, ms (default 1000)")
      ->check(CLI::Range(1u, 3'600'000u));
  cmd->add_flag("--localnet", s->localnet, "Start from the localnet parameters (256 blobs per shard)");
  cmd->add_option("--blobs-per-shard", s->blobs_per_shard, "Blobs per shard of a new chain (default 4096)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  cmd->add_option("--epoch-blocks", s->epoch_blocks, "Blocks per challenge epoch of a new chain (default 8)")
      ->check(CLI::Range(1u, 1'000'000u));
  cmd->add_option("--deadline-blocks", s->deadline_blocks, "Response deadline in blocks (default 2)")
      ->check(CLI::Range(0u, 1'000'000u));
  cmd->add_option("--max-mempool", s->chain.devchain.max_mempool_txs, "Pending transactions held at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-block-txs", s->chain.devchain.max_block_txs, "Transactions per block at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-body-bytes", s->chain.rpc.max_body_bytes, "Largest JSON-RPC request body (larger: HTTP 413)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--rpc-threads", s->chain.rpc.threads, "JSON-RPC connection threads")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  cmd->callback([s, &exit_code] { exit_code = run_devchain(*s); });
}

}  // namespace cairn::tools
