#pragma once
// A whole cairn network on one machine (docs/localnet.md): one `cairn
// devchain` and N `cairn node` processes spread evenly over M shards, on
// free loopback ports, each with its own data dir, TOML config file and log
// file under one directory. Used by `cairn localnet`, the end-to-end tests
// (tests/e2e/) and `cairn bench e2e`.
//
// Every process is an ordinary `cairn` process started from a config file;
// it runs in its own session (setsid), so it outlives the program that
// started it. What was started is recorded in DIR/localnet.json: the pid
// and the kernel's start time of each process (/proc/PID/stat field 22), so
// a pid the kernel has since given to another program is never signalled.
//
// Functions here block (they poll processes and HTTP status) and are not
// thread-safe against each other on the same DIR.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cairn/core/result.hpp"

namespace cairn::localnet {

// The parameters of a new dev chain (`cairn devchain` flags); an existing
// chain keeps the genesis it was created with.
struct Genesis {
  // Block interval, ms: the consensus clock; uploads are acknowledged no
  // sooner than one block.
  uint32_t block_time_ms = 200;
  // Blobs per shard (0: the localnet preset, 256). Small values fill shards
  // with little data (tests).
  uint64_t blobs_per_shard = 0;
  // Blocks per challenge epoch and the response deadline (0: the preset, 8
  // and 2). Default 20 and 10: at 200 ms blocks a 4 s epoch with the 2 s
  // response window the walk parameters are tuned to. Every node walks its
  // sealed replicas once per epoch and verifies its shard peers' responses,
  // all on one host here: the preset's 0.4 s window at 200 ms blocks leaves
  // nodes of a busy localnet out of the proofs, and longer epochs keep that
  // work from taking the machine.
  uint32_t epoch_blocks = 20;
  uint32_t deadline_blocks = 10;
};

struct Settings {
  // Everything lives under this directory; created when missing.
  std::filesystem::path dir;
  // The cairn executable started for the chain and the nodes.
  std::string binary;
  // Node processes, and the shards they are spread over (node i serves
  // shard i % shards). Checked against an existing DIR.
  uint32_t nodes = 4;
  uint32_t shards = 2;
  Genesis genesis;
  // How long `up` and `restart` wait for nodes to be ready before failing.
  std::chrono::milliseconds ready_timeout{60'000};
  // Extra node settings as KEY=VALUE (the keys of docs/config.md), written
  // into every node's config file, e.g. "upload.min_replicas=3".
  std::vector<std::string> node_settings;
};

// One started process as recorded in the state file.
struct ProcessRecord {
  pid_t pid = 0;
  uint64_t start_time = 0;  // /proc/PID/stat starttime, clock ticks since boot
};

struct NodeRecord {
  uint32_t index = 0;
  uint32_t shard = 0;
  uint16_t p2p_port = 0;
  uint16_t api_port = 0;
  std::string id;  // node id (hex), learnt from its status once it answered
  ProcessRecord process;

  std::string name() const { return "node" + std::to_string(index); }
  std::string p2p_address() const { return "127.0.0.1:" + std::to_string(p2p_port); }
  std::string api_url() const { return "http://127.0.0.1:" + std::to_string(api_port); }
};

struct State {
  std::filesystem::path dir;
  std::string binary;
  uint32_t shards = 0;
  Genesis genesis;
  std::vector<std::string> node_settings;
  uint16_t chain_port = 0;
  ProcessRecord chain;
  // The dev chain's sequencer public key (hex), learnt from a node's status
  // once one answered: the trust root `cairn verify --trust` pins.
  std::string sequencer;
  std::vector<NodeRecord> nodes;

  std::string chain_url() const { return "http://127.0.0.1:" + std::to_string(chain_port); }
  std::filesystem::path chain_dir() const { return dir / "chain"; }
  std::filesystem::path chain_log() const { return dir / "chain" / "chain.log"; }
  std::filesystem::path node_dir(uint32_t i) const { return dir / ("node" + std::to_string(i)); }
  std::filesystem::path data_dir(uint32_t i) const { return node_dir(i) / "data"; }
  std::filesystem::path config_file(uint32_t i) const { return node_dir(i) / "node.toml"; }
  std::filesystem::path log_file(uint32_t i) const { return node_dir(i) / "node.log"; }
};

// The state file of a localnet directory.
std::filesystem::path state_file(const std::filesystem::path& dir);

// Starts the network described by `s`, or, when s.dir already holds one,
// restarts its processes that are not running (same data, same ports when
// they are still free, same identities). Returns once every node is
// registered on the chain, synced on its shard and connected to every other
// running node of its shard. On failure every process of the network is stopped again and the
// error names the node that was not ready with the tail of its log.
Result<State> up(const Settings& s);

// The recorded state; not_found when DIR holds no localnet.
Result<State> load(const std::filesystem::path& dir);

// Stops every recorded process that is still the process that was started
// (SIGTERM to its process group, SIGKILL after `grace`). Idempotent: a DIR
// without a localnet, or with everything stopped, is fine.
Status down(const std::filesystem::path& dir, std::chrono::milliseconds grace = std::chrono::seconds(20));

// "3" or "node3" -> 3; invalid_argument when out of range.
Result<uint32_t> parse_node(const State& st, const std::string& text);

// Sends `signal` (default SIGKILL: a crash) to node i's process group and
// waits until it is gone. Fine when it is not running.
Status kill_node(const std::filesystem::path& dir, uint32_t i, int signal = 9);

// Starts node i again (stopping it first when it runs) from its config
// file, and waits until it is ready (registered, synced, meshed) or
// `timeout` passes.
Result<State> restart_node(const std::filesystem::path& dir, uint32_t i,
                           std::chrono::milliseconds timeout = std::chrono::seconds(60));

// True while the recorded process is alive and is still the one started.
bool alive(const ProcessRecord& p);

// GET /v1/status of node i: its JSON, or an error when it does not answer.
Result<nlohmann::json> node_status(const State& st, uint32_t i);

// Why node i is not ready yet ("" when it is): not running, no status, not
// registered, shard not synced, or not connected to every other running
// node of its shard.
std::string not_ready_reason(const State& st, uint32_t i);

// Waits until every node in `which` (every node when empty) is ready.
Status wait_ready(State& st, const std::vector<uint32_t>& which, std::chrono::milliseconds timeout);

// The last `lines` lines of a log file.
std::string log_tail(const std::filesystem::path& file, size_t lines = 20);

// argv running `cairn <args...> --node <node i's API URL>` with the state's
// binary: the way a test or a script drives one node with a client command
// (put, get, stat, status, proof).
std::vector<std::string> client_argv(const State& st, uint32_t i, std::vector<std::string> args);

// The network as JSON: {"dir", "chain": {url, pid, running}, "nodes": [{node,
// id, shard, p2p, api, pid, running}]}, and as the table `cairn localnet`
// prints.
nlohmann::json to_json(const State& st);
std::string to_table(const State& st);

}  // namespace cairn::localnet
