#pragma once
// The prover side of a storage challenge (docs/design.md section 7): the
// sequential walk over a node's sealed replica and the opening of the steps
// its anchor picks.
//
// A node answers epoch e of shard s in two phases:
//   1. walk: at block e*E, run_walk() (or drive Walk by hand) over the sealed
//      replica; anchor transcript.commitment() with SubmitResponse before the
//      deadline;
//   2. open: once block b holding the anchor exists, open_response(transcript,
//      b, randomness(b), source, key) builds and signs the full response.
// Both phases block (they read the store and compute masks): run them on a
// worker thread, never on a network strand. Walk itself is sans-IO.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/erasure/merkle.hpp"
#include "cairn/sampling/challenge.hpp"
#include "cairn/sampling/response.hpp"

namespace cairn::sampling {

// Reads the node's sealed replica, a chunk at a time. Blocking; called from
// the thread running the walk only.
class ReplicaReader {
 public:
  virtual ~ReplicaReader() = default;
  // Copies the sealed chunk at `pos` (chunk_size bytes) into `out`.
  // not_found when the node does not hold it; corruption or io_error from
  // the store. The walk stops at the first error.
  virtual Status read_sealed_chunk(ChunkPosition pos, MutableByteSpan out) = 0;
};

// Everything an opened step needs besides the sealed chunk.
struct ChunkOpening {
  Bytes unsealed;  // chunk_size bytes of the committed blob
  BlobId commitment{};
  erasure::ChunkProof chunk_proof;  // `unsealed` in `commitment`
  erasure::MerkleProof blob_path;   // `commitment` in blobs_root of block e*E
};

// The prover's view of the node: its sealed replica plus what opens a step.
// The node implements it over its store and the chain (the unsealed chunk
// and ChunkProof from the stored fragment: open_from_sealed_fragment(); the
// blobs_root path from Chain::blob_inclusion(index, e*E)).
class ProverSource : public ReplicaReader {
 public:
  // The opening of the chunk at `pos` against blobs_root of block
  // `start_block` (tree size `blobs_tree_size`). Errors as for
  // read_sealed_chunk.
  virtual Result<ChunkOpening> open_chunk(ChunkPosition pos, BlockNumber start_block,
                                          uint64_t blobs_tree_size) = 0;
};

// Unseals fragment pos.chunk / chunks_per_fragment of a blob from its stored
// sealed bytes (one replica_mask_prefix) and builds the chunk's opening: what
// a store of sealed fragments answers open_chunk() with. `fragment_roots`
// are the blob's n roots; `blob_path` is passed through. corruption when the
// unsealed fragment does not hash to its root or the roots do not commit to
// `commitment` (the stored replica is damaged: publish nothing);
// invalid_argument on sizes that do not match `params`. `scratch` is reused
// across calls.
Result<ChunkOpening> open_from_sealed_fragment(const erasure::NetworkParams& params,
                                               const NodeId& node, const BlobId& commitment,
                                               BlobIndex index,
                                               std::span<const Hash32> fragment_roots,
                                               uint32_t replica_chunk, ByteSpan sealed_fragment,
                                               erasure::MerkleProof blob_path, Bytes& scratch);

// The walk's record: per step the state it started from and its transcript
// leaf, then a Merkle tree over the leaves. About 100 bytes per step
// (1.2 MB at S = 12288), held between the walk and the opening. Not
// thread-safe; movable, so the node can hand it from the walk's worker to
// the one that opens it.
class WalkTranscript {
 public:
  WalkTranscript(EpochChallenge challenge, NodeId node);
  ~WalkTranscript();
  WalkTranscript(WalkTranscript&&) noexcept;
  WalkTranscript& operator=(WalkTranscript&&) noexcept;

  const EpochChallenge& challenge() const noexcept;
  const NodeId& node() const noexcept;
  uint32_t steps() const noexcept;
  bool complete() const noexcept;  // steps() == walk_steps

  // Records step steps() + 1: `sealed_chunk` (chunk_size bytes) read after
  // `prev_state`; returns the new state. An honest walk passes the state the
  // previous append returned (initial_state() for step 1): Walk does that.
  // Anything else is recorded as given (tests use it to model cheaters).
  // Precondition: !complete().
  Hash32 append(const Hash32& prev_state, ByteSpan sealed_chunk);

  // state_0 of this node's walk in this epoch.
  const Hash32& initial_state() const noexcept;
  // Of step i (1-based, <= steps()): the state it started from, its
  // position, the state it ended in.
  const Hash32& prev_state(uint32_t step) const;
  ChunkPosition position(uint32_t step) const;
  const Hash32& state(uint32_t step) const;

  // After complete(): the transcript root (built on first use), state_S and
  // the commitment SubmitResponse anchors.
  const Hash32& root();
  const Hash32& final_state() const;
  Hash32 commitment();
  // Path of leaf `step - 1` in the transcript tree; after complete().
  erasure::MerkleProof leaf_path(uint32_t step);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The sans-IO walk: ask position(), read that sealed chunk, feed() it, until
// done(). Equivalent to run_walk() with any reader.
class Walk {
 public:
  Walk(EpochChallenge challenge, NodeId node);
  bool done() const noexcept { return transcript_.complete(); }
  // Step done() would take next (1-based) and where it reads.
  uint32_t next_step() const noexcept { return transcript_.steps() + 1; }
  ChunkPosition position() const noexcept;
  // Records the next step. Precondition: !done(), chunk_size bytes.
  void feed(ByteSpan sealed_chunk);
  // Hands the finished (or partial) transcript over.
  WalkTranscript take() && { return std::move(transcript_); }

 private:
  WalkTranscript transcript_;
  Hash32 state_{};
};

// Runs the whole walk: S reads through `reader`. Errors from the reader come
// back with the step and position in context.
Result<WalkTranscript> run_walk(const EpochChallenge& challenge, const NodeId& node,
                                ReplicaReader& reader);

// Builds the signed response for the anchor in block `anchor_block` with
// randomness `anchor_randomness`: re-reads the sealed chunk of every opened
// step (corruption when it no longer hashes to the recorded state: the
// replica changed since the walk), asks `source` for the rest, signs with
// `key` (its public key must be the transcript's node: invalid_argument).
// Costs about 2 * openings mask computations (unsealing the opened chunks).
Result<Response> open_response(WalkTranscript& transcript, BlockNumber anchor_block,
                               const Hash32& anchor_randomness, ProverSource& source,
                               const SigningKey& key);

}  // namespace cairn::sampling
