#pragma once
// What the rollup contract's registry holds, as returned by Chain queries.

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/erasure/merkle.hpp"

namespace cairn::contracts {

struct BlobRecord {
  BlobIndex index{};
  BlobId commitment{};
  uint32_t size = 0;            // true payload length
  BlockNumber registered_in{};  // block of the first PutBlob
  bool operator==(const BlobRecord&) const = default;
};

struct NodeRecord {
  NodeId node_id{};
  std::string endpoint;         // "host:port" as registered
  std::vector<ShardId> shards;  // ascending
  BlockNumber registered_in{};  // block of the latest RegisterNode
  bool operator==(const NodeRecord&) const = default;
};

struct ResponseRecord {
  NodeId node_id{};
  ShardId shard{};
  Epoch epoch{};
  Hash32 response_hash{};
  BlockNumber anchored_in{};  // block whose responses_root holds it
  uint32_t leaf_index = 0;    // its position in that root
  bool operator==(const ResponseRecord&) const = default;
};

// A commitment's path in blobs_root of block `block` (tree size: that
// header's blob_count). Check with verify_blob_inclusion().
struct BlobInclusion {
  BlobRecord blob;
  BlockNumber block{};
  erasure::MerkleProof proof;
  bool operator==(const BlobInclusion&) const = default;
};

// An anchored response's path in responses_root of record.anchored_in (tree
// size: that header's response_count). Check with verify_response_inclusion().
struct ResponseInclusion {
  ResponseRecord record;
  erasure::MerkleProof proof;
  bool operator==(const ResponseInclusion&) const = default;
};

}  // namespace cairn::contracts
