#pragma once
// The raw RocksDB baseline shared by the storage benches (store, put, get):
// n fragment-sized puts per blob in one WriteBatch, on RocksDB opened with
// the store's own options (make_db_layout: same sync policy, column
// families, blob files, caches), rotating to a fresh database every
// kBlobsPerDb blobs so disk use stays bounded however long the run
// (databases are opened ahead and removed behind, off the timed path).
// Throughput is counted in payload bytes (blob_size per blob).

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cairn/erasure/params.hpp"
#include "cairn/shards/settings.hpp"
#include "db_layout.hpp"
#include "format.hpp"

namespace cairn::bench {

// 256 blobs = 48 MiB of fragments at the default geometry: a database lives
// within its first memtable (64 MiB), so the sides measure the write path
// (WAL, memtable, fsync) rather than when a background flush happens to hit
// a 0.5 s round on a shared disk.
inline constexpr uint64_t kBlobsPerDb = 256;
// Databases opened ahead of use per side.
inline constexpr size_t kOpenAhead = 3;
// A failure inside a timed side; caught in run() and returned as its Error.
struct SideFailed : std::runtime_error {
  Error error;
  explicit SideFailed(Error e) : std::runtime_error(e.message), error(std::move(e)) {}
};

// The work directory: opts.work_dir/<name>-bench, or a fresh temp dir; removed afterwards.
class WorkDir {
 public:
  WorkDir(const std::string& given, const std::string& name) {
    if (!given.empty()) {
      path_ = std::filesystem::path(given) / (name + "-bench");
      std::filesystem::create_directories(path_);
      return;
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / ("cairn-bench-" + name + "-XXXXXX")).string();
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
      std::erase_if(behind_, [](auto& f) { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
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
  RawSide(std::filesystem::path dir, const erasure::NetworkParams& params, const shards::StoreSettings& settings,
          std::vector<Bytes> replicas)
      : params_(params),
        layout_(shards::make_db_layout(settings)),
        replicas_(std::move(replicas)),
        dbs_(std::move(dir), [this](const std::filesystem::path& d) { return std::make_unique<RawDb>(d, layout_); }) {}

  uint64_t run_once() {
    auto [db, index] = dbs_.next();
    const Bytes& replica = replicas_[counter_++ % replicas_.size()];
    const uint32_t size = params_.fragment_size();
    rocksdb::WriteBatch batch;
    for (uint32_t f = 0; f < params_.total_fragments(); ++f) {
      const auto key = shards::format::fragment_key(ShardId{0}, index, FragmentIndex{static_cast<uint8_t>(f)});
      check(batch.Put(db->fragments(), rocksdb::Slice(reinterpret_cast<const char*>(key.data()), key.size()),
                      rocksdb::Slice(reinterpret_cast<const char*>(replica.data()) + size_t{f} * size, size)),
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

// Runs a storage workload body, turning a SideFailed or filesystem error
// thrown anywhere in it into the workload's error.
template <class Body>
auto run_guarded(Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const SideFailed& e) {
    return tl::unexpected(e.error);
  } catch (const std::filesystem::filesystem_error& e) {
    return make_error(Errc::io_error, e.what());
  }
}

}  // namespace cairn::bench
