#pragma once
// The chain's blob registry as the storage engines see it: which blobs a
// shard should hold (index, commitment, true length) and how far the chain
// has got. The node implements it over contracts::Chain (blob_count,
// blob_by_index, head), usually with a cache; tests implement it over a
// vector. shards/ does not depend on contracts/.
//
// Stable interface: changes are additive only.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"

namespace cairn::shards {

// One registered blob (contracts::BlobRecord without the block).
struct RegisteredBlob {
  BlobIndex index;
  BlobId id;            // the commitment
  uint32_t length = 0;  // true payload length, bound by the chain
  bool operator==(const RegisteredBlob&) const = default;
};

// Threading: every method may block (a chain query over RocksDB or HTTP):
// the engines call them on the worker pool, never on a network thread. All
// methods are safe to call from several threads at once.
class Registry {
 public:
  virtual ~Registry() = default;

  // Number of blobs registered in `shard` so far. Shards fill in index
  // order, so they are exactly the indexes [first_index(shard),
  // first_index(shard) + count).
  virtual Result<uint64_t> blob_count(ShardId shard) = 0;

  // Up to `limit` registered blobs of `shard` with index >= `from`,
  // ascending, without gaps. Fewer (or none) when the registry ends.
  virtual Result<std::vector<RegisteredBlob>> blobs(ShardId shard, BlobIndex from,
                                                    size_t limit) = 0;

  // The latest block the registry reflects (for status: "synced as of").
  virtual Result<BlockNumber> head() = 0;

  // The registered blob whose id is `id`, however recent (blobs() and
  // blob_count() may hold fresh registrations back: the node's settle
  // delay); the sync engine checks a hint with it. Errc::not_found when
  // the registry does not list it (yet). The default knows no id: a
  // registry without it makes every hint wait and then give up.
  virtual Result<RegisteredBlob> lookup(const BlobId& id) {
    return make_error(Errc::not_found, "this registry cannot look up blob " + id.hex());
  }
};

}  // namespace cairn::shards
