#include "cairn/shards/prover.hpp"

#include <cstring>
#include <string>

namespace cairn::shards {

StoreProver::StoreProver(const Store& store, const NodeId& node, BlobPaths paths)
    : store_(store), params_(store.params()), node_(node), paths_(std::move(paths)) {}

Status StoreProver::read_sealed_chunk(sampling::ChunkPosition pos, MutableByteSpan out) {
  const uint32_t cpf = params_.chunks_per_fragment();
  const FragmentIndex fragment{static_cast<uint8_t>(pos.chunk / cpf)};
  auto frag = store_.get_fragment(pos.blob, fragment);
  if (!frag) return tl::unexpected(frag.error());
  const size_t offset = size_t{pos.chunk % cpf} * params_.chunk_size;
  if (frag->size() < offset + out.size()) {
    return make_error(Errc::corruption, "blob index " + std::to_string(pos.blob.value) +
                                            " fragment " + std::to_string(fragment.value) +
                                            ": stored fragment holds " +
                                            std::to_string(frag->size()) + " bytes");
  }
  std::memcpy(out.data(), frag->data() + offset, out.size());
  return {};
}

Result<sampling::ChunkOpening> StoreProver::open_chunk(sampling::ChunkPosition pos,
                                                       BlockNumber start_block,
                                                       uint64_t blobs_tree_size) {
  auto record = store_.get_blob_at(pos.blob);
  if (!record) return tl::unexpected(record.error());
  const FragmentIndex fragment{static_cast<uint8_t>(pos.chunk / params_.chunks_per_fragment())};
  auto frag = store_.get_fragment(pos.blob, fragment);
  if (!frag) return tl::unexpected(frag.error());
  auto path = paths_(pos.blob, start_block, blobs_tree_size);
  if (!path) return tl::unexpected(path.error());
  return sampling::open_from_sealed_fragment(params_, node_, record->id, pos.blob,
                                             record->fragment_roots, pos.chunk, *frag,
                                             std::move(*path), scratch_);
}

}  // namespace cairn::shards
