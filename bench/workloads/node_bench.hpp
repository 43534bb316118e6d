#pragma once
// The three-node loopback network the put and get benches run on: a
// LocalNetwork (one dev chain, three real nodes in this process, each with
// its own RocksDB store, sealing, worker pool and TCP listener on
// 127.0.0.1), and unique incompressible file contents so uploads never
// dedupe.

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "bench.hpp"
#include "cairn/core/bytes.hpp"
#include "cairn/erasure/params.hpp"
#include "node/local_network.hpp"
#include "raw_rocksdb.hpp"

namespace cairn::bench {

// The network parameters of the bench network: the defaults (blob size,
// coding, sealing cost as a real network) with 100 ms blocks. An upload is
// acknowledged no sooner than its registration block: at the default
// 1000 ms the same throughput needs ten times the data in flight.
inline erasure::NetworkParams bench_params() {
  auto p = erasure::NetworkParams::defaults();
  p.block_time_ms = 100;
  return p;
}

inline constexpr size_t kBenchNodes = 3;

// Starts the network with every node serving every shard, the given store
// settings (the node's default fsyncs every blob batch), and `min_replicas`
// = kBenchNodes so every upload is stored, sealed, by all three.
inline std::unique_ptr<node::LocalNetwork> start_bench_network(const std::filesystem::path& dir,
                                                               const shards::StoreSettings& store = {},
                                                               const erasure::NetworkParams& params = bench_params()) {
  auto net = node::LocalNetwork::open(dir, params);
  if (!net) throw SideFailed(net.error());
  for (size_t i = 0; i < kBenchNodes; ++i) {
    auto n = (*net)->add([&store](node::NodeSettings& s) {
      s.upload.min_replicas = kBenchNodes;
      s.storage.store = store;
    });
    if (!n) throw SideFailed(n.error());
  }
  if (!(*net)->wait_meshed(std::chrono::seconds(60))) {
    throw SideFailed(Error{Errc::timeout, "the bench network did not mesh within 60 s"});
  }
  return std::move(*net);
}

// File contents: random bytes with a counter stamped at every blob
// boundary, so every blob of every file is new.
class UniqueContent {
 public:
  UniqueContent(size_t bytes, uint64_t seed) : data_(bytes) {
    std::mt19937_64 rng(seed);
    for (size_t i = 0; i + 8 <= data_.size(); i += 8) put_be<uint64_t>(data_.data() + i, rng());
  }
  // Stamps a fresh counter into every blob and returns the bytes.
  ByteSpan next(uint32_t blob_size) {
    const uint64_t c = counter_.fetch_add(1);
    for (size_t off = 0; off + 8 <= data_.size(); off += blob_size) put_be<uint64_t>(data_.data() + off, c);
    return data_;
  }

 private:
  Bytes data_;
  static inline std::atomic<uint64_t> counter_{1};
};

// The baseline's fragments: a few encoded random blobs.
std::vector<Bytes> baseline_replicas(const erasure::NetworkParams& params, uint64_t seed);

// The CPU steps a node path repeats for every full blob, across all the
// nodes involved: replica masks (sealing on store, unsealing on read),
// verifications of fetched fragments (parity re-encoded, roots and
// commitment), encodings with commitment (on upload).
struct PathSteps {
  int masks = 0;
  int verifies = 0;
  int encodes = 0;
  std::string note;  // why these counts
};

// Each step timed on one thread in this run (median of 15) and what the
// path's CPU work per blob adds up to: where a rate goal is missed, this is
// the profile that shows whether the CPU alone rules it out.
nlohmann::json path_profile(const erasure::NetworkParams& params, uint64_t seed, const PathSteps& steps);

}  // namespace cairn::bench
