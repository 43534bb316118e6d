// `cairn bench sync`: a fresh node joins a shard of a three-node loopback
// network and syncs it, against raw RocksDB writes of the same fragment
// bytes (the storage baseline every node bench shares).
//
//   ours:      each round starts a new node (its own store, sealing, worker
//              pool, TCP listener) serving the shard, and times it from
//              Node::open until its sync reports every registered blob held:
//              per blob, k data fragments fetched from one of the three
//              holders over encrypted TCP (the holder reads and unseals
//              them: one mask computation), parity re-encoded, every
//              fragment root and the commitment checked against the
//              registry, the replica sealed for the new node (a second mask
//              computation) and written in one fsynced batch. The node is
//              stopped and its data removed after the round. Start-up (store
//              creation, listening, dialing) is inside the timing.
//   seal_cost_1: the same on a second network whose genesis sets
//              seal_cost = 1, to show what the path costs apart from the
//              two masks per blob.
//   baseline:  one WriteBatch of n fragment-sized puts per blob into
//              RocksDB opened with the store's options.
//
// MB/s is payload bytes per second (blob lengths as registered). The report
// also carries "profile": the CPU cost per blob of each step of the path,
// measured in this run on one thread.

#include <chrono>
#include <thread>

#include "bench.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/sampling/seal.hpp"
#include "cairn/shards/serve.hpp"
#include "node_bench.hpp"

namespace cairn::bench {
namespace {

// 64 MiB: 512 full blobs (and 4 manifests) per shard sync.
constexpr size_t kSyncFiles = 4;
constexpr size_t kSyncFileBytes = size_t{16} << 20;
constexpr auto kSyncTimeout = std::chrono::minutes(5);

// The shard-0 sync status of `n`, when it reports one.
std::optional<shards::SyncProgress> shard0(node::Node& n) {
  auto st = n.service().status();
  if (!st) return std::nullopt;
  for (const auto& s : st->sync) {
    if (s.shard == ShardId{0}) return s;
  }
  return std::nullopt;
}

// A three-node network holding kSyncFiles files, and the side that syncs a
// fresh node from it.
class SyncNetwork {
 public:
  SyncNetwork(const std::filesystem::path& dir, const erasure::NetworkParams& params, uint64_t seed)
      : net_(start_bench_network(dir, {}, params)) {
    for (size_t i = 0; i < kSyncFiles; ++i) {
      UniqueContent content(kSyncFileBytes, seed + 200 + i);
      node::PutOptions o;
      o.compress = erasure::FileOptions::Compress::never;
      auto r = net_->node(0).service().put_file(content.next(params.blob_size), o);
      if (!r) throw SideFailed(r.error());
    }
    auto holder = net_->node(0).service().status();
    if (!holder) throw SideFailed(holder.error());
    blobs_ = holder->blobs_stored;
  }

  uint64_t blobs() const { return blobs_; }
  const shards::SyncProgress& last() const { return last_; }

  // One fresh node, synced, stopped and removed; its payload bytes.
  uint64_t sync_once() {
    auto joined = net_->add([](node::NodeSettings& s) {
      s.storage.sync.settle_blocks = 0;  // every blob here is old
      s.storage.sync.tick_ms = 50;
      s.storage.scrub.enabled = false;
    });
    if (!joined) throw SideFailed(joined.error());
    node::Node& fresh = **joined;
    const size_t slot = net_->size() - 1;
    const auto deadline = std::chrono::steady_clock::now() + kSyncTimeout;
    for (;;) {
      auto s = shard0(fresh);
      if (s && s->state == shards::SyncState::synced && s->held == blobs_) {
        last_ = *s;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw SideFailed(Error{Errc::timeout, "the fresh node did not sync within 5 minutes"});
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (auto st = net_->remove(slot); !st) throw SideFailed(st.error());
    std::error_code ec;
    std::filesystem::remove_all(net_->dir(slot), ec);
    return last_.fetched_bytes;
  }

 private:
  std::unique_ptr<node::LocalNetwork> net_;
  uint64_t blobs_ = 0;
  shards::SyncProgress last_;
};

Result<nlohmann::json> run_sync(const Options& opts) {
  const auto params = bench_params();
  auto light = params;
  light.seal_cost = 1;
  return run_guarded([&]() -> Result<nlohmann::json> {
    WorkDir work(opts.work_dir, "sync");
    SyncNetwork net(work.path() / "net", params, opts.seed);
    SyncNetwork light_net(work.path() / "net-seal1", light, opts.seed + 1);

    Side ours{"sync: a fresh node fetches, verifies, seals and stores every blob of the shard from 3 holders",
              [&] { return net.sync_once(); }};
    Side ours_light{"sync, network with seal_cost 1 (the same path with cheap masks)",
                    [&] { return light_net.sync_once(); }};
    RawSide raw(work.path() / "raw", params, shards::StoreSettings{}, baseline_replicas(params, opts.seed));
    Side baseline{"raw RocksDB: batch of n fragment-sized puts per blob, one replica", [&] { return raw.run_once(); }};
    auto stats = measure_sides(opts, {&ours, &ours_light, &baseline});
    for (auto& st : stats) scale(st, 1e-6);
    auto report = pair_report("sync", "MB/s", ours, stats[0], baseline, stats[2], opts);
    report["seal_cost_1"] = side_report(ours_light, stats[1]);
    report["seal_cost_1_ratio"] = stats[2].median > 0 ? stats[1].median / stats[2].median : 0.0;
    report["holders"] = kBenchNodes;
    report["blobs"] = net.blobs();
    report["payload_bytes"] = net.last().fetched_bytes;
    report["fetched_last_round"] = net.last().fetched_blobs;
    report["failed_fetches_last_round"] = net.last().fetches_failed;
    report["block_time_ms"] = params.block_time_ms;
    report["seal_cost"] = params.seal_cost;
    const shards::SyncSettings sync_settings = node::NodeSettings{}.storage.sync;
    report["max_in_flight"] = sync_settings.max_in_flight;
    report["max_in_flight_per_peer"] = sync_settings.max_in_flight_per_peer;
    report["worker_threads"] = WorkerPoolSettings{}.threads;
    report["hardware_threads"] = std::thread::hardware_concurrency();
    const PathSteps steps{2, 1, 0,
                          "every synced blob costs one mask on the holder (unseal) and one on the joiner (seal), "
                          "and one verification"};
    report["profile"] = path_profile(params, opts.seed, steps);
    report["profile_seal_cost_1"] = path_profile(light, opts.seed, steps);
    return report;
  });
}

}  // namespace

Workload sync_workload() {
  return Workload{"sync",
                  "a fresh node syncs a 64 MiB shard from a 3-node loopback network (fetch, verify, seal, "
                  "store), at the default seal cost and at seal_cost 1, vs raw RocksDB writes of the same fragments",
                  run_sync};
}

}  // namespace cairn::bench
