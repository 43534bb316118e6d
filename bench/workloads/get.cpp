// `cairn bench get`: reads through a three-node loopback network against
// raw RocksDB writes of the same fragment bytes (the storage baseline every
// node bench shares).
//
//   ours (local):  NodeService::read of a whole 16 MiB file on a node that
//                  holds a sealed replica: per blob, the data fragments are
//                  read, unsealed (one mask computation), checked against
//                  their roots and the id, and decoded, with
//                  fetch.readahead_blobs blobs in flight on the worker pool;
//                  the file's SHA-256 is checked at the end.
//   remote:        the same read on a fourth node that serves another shard
//                  and holds nothing: k fragments per blob gathered from the
//                  three holders in parallel over encrypted TCP (each holder
//                  unseals), verified, decoded.
//   baseline:      one WriteBatch of n fragment-sized puts per blob into
//                  RocksDB opened with the store's options.
//
// MB/s is file bytes per second.

#include "bench.hpp"
#include "node_bench.hpp"

namespace cairn::bench {
namespace {

constexpr size_t kGetFiles = 4;
constexpr size_t kGetFileBytes = size_t{16} << 20;

Result<nlohmann::json> run_get(const Options& opts) {
  const auto params = bench_params();
  return run_guarded([&]() -> Result<nlohmann::json> {
    WorkDir work(opts.work_dir, "get");
    auto net = start_bench_network(work.path() / "net");
    // The reader that holds nothing: it serves a shard no blob is in.
    auto far = net->add([](node::NodeSettings& s) { s.shards = std::vector<ShardId>{ShardId{1u << 20}}; });
    if (!far) throw SideFailed(far.error());

    std::vector<BlobId> files;
    for (size_t i = 0; i < kGetFiles; ++i) {
      UniqueContent content(kGetFileBytes, opts.seed + 100 + i);
      node::PutOptions o;
      o.compress = erasure::FileOptions::Compress::never;
      auto r = net->node(0).service().put_file(content.next(params.blob_size), o);
      if (!r) throw SideFailed(r.error());
      files.push_back(r->id);
    }
    const auto reader = [&files](node::NodeService& svc) {
      return [&svc, &files, next = size_t{0}]() mutable {
        uint64_t bytes = 0;
        auto st = svc.read(files[next++ % files.size()], {}, [&](ByteSpan b) -> Status {
          bytes += b.size();
          return {};
        });
        if (!st) throw SideFailed(st.error());
        return bytes;
      };
    };
    Side local{"get: whole-file reads on a node holding a sealed replica (unseal, verify, decode)",
               reader(net->node(1).service())};
    Side remote{"get: whole-file reads on a node holding nothing (k verified fragments from 3 holders)",
                reader((*far)->service())};
    RawSide raw(work.path() / "raw", params, shards::StoreSettings{}, baseline_replicas(params, opts.seed));
    Side baseline{"raw RocksDB: batch of n fragment-sized puts per blob, one replica", [&] { return raw.run_once(); }};

    auto stats = measure_sides(opts, {&local, &remote, &baseline});
    for (auto& st : stats) {
      scale(st, 1e-6);
    }
    auto report = pair_report("get", "MB/s", local, stats[0], baseline, stats[2], opts);
    report["remote"] = side_report(remote, stats[1]);
    report["remote_ratio"] = stats[2].median > 0 ? stats[1].median / stats[2].median : 0.0;
    report["nodes"] = kBenchNodes + 1;
    report["block_time_ms"] = params.block_time_ms;
    report["seal_cost"] = params.seal_cost;
    report["file_bytes"] = kGetFileBytes;
    report["readahead_blobs"] = node::FetchSettings{}.readahead_blobs;
    report["parallel_peers"] = node::FetchSettings{}.parallel_peers;
    report["profile"] = path_profile(params, opts.seed,
                                     PathSteps{1, 1, 0,
                                               "every blob read is unsealed once (by the reading node or the "
                                               "holder serving it) and its fragments verified once"});
    return report;
  });
}

}  // namespace

Workload get_workload() {
  return Workload{"get",
                  "whole-file reads through a 3-node loopback network, from a local sealed replica and from "
                  "remote holders, vs raw RocksDB writes of the same fragments",
                  run_get};
}

}  // namespace cairn::bench
