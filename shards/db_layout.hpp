#pragma once
// RocksDB options and column family descriptors of the store, built from
// StoreSettings. Private to shards/; the store bench opens its raw-RocksDB
// baseline with exactly these options.

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/status.h>

#include <string>
#include <vector>

#include "cairn/core/result.hpp"
#include "cairn/shards/settings.hpp"

namespace cairn::shards {

struct DbLayout {
  rocksdb::DBOptions db;
  // One descriptor per format::Family, in Family order.
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  rocksdb::WriteOptions write;
  rocksdb::ReadOptions read;
};

DbLayout make_db_layout(const StoreSettings& settings);

// Maps a RocksDB status to an Error: corruption -> Errc::corruption,
// not found -> not_found, busy/try again -> busy, invalid argument ->
// invalid_argument, not supported -> unsupported, anything else io_error.
// The message is "<context>: <rocksdb message>".
Error rocksdb_error(const rocksdb::Status& s, const std::string& context);

}  // namespace cairn::shards
