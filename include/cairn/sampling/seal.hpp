#pragma once
// Replica sealing (DESIGN.md section 7). Every node stores a replica unique
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

// XORs the blob's mask into `replica` (all n fragments, contiguous) in place.
// Sealing and unsealing are the same operation. `scratch` is reused across
// calls to avoid an allocation per blob.
void apply_replica_mask(const erasure::NetworkParams& params, const SealKey& key,
                        MutableByteSpan replica, Bytes& scratch);

}  // namespace cairn::sampling
