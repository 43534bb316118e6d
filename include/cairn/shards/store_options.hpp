#pragma once
// What a caller may inject into a Store instead of the defaults (not
// settings: nothing here comes from a config file). Kept apart from
// store.hpp's settings so that including it pulls in no RocksDB header:
// rocksdb::FileSystem is only named here.

#include <memory>

namespace rocksdb {
class FileSystem;
}

namespace cairn::shards {

struct StoreOptions {
  // The file system every RocksDB file operation of the store goes through
  // (its WAL, table, blob and manifest files). Null (default): the
  // operating system's, rocksdb::FileSystem::Default(). Tests pass a wrapper
  // that fails chosen writes, syncs or reads (tests/support/fault_fs.hpp).
  // The store keeps a reference while it is open.
  std::shared_ptr<rocksdb::FileSystem> file_system;
};

}  // namespace cairn::shards
