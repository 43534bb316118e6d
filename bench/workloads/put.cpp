// `cairn bench put`: uploads through a three-node loopback network against
// raw RocksDB writes of the same fragment bytes.
//
//   ours:     kPutStreams concurrent NodeService::put_file calls on node A,
//             each of a fresh kPutFileBytes incompressible file, with
//             min_replicas = 3: every blob is encoded and committed,
//             persisted as pending, registered on the dev chain (batched
//             PutBlob), announced, pulled by the two other nodes over
//             encrypted TCP, verified (parity re-encoded, commitment
//             recomputed), sealed by all three and written with the store's
//             fsync policy. A round ends when every blob of every call is
//             acknowledged.
//   baseline: one WriteBatch of n fragment-sized puts per blob into one
//             RocksDB opened with the store's options (the default fsync
//             policy), nothing else: a single replica's raw write cost.
//
// MB/s is payload (file) bytes per second. The node's default settings run
// unchanged except min_replicas (3) and the chain's 100 ms blocks.

#include <optional>
#include <thread>

#include "bench.hpp"
#include "cairn/erasure/codec.hpp"
#include "node_bench.hpp"

namespace cairn::bench {
namespace {

constexpr size_t kPutStreams = 4;
constexpr size_t kPutFileBytes = size_t{16} << 20;

// One measured pair with every node and the baseline on `store` settings.
nlohmann::json measure_put(const Options& opts, const std::filesystem::path& dir, const shards::StoreSettings& store) {
  const auto params = bench_params();
  auto net = start_bench_network(dir / "net", store);
  node::NodeService& svc = net->node(0).service();
  std::vector<std::unique_ptr<UniqueContent>> contents;
  for (size_t i = 0; i < kPutStreams; ++i) {
    contents.push_back(std::make_unique<UniqueContent>(kPutFileBytes, opts.seed + i));
  }
  Side ours{"put: " + std::to_string(kPutStreams) + " concurrent uploads of " + std::to_string(kPutFileBytes >> 20) +
                " MiB to one node of three, acknowledged at 3 sealed replicas",
            [&] {
              std::vector<std::thread> threads;
              std::vector<std::optional<Error>> errors(kPutStreams);
              for (size_t i = 0; i < kPutStreams; ++i) {
                threads.emplace_back([&, i] {
                  node::PutOptions o;
                  o.compress = erasure::FileOptions::Compress::never;
                  auto r = svc.put_file(contents[i]->next(params.blob_size), o);
                  if (!r) errors[i] = r.error();
                });
              }
              for (auto& t : threads) t.join();
              for (auto& e : errors) {
                if (e) throw SideFailed(*e);
              }
              return uint64_t{kPutStreams * kPutFileBytes};
            }};
  RawSide raw(dir / "raw", params, store, baseline_replicas(params, opts.seed));
  Side baseline{"raw RocksDB: batch of n fragment-sized puts per blob, one replica", [&] { return raw.run_once(); }};
  auto [ours_stats, base_stats] = measure_pair(opts, ours, baseline);
  for (auto* st : {&ours_stats, &base_stats}) {
    scale(*st, 1e-6);
  }
  auto report = pair_report("put", "MB/s", ours, ours_stats, baseline, base_stats, opts);
  report["sync_writes"] = store.sync_writes;
  report["profile"] = path_profile(params, opts.seed,
                                   PathSteps{3, 2, 1,
                                             "every uploaded blob is encoded and committed once (node A), "
                                             "verified by the two nodes that pull it, and sealed by all three"});
  return report;
}

Result<nlohmann::json> run_put(const Options& opts) {
  const auto params = bench_params();
  return run_guarded([&]() -> Result<nlohmann::json> {
    WorkDir work(opts.work_dir, "put");
    // The node's defaults: every blob batch of every replica fsyncs its WAL,
    // as does the baseline's. The second pair, without fsync, shows the
    // path's own cost (CPU, copies, network) where the disk's fsync latency
    // would otherwise hide it.
    const shards::StoreSettings defaults;
    shards::StoreSettings no_sync = defaults;
    no_sync.sync_writes = false;
    auto report = measure_put(opts, work.path() / "sync", defaults);
    auto unsynced = measure_put(opts, work.path() / "nosync", no_sync);
    for (const char* k : {"workload", "rounds", "round_seconds"}) unsynced.erase(k);
    report["without_fsync"] = unsynced;
    report["nodes"] = kBenchNodes;
    report["min_replicas"] = kBenchNodes;
    report["block_time_ms"] = params.block_time_ms;
    report["seal_cost"] = params.seal_cost;
    report["streams"] = kPutStreams;
    report["file_bytes"] = kPutFileBytes;
    return report;
  });
}

}  // namespace

Workload put_workload() {
  return Workload{"put",
                  "uploads through a 3-node loopback network (register, replicate, verify, seal, store x3) "
                  "vs raw RocksDB writes of one replica's fragments",
                  run_put};
}

}  // namespace cairn::bench
