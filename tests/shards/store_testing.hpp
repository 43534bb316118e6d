#pragma once
// Helpers for the shards tests: small network geometry, synthetic blobs
// (random fragments and roots, no codec needed), and raw RocksDB access
// underneath a closed Store to damage values the way a disk or a bug would.

#include <rocksdb/db.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cairn/erasure/params.hpp"
#include "cairn/shards/store.hpp"
#include "db_layout.hpp"
#include "format.hpp"

namespace cairn::shards::testing {

// 8 KiB blobs, k=4, m=2, 512-byte chunks (2 KiB fragments), 16 blobs per shard.
erasure::NetworkParams small_params();

struct SyntheticBlob {
  BlobRecord record;
  std::vector<Bytes> fragments;
  std::vector<ByteSpan> spans() const;
};

// A blob with random fragment bytes, random roots and a random id, shaped
// for `params`. Enough for the store, which never recomputes commitments.
SyntheticBlob synthetic_blob(const erasure::NetworkParams& params, BlobIndex index,
                             std::mt19937_64& rng);

// RocksDB opened directly on a store directory (the Store must be closed).
class RawDb {
 public:
  explicit RawDb(const std::filesystem::path& dir, const StoreSettings& settings = {});
  ~RawDb();
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  std::optional<std::string> get(format::Family f, ByteSpan key);
  void put(format::Family f, ByteSpan key, const std::string& value);
  // Keys of family f beginning with prefix.
  size_t count(format::Family f, ByteSpan prefix = {});
  void flush();

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

// Every key of the fragments family for `index` (under `params`' geometry).
format::FragmentKeyBytes fragment_key(const erasure::NetworkParams& params, BlobIndex index,
                                      uint8_t fragment);
format::BlobKey blob_key(const erasure::NetworkParams& params, BlobIndex index);

}  // namespace cairn::shards::testing
