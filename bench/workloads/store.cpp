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
#include "db_layout.hpp"
#include "format.hpp"

namespace cairn::bench {
namespace {

// 256 blobs = 48 MiB of fragments at the default geometry: a database lives
// within its first memtable (64 MiB), so the sides measure the write path
// (WAL, memtable, fsync) rather than when a background flush happens to hit
// a 0.5 s round on a shared disk.
constexpr uint64_t kBlobsPerDb = 256;
// Databases opened ahead of use per side.
constexpr size_t kOpenAhead = 3;
// Distinct payloads cycled through (each also gets a unique counter stamped
// in, so every ingest is a new blob id).
constexpr size_t kPayloads = 16;

// A failure inside a timed side; caught in run() and returned as its Error.
struct SideFailed : std::runtime_error {
  Error error;
  explicit SideFailed(Error e) : std::runtime_error(e.message), error(std::move(e)) {}
};

// The work directory: opts.work_dir/store-bench, or a fresh temp dir; removed afterwards.
class WorkDir {
 public:
  explicit WorkDir(const std::string& given) {
    if (!given.empty()) {
      path_ = std::filesystem::path(given) / "store-bench";
      std::filesystem::create_directories(path_);
      return;
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-bench-store-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw SideFailed(Error{Errc::io_error, "mkdtemp failed"});
    path_ = tmpl;
  }
  ~WorkDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Fresh databases for one side, a new one every kBlobsPerDb blobs, so disk
// use stays bounded however long the run. The next databases are opened
// ahead, and used ones closed and removed behind, on helper threads: the
// timed loop measures writes, not RocksDB's open (a few hundred ms of
// fsyncs on a busy disk), and both sides rotate alike.
template <class Db>
class Rotation {
 public:
  using Open = std::function<std::unique_ptr<Db>(const std::filesystem::path&)>;

  Rotation(std::filesystem::path base, Open open) : base_(std::move(base)), open_(std::move(open)) {}
  ~Rotation() {
    for (auto& f : ahead_) {
      try {
        retire(f.get()).wait();
      } catch (...) {
        // A failed open has already been reported by the timed loop or is moot.
      }
    }
    retire(std::move(current_)).wait();
    for (auto& f : behind_) f.wait();
  }
  Rotation(const Rotation&) = delete;
  Rotation& operator=(const Rotation&) = delete;

  // The database for the next blob and that blob's index in it.
  std::pair<Db*, BlobIndex> next() {
    if (!current_.db || used_ == kBlobsPerDb) {
      fill_ahead();
      if (current_.db) behind_.push_back(retire(std::move(current_)));
      current_ = ahead_.front().get();  // rethrows a failed open
      ahead_.pop_front();
      used_ = 0;
      fill_ahead();
      std::erase_if(behind_, [](auto& f) {
        return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
      });
    }
    return {current_.db.get(), BlobIndex{used_++}};
  }

 private:
  struct Opened {
    std::unique_ptr<Db> db;
    std::filesystem::path dir;
  };

  void fill_ahead() {
    while (ahead_.size() < kOpenAhead) {
      auto dir = base_ / ("db-" + std::to_string(made_++));
      ahead_.push_back(std::async(std::launch::async, [open = open_, dir] {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        return Opened{open(dir), dir};
      }));
    }
  }

  static std::future<void> retire(Opened o) {
    return std::async(std::launch::async, [o = std::move(o)]() mutable {
      o.db.reset();
      std::error_code ec;
      if (!o.dir.empty()) std::filesystem::remove_all(o.dir, ec);
    });
  }

  std::filesystem::path base_;
  Open open_;
  std::deque<std::future<Opened>> ahead_;
  std::vector<std::future<void>> behind_;
  Opened current_;
  uint64_t used_ = 0;
  uint64_t made_ = 0;
};

// Our path: a Store per database, ingesting payloads.
class OursSide {
 public:
  OursSide(std::filesystem::path dir, const erasure::NetworkParams& params,
           const shards::StoreSettings& settings, const erasure::Codec& codec,
           std::vector<Bytes> payloads)
      : codec_(codec), payloads_(std::move(payloads)),
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

// RocksDB opened directly with the store's layout: the baseline's target.
class RawDb {
 public:
  RawDb(const std::filesystem::path& dir, const shards::DbLayout& layout) {
    std::filesystem::create_directories(dir);
    rocksdb::DB* db = nullptr;
    const auto s = rocksdb::DB::Open(layout.db, dir.string(), layout.families, &handles_, &db);
    if (!s.ok()) throw SideFailed(shards::rocksdb_error(s, "raw RocksDB open " + dir.string()));
    db_ = db;
  }
  ~RawDb() {
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
    (void)db_->Close();
    delete db_;
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  rocksdb::DB& db() { return *db_; }
  rocksdb::ColumnFamilyHandle* fragments() {
    return handles_[shards::format::family_slot(shards::format::Family::fragments)];
  }

 private:
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

// The baseline: n fragment-sized puts per blob in one batch, nothing else.
class RawSide {
 public:
  RawSide(std::filesystem::path dir, const erasure::NetworkParams& params,
          const shards::StoreSettings& settings, std::vector<Bytes> replicas)
      : params_(params), layout_(shards::make_db_layout(settings)), replicas_(std::move(replicas)),
        dbs_(std::move(dir), [this](const std::filesystem::path& d) {
          return std::make_unique<RawDb>(d, layout_);
        }) {}

  uint64_t run_once() {
    auto [db, index] = dbs_.next();
    const Bytes& replica = replicas_[counter_++ % replicas_.size()];
    const uint32_t size = params_.fragment_size();
    rocksdb::WriteBatch batch;
    for (uint32_t f = 0; f < params_.total_fragments(); ++f) {
      const auto key =
          shards::format::fragment_key(ShardId{0}, index, FragmentIndex{static_cast<uint8_t>(f)});
      check(batch.Put(db->fragments(),
                      rocksdb::Slice(reinterpret_cast<const char*>(key.data()), key.size()),
                      rocksdb::Slice(reinterpret_cast<const char*>(replica.data()) + size_t{f} * size,
                                     size)),
            "batch put");
    }
    check(db->db().Write(layout_.write, &batch), "write");
    return params_.blob_size;
  }

 private:
  static void check(const rocksdb::Status& s, const char* what) {
    if (!s.ok()) throw SideFailed(shards::rocksdb_error(s, std::string("raw RocksDB ") + what));
  }

  erasure::NetworkParams params_;
  shards::DbLayout layout_;
  std::vector<Bytes> replicas_;
  uint64_t counter_ = 0;
  Rotation<RawDb> dbs_;
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

  try {
    WorkDir work(opts.work_dir);
    // One measured pair under `settings`, in fresh directories.
    const auto measure = [&](const shards::StoreSettings& settings, const std::string& tag) {
      OursSide ours_impl(work.path() / ("ours-" + tag), params, settings, **codec, payloads);
      RawSide raw_impl(work.path() / ("baseline-" + tag), params, settings, replicas);
      Side ours{"ingest: RS encode + commitment + checksummed batch of n fragments and record",
                [&] { return ours_impl.run_once(); }};
      Side baseline{"raw RocksDB: batch of n fragment-sized puts",
                    [&] { return raw_impl.run_once(); }};
      auto [ours_stats, base_stats] = measure_pair(opts, ours, baseline);
      // Bytes per second -> MB/s.
      for (auto* st : {&ours_stats, &base_stats}) {
        for (auto& v : st->per_second) v /= 1e6;
        st->median /= 1e6;
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
  } catch (const SideFailed& e) {
    return tl::unexpected(e.error);
  } catch (const std::filesystem::filesystem_error& e) {
    return make_error(Errc::io_error, e.what());
  }
}

}  // namespace

Workload store_workload() {
  return Workload{"store",
                  "blob ingest (encode, commit, checksummed batch write) vs raw RocksDB writes of "
                  "the same fragments",
                  run_store};
}

}  // namespace cairn::bench
