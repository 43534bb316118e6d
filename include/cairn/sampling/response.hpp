#pragma once
// Storage-challenge responses (docs/design.md section 7): the walk's commitment,
// the opened step pairs that prove it, the node's signature; their binary
// format (docs/proof-format.md "Response") and their verification.
//
// Lifecycle: the node walks (walk.hpp), anchors commitment_hash() with
// SubmitResponse inside the epoch's deadline window, and, once the anchoring
// block b exists, opens the steps that plan_openings(commitment,
// randomness(b)) names. The openings are bound to a block produced after the
// commitment was fixed, so a node cannot re-roll them by re-hashing its
// transcript (docs/proof-format.md "Why the openings wait for the anchor").

#include <cstdint>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/erasure/merkle.hpp"
#include "cairn/sampling/challenge.hpp"

namespace cairn::sampling {

// Persisted / wire format version of an encoded Response.
inline constexpr uint8_t kResponseVersion = 1;
// Decoder bounds (a bug and abuse guard; no valid network comes near them).
inline constexpr uint32_t kMaxResponseChunkBytes = 1u << 20;
inline constexpr uint32_t kMaxResponsePairs = 4096;
inline constexpr size_t kMaxResponseBytes = size_t{64} << 20;

// One opened walk step.
struct StepOpening {
  Bytes sealed;                          // chunk_i as walked (chunk_size bytes)
  Bytes unsealed;                        // the same chunk of the committed blob
  BlobId commitment{};                   // blob id of the blob at the step's position
  erasure::ChunkProof chunk_proof;       // `unsealed` in `commitment`
  erasure::MerkleProof blob_path;        // `commitment` in blobs_root of block e*E
  erasure::MerkleProof transcript_path;  // leaf i in transcript_root (S leaves)
  bool operator==(const StepOpening&) const = default;
};

// Steps `step` and `step + 1`, which must be transcript leaves i and i + 1
// chaining into each other: the second step starts from the state the first
// one ends in, so a break in the walk between them cannot hide.
struct PairOpening {
  uint32_t step = 0;    // i, 1 <= i < S
  Hash32 prev_state{};  // state_{i-1}
  StepOpening first;    // step i
  StepOpening second;   // step i + 1
  bool operator==(const PairOpening&) const = default;
};

struct Response {
  NodeId node{};
  ShardId shard{};
  Epoch epoch{};
  Hash32 transcript_root{};
  Hash32 final_state{};  // state_S
  // The block whose responses_root holds commitment(); its randomness picks
  // the openings.
  BlockNumber anchor_block{};
  std::vector<PairOpening> pairs;  // in plan_openings() order
  // ed25519 by `node` over signing_hash().
  Signature signature{};

  // What SubmitResponse anchors (the "response hash"): commitment_hash() of
  // node, shard, epoch, transcript_root, final_state.
  Hash32 commitment() const;
  // SHA-256("cairn/response-sig/v1" || encode_unsigned()).
  Hash32 signing_hash() const;
  // Everything but the signature, in wire order.
  Bytes encode_unsigned() const;
  Bytes encode() const;
  void encode_to(Bytes& out) const;
  // Parses untrusted bytes (at most kMaxResponseBytes, all consumed).
  // invalid_argument naming the field on truncation, a length over its bound
  // or trailing bytes; unsupported for another version. Checks no signature
  // or proof: that is verify_response().
  static Result<Response> decode(ByteSpan data) noexcept;
  static Result<Response> read(ByteReader& reader) noexcept;

  bool operator==(const Response&) const = default;
};

// Signs `response` in place with the node key (response.node must be its
// public key: invalid_argument otherwise).
Status sign_response(Response& response, const SigningKey& key);

// Full check of one response against the epoch challenge and the randomness
// of its anchoring block:
//  - shard and epoch are the challenge's; the node's signature verifies;
//  - exactly the planned pairs, each step's position derived from its
//    previous state, states chained through the pair, both leaves on their
//    transcript paths (index i - 1 of S), state_S when the pair ends at S,
//    state_0 when it starts at 1;
//  - every unsealed chunk in its blob commitment at the derived fragment and
//    chunk, every commitment at the derived index of blobs_root (block e*E);
//  - for the planned mask_checks opened steps, sealed XOR mask == unsealed.
// verification_failed naming the node, pair, step and check on any failure;
// invalid_argument when the challenge's parameters do not validate.
// Does not check that the commitment was anchored (the caller holds the
// header: contracts::verify_response_inclusion) or the anchoring window.
Status verify_response(const EpochChallenge& challenge, const Response& response,
                       const Hash32& anchor_randomness);

}  // namespace cairn::sampling
