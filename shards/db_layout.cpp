#include "db_layout.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

#include <algorithm>

#include "format.hpp"

namespace cairn::shards {

DbLayout make_db_layout(const StoreSettings& settings) {
  DbLayout layout;

  rocksdb::DBOptions& db = layout.db;
  db.create_if_missing = true;
  db.create_missing_column_families = true;
  db.paranoid_checks = true;
  db.max_background_jobs = std::max(1, settings.max_background_jobs);
  db.max_open_files = settings.max_open_files;
  db.bytes_per_sync = settings.bytes_per_sync;
  // After a crash, recover every write batch that reached the WAL intact and
  // drop a torn tail: a blob's batch comes back whole or not at all.
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // Small families (peers, cursors) rarely fill a memtable; without a cap
  // their unflushed entries would pin old WAL files forever.
  db.max_total_wal_size = 4 * settings.write_buffer_bytes;
  db.keep_log_file_num = 4;
  db.max_log_file_size = 16 << 20;

  auto cache = rocksdb::NewLRUCache(settings.block_cache_bytes);
  auto table_options = [&] {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    t.cache_index_and_filter_blocks = true;
    t.pin_l0_filter_and_index_blocks_in_cache = true;
    return t;
  };

  const size_t small_buffer = std::min<size_t>(settings.write_buffer_bytes, size_t{16} << 20);
  for (size_t i = 0; i < format::kFamilyCount; ++i) {
    const format::Family family = format::family_at(i);
    rocksdb::ColumnFamilyOptions cf;
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options()));
    // Fragments are coded (and later sealed) data and records are mostly
    // hashes: nothing here compresses.
    cf.compression = rocksdb::kNoCompression;
    cf.level_compaction_dynamic_level_bytes = true;
    cf.write_buffer_size = small_buffer;
    if (family == format::Family::fragments) {
      cf.write_buffer_size = settings.write_buffer_bytes;
      if (settings.separate_fragment_values) {
        cf.enable_blob_files = true;
        cf.min_blob_size = 512;
        cf.blob_file_size = uint64_t{256} << 20;
        cf.blob_compression_type = rocksdb::kNoCompression;
        // Deleted blobs leave garbage in blob files; compaction rewrites the
        // oldest files' live values so the space comes back.
        cf.enable_blob_garbage_collection = true;
      }
    }
    layout.families.emplace_back(std::string(format::family_name(family)), cf);
  }

  layout.write.sync = settings.sync_writes;
  layout.read.verify_checksums = true;
  return layout;
}

Error rocksdb_error(const rocksdb::Status& s, const std::string& context) {
  Errc code = Errc::io_error;
  if (s.IsCorruption()) {
    code = Errc::corruption;
  } else if (s.IsNotFound()) {
    code = Errc::not_found;
  } else if (s.IsBusy() || s.IsTryAgain()) {
    code = Errc::busy;
  } else if (s.IsInvalidArgument()) {
    code = Errc::invalid_argument;
  } else if (s.IsNotSupported()) {
    code = Errc::unsupported;
  }
  return Error{code, context + ": " + s.ToString()};
}

}  // namespace cairn::shards
