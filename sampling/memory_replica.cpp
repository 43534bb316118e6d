#include "cairn/sampling/memory_replica.hpp"

#include <cstring>
#include <string>

#include "cairn/contracts/header.hpp"
#include "cairn/sampling/seal.hpp"
#include "merkle_levels.hpp"

namespace cairn::sampling {

// ---- BlobLog ----

struct BlobLog::Impl {
  std::vector<BlobId> ids;
  uint64_t tree_size = 0;  // size of `tree`, 0 when none is cached
  detail::MerkleLevels tree;

  Status build(uint64_t size) {
    if (size > ids.size()) {
      return make_error(Errc::invalid_argument, "blob log: tree of " + std::to_string(size) +
                                                    " blobs, only " + std::to_string(ids.size()) +
                                                    " registered");
    }
    if (tree_size == size && size > 0) return {};
    std::vector<Hash32> leaves(size);
    for (uint64_t i = 0; i < size; ++i) leaves[i] = contracts::blob_leaf(ids[i]);
    tree = detail::MerkleLevels(std::move(leaves));
    tree_size = size;
    return {};
  }
};

BlobLog::BlobLog() : impl_(std::make_unique<Impl>()) {}
BlobLog::~BlobLog() = default;
BlobLog::BlobLog(BlobLog&&) noexcept = default;
BlobLog& BlobLog::operator=(BlobLog&&) noexcept = default;

BlobIndex BlobLog::append(const BlobId& commitment) {
  impl_->ids.push_back(commitment);
  return BlobIndex{impl_->ids.size() - 1};
}

uint64_t BlobLog::size() const noexcept { return impl_->ids.size(); }

const BlobId& BlobLog::at(BlobIndex index) const { return impl_->ids.at(index.value); }

Result<Hash32> BlobLog::root(uint64_t tree_size) {
  CAIRN_TRY_STATUS(impl_->build(tree_size));
  return impl_->tree.root();
}

Result<erasure::MerkleProof> BlobLog::prove(BlobIndex index, uint64_t tree_size) {
  CAIRN_TRY_STATUS(impl_->build(tree_size));
  return impl_->tree.prove(index.value);
}

// ---- MemoryReplica ----

MemoryReplica::MemoryReplica(erasure::NetworkParams params, NodeId node, BlobPaths paths)
    : params_(params), node_(node), paths_(std::move(paths)) {}

void MemoryReplica::add(BlobIndex index, const erasure::CommittedBlob& blob) {
  Stored s;
  s.id = blob.commitment.id;
  s.fragment_roots = blob.commitment.fragment_roots;
  s.sealed = blob.encoded.data;
  apply_replica_mask(params_, SealKey{node_, s.id, index}, s.sealed, scratch_);
  blobs_[index] = std::move(s);
}

bool MemoryReplica::holds(BlobIndex index) const { return blobs_.count(index) != 0; }

std::optional<MutableByteSpan> MemoryReplica::sealed_replica(BlobIndex index) {
  auto it = blobs_.find(index);
  if (it == blobs_.end()) return std::nullopt;
  return MutableByteSpan(it->second.sealed);
}

Status MemoryReplica::read_sealed_chunk(ChunkPosition pos, MutableByteSpan out) {
  auto it = blobs_.find(pos.blob);
  if (it == blobs_.end()) {
    return make_error(Errc::not_found, "blob " + std::to_string(pos.blob.value) + " is not held");
  }
  const size_t off = size_t{pos.chunk} * params_.chunk_size;
  if (out.size() != params_.chunk_size || off + out.size() > it->second.sealed.size()) {
    return make_error(Errc::invalid_argument,
                      "chunk " + std::to_string(pos.chunk) + " outside the replica");
  }
  std::memcpy(out.data(), it->second.sealed.data() + off, out.size());
  return {};
}

Result<ChunkOpening> MemoryReplica::open_chunk(ChunkPosition pos, BlockNumber start_block,
                                               uint64_t blobs_tree_size) {
  auto it = blobs_.find(pos.blob);
  if (it == blobs_.end()) {
    return make_error(Errc::not_found, "blob " + std::to_string(pos.blob.value) + " is not held");
  }
  auto path = paths_(pos.blob, start_block, blobs_tree_size);
  if (!path) return tl::unexpected(path.error());
  const uint32_t f = pos.chunk / params_.chunks_per_fragment();
  const size_t fs = params_.fragment_size();
  const Stored& s = it->second;
  if (size_t{f + 1} * fs > s.sealed.size()) {
    return make_error(Errc::invalid_argument,
                      "chunk " + std::to_string(pos.chunk) + " outside the replica");
  }
  return open_from_sealed_fragment(params_, node_, s.id, pos.blob, s.fragment_roots, pos.chunk,
                                   ByteSpan(s.sealed).subspan(size_t{f} * fs, fs), std::move(*path),
                                   scratch_);
}

}  // namespace cairn::sampling
