#pragma once
// Replica sealing (docs/design.md section 7). Every node stores a replica unique
// to its identity: sealed_fragment = fragment XOR mask(node, commitment,
// index, f). The mask is a sequential, data-dependent fill whose cost is
// linear in seal_cost (the number of passes) and in which every output byte
// depends on the whole fill, so a node that keeps one plain copy for many
// identities must recompute a whole blob's mask for every chunk it is asked
// about. The construction is specified in docs/proof-format.md ("Sealing").
//
// Mask unit: the whole replica of one blob (n * fragment_size bytes);
// mask(node, commitment, index, f) is fragment f's slice of it. Making the
// unit a blob rather than a fragment costs an honest node nothing per byte
// sealed, and makes a cheater's cost per challenged chunk n times larger.

#include <cstdint>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/erasure/params.hpp"

namespace cairn::sampling {

// Version of the mask construction; part of its domain separation. Changing
// the construction means a new version: stored replicas depend on it.
inline constexpr uint8_t kSealVersion = 1;

// Who a replica belongs to and which blob it is: the mask's inputs.
struct SealKey {
  NodeId node;
  BlobId commitment;
  BlobIndex index;
};

// Computes a blob's mask into `out`, which must hold exactly
// total_fragments * fragment_size bytes (the size of EncodedBlob::data).
// Pure and deterministic; safe to call from many threads at once.
void replica_mask(const erasure::NetworkParams& params, const SealKey& key, MutableByteSpan out);

// The first `prefix_blocks` chunk-sized blocks of the mask, into the first
// prefix_blocks * chunk_size bytes of `out` (which must hold the whole
// replica, as for replica_mask: the fill needs the room; bytes past the
// prefix are left unspecified). Exactly the bytes replica_mask() gives there,
// at the least work anyone can do for them: seal_cost - 1 full passes plus
// the final pass up to the last wanted block. What the challenge verifier
// pays per mask check, what a node unseals an opened fragment with, and what
// a node without its replica must pay per walk step (docs/proof-format.md).
// prefix_blocks is clamped to [1, replica blocks].
void replica_mask_prefix(const erasure::NetworkParams& params, const SealKey& key,
                         uint32_t prefix_blocks, MutableByteSpan out);

// The mask of one chunk of the replica (chunk counts across all n
// fragments), into `out` (chunk_size bytes). `scratch` is reused across calls.
void replica_chunk_mask(const erasure::NetworkParams& params, const SealKey& key, uint32_t chunk,
                        MutableByteSpan out, Bytes& scratch);

// XORs the blob's mask into `replica` (all n fragments, contiguous) in place.
// Sealing and unsealing are the same operation. `scratch` is reused across
// calls to avoid an allocation per blob.
void apply_replica_mask(const erasure::NetworkParams& params, const SealKey& key,
                        MutableByteSpan replica, Bytes& scratch);

}  // namespace cairn::sampling
