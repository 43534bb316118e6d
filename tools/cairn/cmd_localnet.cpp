#include <CLI/CLI.hpp>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "commands.hpp"
#include "localnet/localnet.hpp"

namespace cairn::tools {
namespace {

struct LocalnetFlags {
  localnet::Settings settings;
  uint32_t timeout_s = 120;
  uint32_t grace_s = 30;
  bool json = false;
  std::string node;
  std::string signal = "KILL";
};

// This very executable: the processes of a localnet run the same build as
// the command that starts them.
std::string self_binary() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("cairn") : p.string();
}

void print(const localnet::State& st, bool json) {
  if (json) {
    std::cout << localnet::to_json(st).dump(2) << "\n";
  } else {
    std::cout << localnet::to_table(st);
  }
}

int run_up(LocalnetFlags& f) {
  f.settings.binary = self_binary();
  f.settings.ready_timeout = std::chrono::seconds(f.timeout_s);
  if (!f.json) {
    std::cerr << "starting a dev chain and " << f.settings.nodes << " nodes over " << f.settings.shards << " shards in "
              << f.settings.dir.string() << " ..." << std::endl;
  }
  auto st = localnet::up(f.settings);
  if (!st) return report_error("localnet up", st.error());
  print(*st, f.json);
  return kExitOk;
}

int run_status(LocalnetFlags& f) {
  auto st = localnet::load(f.settings.dir);
  if (!st) return report_error("localnet status", st.error());
  if (f.json) {
    auto j = localnet::to_json(*st);
    for (auto& n : j["nodes"]) {
      const uint32_t i = static_cast<uint32_t>(&n - &j["nodes"][0]);
      const std::string why = localnet::not_ready_reason(*st, i);
      n["ready"] = why.empty();
      if (!why.empty()) n["not_ready"] = why;
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << localnet::to_table(*st);
  for (uint32_t i = 0; i < st->nodes.size(); ++i) {
    const std::string why = localnet::not_ready_reason(*st, i);
    if (!why.empty()) std::cout << st->nodes[i].name() << " " << why << "\n";
  }
  return kExitOk;
}

int run_down(LocalnetFlags& f) {
  if (auto r = localnet::down(f.settings.dir, std::chrono::seconds(f.grace_s)); !r) {
    return report_error("localnet down", r.error());
  }
  if (!f.json) std::cout << "stopped every process of the localnet in " << f.settings.dir.string() << "\n";
  return kExitOk;
}

// The localnet of --dir and the node NODE names.
struct Target {
  localnet::State state;
  uint32_t node = 0;
};
Result<Target> target(const LocalnetFlags& f) {
  auto st = localnet::load(f.settings.dir);
  if (!st) return tl::unexpected(st.error());
  auto i = localnet::parse_node(*st, f.node);
  if (!i) return tl::unexpected(i.error());
  return Target{std::move(*st), *i};
}

int run_kill(LocalnetFlags& f) {
  auto t = target(f);
  if (!t) return report_error("localnet kill", t.error());
  const int sig = f.signal == "TERM" ? SIGTERM : f.signal == "INT" ? SIGINT : SIGKILL;
  if (auto r = localnet::kill_node(f.settings.dir, t->node, sig); !r) return report_error("localnet kill", r.error());
  if (!f.json) std::cout << t->state.nodes[t->node].name() << " stopped (SIG" << f.signal << ")\n";
  return kExitOk;
}

int run_restart(LocalnetFlags& f) {
  auto t = target(f);
  if (!t) return report_error("localnet restart", t.error());
  auto after = localnet::restart_node(f.settings.dir, t->node, std::chrono::seconds(f.timeout_s));
  if (!after) return report_error("localnet restart", after.error());
  print(*after, f.json);
  return kExitOk;
}

int run_url(LocalnetFlags& f) {
  auto t = target(f);
  if (!t) return report_error("localnet url", t.error());
  std::cout << t->state.nodes[t->node].api_url() << "\n";
  return kExitOk;
}

int run_trust(LocalnetFlags& f) {
  auto st = localnet::load(f.settings.dir);
  if (!st) return report_error("localnet trust", st.error());
  if (st->sequencer.empty()) {
    return report_error("localnet trust", Error{Errc::not_found, "no node of " + f.settings.dir.string() +
                                                                     " has reported the sequencer key yet: run up"});
  }
  std::cout << st->sequencer << "\n";
  return kExitOk;
}

// Adds --dir (or $CAIRN_LOCALNET_DIR) to a localnet subcommand that runs
// `run` when selected. Each subcommand keeps its own copy of the flag: CLI11
// reads the environment into the options of every subcommand, selected or
// not, so a variable they shared would let $CAIRN_LOCALNET_DIR beat --dir.
CLI::App* with_dir(CLI::App* cmd, const std::shared_ptr<LocalnetFlags>& f, int& exit_code, int (*run)(LocalnetFlags&)) {
  auto dir = std::make_shared<std::filesystem::path>();
  cmd->add_option("--dir", *dir, "Localnet directory (state, data, configs, logs)")
      ->required()
      ->envname("CAIRN_LOCALNET_DIR");
  cmd->callback([f, dir, &exit_code, run] {
    f->settings.dir = *dir;
    exit_code = run(*f);
  });
  return cmd;
}

}  // namespace

void register_localnet(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<LocalnetFlags>();
  auto* cmd = app.add_subcommand("localnet", "Run a dev chain and storage nodes on this machine (docs/localnet.md)");
  cmd->require_subcommand(1);

  auto* up = with_dir(cmd->add_subcommand("up", "Start (or restart) a localnet and wait until it is ready"), f,
                      exit_code, run_up);
  up->add_option("--nodes", f->settings.nodes, "Node processes")->capture_default_str()->check(CLI::Range(1u, 256u));
  up->add_option("--shards", f->settings.shards, "Shards the nodes are spread over (node i serves shard i mod M)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  up->add_option("--block-time-ms", f->settings.genesis.block_time_ms, "Block interval of a new dev chain, ms")
      ->capture_default_str()
      ->check(CLI::Range(10u, 60'000u));
  up->add_option("--blobs-per-shard", f->settings.genesis.blobs_per_shard,
                 "Blobs per shard of a new dev chain (default: the localnet preset, 256)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  up->add_option("--epoch-blocks", f->settings.genesis.epoch_blocks,
                 "Blocks per challenge epoch of a new dev chain (default 20)")
      ->check(CLI::Range(1u, 1'000'000u));
  up->add_option("--deadline-blocks", f->settings.genesis.deadline_blocks,
                 "Challenge response deadline in blocks of a new dev chain (default 10)")
      ->check(CLI::Range(1u, 1'000'000u));
  up->add_option("--set", f->settings.node_settings,
                 "A node setting KEY=VALUE written into every node's config file (repeatable)");
  up->add_option("--timeout", f->timeout_s, "Seconds to wait for every node to be ready")->capture_default_str();
  up->add_flag("--json", f->json, "Print the network as JSON");

  auto* status = with_dir(cmd->add_subcommand("status", "Show the processes and which nodes are not ready"), f,
                          exit_code, run_status);
  status->add_flag("--json", f->json, "Print JSON");

  auto* down = with_dir(cmd->add_subcommand("down", "Stop every process the localnet started (idempotent)"), f,
                        exit_code, run_down);
  down->add_option("--timeout", f->grace_s, "Seconds each process gets after SIGTERM before SIGKILL")
      ->capture_default_str();

  auto* kill = with_dir(cmd->add_subcommand("kill", "Stop one node (a crash by default)"), f, exit_code, run_kill);
  kill->add_option("NODE", f->node, "node3 or 3")->required();
  kill->add_option("--signal", f->signal, "KILL (default), TERM or INT")->check(CLI::IsMember({"KILL", "TERM", "INT"}));

  auto* restart = with_dir(cmd->add_subcommand("restart", "Start one node again and wait until it is ready"), f,
                           exit_code, run_restart);
  restart->add_option("NODE", f->node, "node3 or 3")->required();
  restart->add_option("--timeout", f->timeout_s, "Seconds to wait for the node to be ready")->capture_default_str();
  restart->add_flag("--json", f->json, "Print the network as JSON");

  auto* url = with_dir(cmd->add_subcommand("url", "Print a node's HTTP API URL (for --node)"), f, exit_code, run_url);
  url->add_option("NODE", f->node, "node3 or 3")->required();

  with_dir(cmd->add_subcommand("trust", "Print the dev chain's sequencer key (for cairn verify --trust)"), f, exit_code,
           run_trust);
}

}  // namespace cairn::tools
