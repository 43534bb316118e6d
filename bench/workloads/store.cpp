// `cairn bench store`: blob ingest into the store against raw RocksDB writes
// of the same fragment bytes.
//
//   ours:     ingest_payload per blob = RS encode (ISA-L) + commitment
//             (SHA-256 Merkle trees) + one checksummed WriteBatch holding all
//             n fragments, the blob record and the id entry.
//   baseline: one WriteBatch of n fragment-sized puts (same key layout),
//             nothing else.
//
// Both sides open RocksDB with the store's options (make_db_layout: same
// sync policy, column families, blob files, caches), each in its own
// directories, and move to a fresh database every kBlobsPerDb blobs so disk
// use stays bounded however long the run (databases are opened ahead and
// removed behind, off the timed path, see Rotation). Throughput is payload
// MB/s (10^6 bytes of blob payload per second, blob_size per blob).
//
// Two pairs are measured: with the node's default settings (WAL fsync per
// blob: the headline ratio) and, under "without_fsync", with sync_writes off,
// where the CPU cost of encoding, committing and checksumming is no longer
// hidden behind the fsync both sides wait for.

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/store.hpp"
#include "raw_rocksdb.hpp"

namespace cairn::bench {
namespace {

// Distinct payloads cycled through (each also gets a unique counter stamped
// in, so every ingest is a new blob id).
constexpr size_t kPayloads = 16;

// Our path: a Store per database, ingesting payloads.
class OursSide {
 public:
  OursSide(std::filesystem::path dir, const erasure::NetworkParams& params, const shards::StoreSettings& settings,
           const erasure::Codec& codec, std::vector<Bytes> payloads)
      : codec_(codec),
        payloads_(std::move(payloads)),
        dbs_(std::move(dir), [params, settings](const std::filesystem::path& d) {
          auto opened = shards::Store::open(d, params, settings);
          if (!opened) throw SideFailed(opened.error());
          return std::move(*opened);
        }) {}

  uint64_t run_once() {
    auto [store, index] = dbs_.next();
    Bytes& payload = payloads_[counter_ % payloads_.size()];
    put_be<uint64_t>(payload.data(), counter_++);
    auto r = shards::ingest_payload(*store, codec_, index, payload);
    if (!r) throw SideFailed(r.error());
    return payload.size();
  }

 private:
  const erasure::Codec& codec_;
  std::vector<Bytes> payloads_;
  uint64_t counter_ = 0;
  Rotation<shards::Store> dbs_;
};

Result<nlohmann::json> run_store(const Options& opts) {
  const auto params = erasure::NetworkParams::defaults();
  auto codec = erasure::Codec::create(params);
  if (!codec) return tl::unexpected(codec.error());

  std::mt19937_64 rng(opts.seed);
  std::vector<Bytes> payloads;  // copied into each side (ours stamps a counter in)
  std::vector<Bytes> replicas;
  for (size_t i = 0; i < kPayloads; ++i) {
    Bytes p(params.blob_size);
    for (auto& b : p) b = static_cast<uint8_t>(rng());
    auto encoded = (*codec)->encode(p);
    if (!encoded) return tl::unexpected(encoded.error());
    replicas.push_back(std::move(encoded->data));
    payloads.push_back(std::move(p));
  }

  return run_guarded([&]() -> Result<nlohmann::json> {
    WorkDir work(opts.work_dir, "store");
    // One measured pair under `settings`, in fresh directories.
    const auto measure = [&](const shards::StoreSettings& settings, const std::string& tag) {
      OursSide ours_impl(work.path() / ("ours-" + tag), params, settings, **codec, payloads);
      RawSide raw_impl(work.path() / ("baseline-" + tag), params, settings, replicas);
      Side ours{"ingest: RS encode + commitment + checksummed batch of n fragments and record",
                [&] { return ours_impl.run_once(); }};
      Side baseline{"raw RocksDB: batch of n fragment-sized puts", [&] { return raw_impl.run_once(); }};
      auto [ours_stats, base_stats] = measure_pair(opts, ours, baseline);
      // Bytes per second -> MB/s.
      for (auto* st : {&ours_stats, &base_stats}) {
        scale(*st, 1e-6);
      }
      auto report = pair_report("store", "MB/s", ours, ours_stats, baseline, base_stats, opts);
      report["sync_writes"] = settings.sync_writes;
      report["separate_fragment_values"] = settings.separate_fragment_values;
      return report;
    };
    // The node's defaults: every blob's batch fsyncs the WAL, so on most
    // disks both sides wait on the same fsync and the ratio says little
    // about our own cost. The second pair, without fsync, shows it.
    const shards::StoreSettings defaults;
    shards::StoreSettings no_sync = defaults;
    no_sync.sync_writes = false;
    auto report = measure(defaults, "sync");
    auto unsynced = measure(no_sync, "nosync");
    unsynced.erase("workload");
    unsynced.erase("rounds");
    unsynced.erase("round_seconds");
    report["without_fsync"] = unsynced;
    report["blob_size"] = params.blob_size;
    report["fragments"] = params.total_fragments();
    report["fragment_size"] = params.fragment_size();
    report["blobs_per_db"] = kBlobsPerDb;
    return report;
  });
}

}  // namespace

Workload store_workload() {
  return Workload{"store",
                  "blob ingest (encode, commit, checksummed batch write) vs raw RocksDB writes of "
                  "the same fragments",
                  run_store};
}

}  // namespace cairn::bench
