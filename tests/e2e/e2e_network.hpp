#pragma once
// End-to-end tests drive a localnet (tools/localnet/, docs/localnet.md) of
// real `cairn devchain` and `cairn node` processes exactly as an operator
// would: client commands against one node's API, kill / restart / wipe of
// node processes. The network is torn down (every process stopped and
// checked gone) when the fixture goes, whatever the test did.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "localnet/localnet.hpp"
#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn::test {

class E2eNetwork {
 public:
  // `s.dir` and `s.binary` are filled in (a fresh temp dir, the cairn
  // binary under test). Call start() next.
  explicit E2eNetwork(localnet::Settings s);
  ~E2eNetwork();
  E2eNetwork(const E2eNetwork&) = delete;
  E2eNetwork& operator=(const E2eNetwork&) = delete;

  // `cairn localnet up` through the library: every node ready, or the error
  // (naming the node and its log tail).
  Status start();

  const std::filesystem::path& dir() const { return settings_.dir; }
  TempDir& tmp() { return tmp_; }
  // A copy of the current state (ports and ids may change on restarts).
  localnet::State state();
  uint32_t size();
  std::string url(uint32_t i);
  uint32_t shard_of(uint32_t i);
  bool running(uint32_t i);
  // Running nodes, optionally only those not in `except`.
  std::vector<uint32_t> live(const std::vector<uint32_t>& except = {});

  // `cairn <args...> --node <node i>`, bounded by `timeout`: the hook for
  // every client command a test needs (put, get, stat, status, proof).
  RunResult cairn(uint32_t i, std::vector<std::string> args,
                  std::chrono::milliseconds timeout = std::chrono::seconds(120));
  // GET /v1/status of node i; null when it does not answer.
  nlohmann::json status(uint32_t i);

  // kill -9 of node i (a crash; or `signal`), restart (waits until it is registered,
  // synced and meshed), and wipe (its data dir removed; node i must be
  // stopped: it comes back with a new identity and an empty store).
  Status kill(uint32_t i, int signal = 9);
  Status restart(uint32_t i, std::chrono::milliseconds timeout = std::chrono::seconds(120));
  void wipe(uint32_t i);

 private:
  TempDir tmp_;
  localnet::Settings settings_;
  std::mutex mu_;  // one state change (start, kill, restart) at a time
};

// One uploaded file and what the network acknowledged for it.
struct Uploaded {
  std::filesystem::path path;
  Bytes content;
  std::string id;
};

// `count` files of mixed sizes (0 B, blob boundaries, up to 8 MiB; some
// compressible) totalling about `target_bytes`, written under `dir`.
std::vector<Uploaded> make_files(std::mt19937_64& rng, const std::filesystem::path& dir,
                                 size_t count, uint64_t target_bytes);

// Runs `work(k)` for k in [0, n) on `threads` threads.
void parallel_for(size_t n, size_t threads, const std::function<void(size_t)>& work);

}  // namespace cairn::test
