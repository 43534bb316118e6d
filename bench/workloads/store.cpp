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
// directory, and start a fresh database every kBlobsPerDb blobs so disk use
// stays bounded however long the run; rotation is part of both sides'
// timed work. Throughput is payload MB/s (10^6 bytes of blob payload per
// second, blob_size per blob).

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdlib>
#include <filesystem>
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

// 1024 blobs = 192 MiB of fragments at the default geometry: three memtable
// flushes per database, so flushing and blob-file writes are measured too.
constexpr uint64_t kBlobsPerDb = 1024;
// Distinct payloads cycled through (each also gets a unique counter stamped
// in, so every ingest is a new blob id).
constexpr size_t kPayloads = 16;

// A failure inside a timed side; caught in run() and returned as its Error.
struct SideFailed : std::runtime_error {
  Error error;
  explicit SideFailed(Error e) : std::runtime_error(e.message), error(std::move(e)) {}
};

// The work directory: opts.work_dir, or a fresh temp dir removed afterwards.
class WorkDir {
 public:
  explicit WorkDir(const std::string& given) {
    if (!given.empty()) {
      path_ = std::filesystem::path(given) / "store-bench";
      std::filesystem::create_directories(path_);
      owned_ = true;
      return;
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-bench-store-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw SideFailed(Error{Errc::io_error, "mkdtemp failed"});
    path_ = tmpl;
    owned_ = true;
  }
  ~WorkDir() {
    std::error_code ec;
    if (owned_) std::filesystem::remove_all(path_, ec);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool owned_ = false;
};

void remove_dir(const std::filesystem::path& p) {
  std::error_code ec;
  std::filesystem::remove_all(p, ec);
  if (ec) throw SideFailed(Error{Errc::io_error, "removing " + p.string() + ": " + ec.message()});
}

// Our path: a Store, ingesting payloads.
class OursSide {
 public:
  OursSide(std::filesystem::path dir, const erasure::NetworkParams& params,
           const shards::StoreSettings& settings, const erasure::Codec& codec,
           std::vector<Bytes> payloads)
      : dir_(std::move(dir)), params_(params), settings_(settings), codec_(codec),
        payloads_(std::move(payloads)) {}

  uint64_t run_once() {
    if (!store_ || in_db_ == kBlobsPerDb) rotate();
    Bytes& payload = payloads_[counter_ % payloads_.size()];
    put_be<uint64_t>(payload.data(), counter_);
    auto r = shards::ingest_payload(*store_, codec_, BlobIndex{in_db_}, payload);
    if (!r) throw SideFailed(r.error());
    ++counter_;
    ++in_db_;
    return payload.size();
  }

 private:
  void rotate() {
    if (store_) {
      if (auto s = store_->close(); !s) throw SideFailed(s.error());
      store_.reset();
      remove_dir(dir_);
    }
    auto opened = shards::Store::open(dir_, params_, settings_);
    if (!opened) throw SideFailed(opened.error());
    store_ = std::move(*opened);
    in_db_ = 0;
  }

  std::filesystem::path dir_;
  erasure::NetworkParams params_;
  shards::StoreSettings settings_;
  const erasure::Codec& codec_;
  std::vector<Bytes> payloads_;
  std::unique_ptr<shards::Store> store_;
  uint64_t counter_ = 0;
  uint64_t in_db_ = 0;
};

// The baseline: raw RocksDB, n fragment puts per blob in one batch.
class RawSide {
 public:
  RawSide(std::filesystem::path dir, const erasure::NetworkParams& params,
          const shards::StoreSettings& settings, std::vector<Bytes> replicas)
      : dir_(std::move(dir)), params_(params), layout_(shards::make_db_layout(settings)),
        replicas_(std::move(replicas)) {}
  ~RawSide() { close(); }
  RawSide(const RawSide&) = delete;
  RawSide& operator=(const RawSide&) = delete;

  uint64_t run_once() {
    if (db_ == nullptr || in_db_ == kBlobsPerDb) rotate();
    const Bytes& replica = replicas_[counter_ % replicas_.size()];
    const uint32_t size = params_.fragment_size();
    rocksdb::WriteBatch batch;
    auto* fragments = handles_[shards::format::family_slot(shards::format::Family::fragments)];
    for (uint32_t f = 0; f < params_.total_fragments(); ++f) {
      const auto key = shards::format::fragment_key(ShardId{0}, BlobIndex{in_db_},
                                                    FragmentIndex{static_cast<uint8_t>(f)});
      const rocksdb::Slice value(reinterpret_cast<const char*>(replica.data()) + size_t{f} * size, size);
      check(batch.Put(fragments, rocksdb::Slice(reinterpret_cast<const char*>(key.data()), key.size()),
                      value),
            "batch put");
    }
    check(db_->Write(layout_.write, &batch), "write");
    ++counter_;
    ++in_db_;
    return params_.blob_size;
  }

 private:
  void check(const rocksdb::Status& s, const char* what) {
    if (!s.ok()) throw SideFailed(shards::rocksdb_error(s, std::string("raw RocksDB ") + what));
  }
  void close() {
    if (db_ == nullptr) return;
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
    handles_.clear();
    (void)db_->Close();
    delete db_;
    db_ = nullptr;
  }
  void rotate() {
    if (db_ != nullptr) {
      close();
      remove_dir(dir_);
    }
    std::filesystem::create_directories(dir_);
    check(rocksdb::DB::Open(layout_.db, dir_.string(), layout_.families, &handles_, &db_), "open");
    in_db_ = 0;
  }

  std::filesystem::path dir_;
  erasure::NetworkParams params_;
  shards::DbLayout layout_;
  std::vector<Bytes> replicas_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  uint64_t counter_ = 0;
  uint64_t in_db_ = 0;
};

Result<nlohmann::json> run_store(const Options& opts) {
  const auto params = erasure::NetworkParams::defaults();
  const shards::StoreSettings settings;  // the node's defaults
  auto codec = erasure::Codec::create(params);
  if (!codec) return tl::unexpected(codec.error());

  std::mt19937_64 rng(opts.seed);
  std::vector<Bytes> payloads;
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
    OursSide ours_impl(work.path() / "ours", params, settings, **codec, std::move(payloads));
    RawSide raw_impl(work.path() / "baseline", params, settings, std::move(replicas));
    Side ours{"ingest: RS encode + commitment + checksummed batch of n fragments and record",
              [&] { return ours_impl.run_once(); }};
    Side baseline{"raw RocksDB: batch of n fragment-sized puts", [&] { return raw_impl.run_once(); }};
    auto [ours_stats, base_stats] = measure_pair(opts, ours, baseline);
    // Bytes per second -> MB/s.
    for (auto* st : {&ours_stats, &base_stats}) {
      for (auto& v : st->per_second) v /= 1e6;
      st->median /= 1e6;
    }
    auto report = pair_report("store", "MB/s", ours, ours_stats, baseline, base_stats, opts);
    report["blob_size"] = params.blob_size;
    report["fragments"] = params.total_fragments();
    report["fragment_size"] = params.fragment_size();
    report["sync_writes"] = settings.sync_writes;
    report["separate_fragment_values"] = settings.separate_fragment_values;
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
