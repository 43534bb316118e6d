#include "cairn/sampling/walk.hpp"

#include <algorithm>
#include <cassert>
#include <optional>
#include <string>

#include "cairn/sampling/seal.hpp"
#include "merkle_levels.hpp"

namespace cairn::sampling {

// ---- opening a stored sealed fragment ----

Result<ChunkOpening> open_from_sealed_fragment(const erasure::NetworkParams& params,
                                               const NodeId& node, const BlobId& commitment,
                                               BlobIndex index,
                                               std::span<const Hash32> fragment_roots,
                                               uint32_t replica_chunk, ByteSpan sealed_fragment,
                                               erasure::MerkleProof blob_path, Bytes& scratch) {
  const uint32_t n = params.total_fragments();
  const uint32_t cpf = params.chunks_per_fragment();
  const size_t fs = params.fragment_size();
  const std::string where =
      "opening blob " + std::to_string(index.value) + " chunk " + std::to_string(replica_chunk);
  if (fragment_roots.size() != n || sealed_fragment.size() != fs || replica_chunk >= n * cpf) {
    return make_error(Errc::invalid_argument,
                      where + ": " + std::to_string(fragment_roots.size()) + " roots and a " +
                          std::to_string(sealed_fragment.size()) + "-byte fragment do not match " +
                          std::to_string(n) + " fragments of " + std::to_string(fs) + " bytes");
  }
  const uint32_t f = replica_chunk / cpf;
  const uint32_t c = replica_chunk % cpf;
  // The mask up to the end of fragment f, then the unsealed fragment in place
  // of the mask's bytes.
  scratch.resize(size_t{n} * fs);
  replica_mask_prefix(params, SealKey{node, commitment, index}, (f + 1) * cpf, scratch);
  MutableByteSpan fragment(scratch.data() + size_t{f} * fs, fs);
  for (size_t i = 0; i < fs; ++i) fragment[i] ^= sealed_fragment[i];

  erasure::BlobCommitment bc;
  bc.id = commitment;
  bc.fragment_roots.assign(fragment_roots.begin(), fragment_roots.end());
  bc.chunk_size = params.chunk_size;
  if (erasure::fragment_root(fragment, params.chunk_size) != fragment_roots[f]) {
    return make_error(Errc::corruption, where + ": fragment " + std::to_string(f) +
                                            " does not unseal to its committed root");
  }
  if (erasure::commitment_from_roots(fragment_roots) != commitment) {
    return make_error(Errc::corruption,
                      where + ": the stored fragment roots do not commit to " + commitment.hex());
  }
  ChunkOpening out;
  out.commitment = commitment;
  out.unsealed.assign(fragment.begin() + size_t{c} * params.chunk_size,
                      fragment.begin() + size_t{c + 1} * params.chunk_size);
  // Chunk path inside fragment f and fragment path inside the commitment.
  std::vector<Hash32> leaves(cpf);
  for (uint32_t i = 0; i < cpf; ++i) {
    leaves[i] = erasure::merkle_leaf_hash(
        fragment.subspan(size_t{i} * params.chunk_size, params.chunk_size));
  }
  auto in_fragment = detail::MerkleLevels(std::move(leaves)).prove(c);
  if (!in_fragment) return tl::unexpected(in_fragment.error());
  auto in_commitment = erasure::prove_fragment(bc, f);
  if (!in_commitment) return tl::unexpected(in_commitment.error());
  out.chunk_proof.in_fragment = std::move(*in_fragment);
  out.chunk_proof.fragment_root = fragment_roots[f];
  out.chunk_proof.in_commitment = std::move(*in_commitment);
  out.blob_path = std::move(blob_path);
  return out;
}

// ---- transcript ----

struct WalkTranscript::Impl {
  EpochChallenge challenge;
  NodeId node;
  // Of step i, at [i - 1]: the state it started from, the state it ended in
  // (for an honest walk the next step's start) and its leaf hash.
  std::vector<Hash32> prev_states;
  std::vector<Hash32> states;
  std::vector<Hash32> leaves;
  Hash32 state0{};
  std::optional<detail::MerkleLevels> tree;  // built on first use after complete()
  Hash32 root{};
};

WalkTranscript::WalkTranscript(EpochChallenge challenge, NodeId node)
    : impl_(std::make_unique<Impl>()) {
  impl_->challenge = std::move(challenge);
  impl_->node = node;
  impl_->state0 = sampling::initial_state(impl_->challenge, node);
  const uint32_t s = impl_->challenge.params.walk_steps;
  impl_->prev_states.reserve(s);
  impl_->states.reserve(s);
  impl_->leaves.reserve(s);
}
WalkTranscript::~WalkTranscript() = default;
WalkTranscript::WalkTranscript(WalkTranscript&&) noexcept = default;
WalkTranscript& WalkTranscript::operator=(WalkTranscript&&) noexcept = default;

const EpochChallenge& WalkTranscript::challenge() const noexcept { return impl_->challenge; }
const NodeId& WalkTranscript::node() const noexcept { return impl_->node; }
uint32_t WalkTranscript::steps() const noexcept {
  return static_cast<uint32_t>(impl_->leaves.size());
}
bool WalkTranscript::complete() const noexcept {
  return steps() == impl_->challenge.params.walk_steps;
}

Hash32 WalkTranscript::append(const Hash32& prev_state, ByteSpan sealed_chunk) {
  assert(!complete());
  const Hash32 state = next_state(impl_->state0, prev_state, sealed_chunk);
  impl_->leaves.push_back(transcript_leaf(steps() + 1, prev_state, sealed_chunk, state));
  impl_->prev_states.push_back(prev_state);
  impl_->states.push_back(state);
  impl_->tree.reset();
  return state;
}

const Hash32& WalkTranscript::initial_state() const noexcept { return impl_->state0; }

const Hash32& WalkTranscript::prev_state(uint32_t step) const {
  return impl_->prev_states.at(step - 1);
}

ChunkPosition WalkTranscript::position(uint32_t step) const {
  return step_position(impl_->challenge, prev_state(step));
}

const Hash32& WalkTranscript::state(uint32_t step) const { return impl_->states.at(step - 1); }

const Hash32& WalkTranscript::root() {
  assert(complete());
  if (!impl_->tree) {
    impl_->tree.emplace(impl_->leaves);
    impl_->root = impl_->tree->root();
  }
  return impl_->root;
}

const Hash32& WalkTranscript::final_state() const { return impl_->states.back(); }

Hash32 WalkTranscript::commitment() {
  return commitment_hash(impl_->node, impl_->challenge.shard, impl_->challenge.epoch, root(),
                         final_state());
}

erasure::MerkleProof WalkTranscript::leaf_path(uint32_t step) {
  root();
  return *impl_->tree->prove(step - 1);
}

// ---- walk ----

Walk::Walk(EpochChallenge challenge, NodeId node)
    : transcript_(std::move(challenge), node), state_(transcript_.initial_state()) {}

ChunkPosition Walk::position() const noexcept {
  return step_position(transcript_.challenge(), state_);
}

void Walk::feed(ByteSpan sealed_chunk) { state_ = transcript_.append(state_, sealed_chunk); }

Result<WalkTranscript> run_walk(const EpochChallenge& challenge, const NodeId& node,
                                ReplicaReader& reader) {
  CAIRN_TRY_STATUS(challenge.params.validate());
  Walk walk(challenge, node);
  Bytes chunk(challenge.params.chunk_size);
  while (!walk.done()) {
    const ChunkPosition pos = walk.position();
    auto st = reader.read_sealed_chunk(pos, chunk);
    if (!st) {
      return tl::unexpected(
          with_context(st.error(), "walk step " + std::to_string(walk.next_step()) + " (blob " +
                                       std::to_string(pos.blob.value) + " chunk " +
                                       std::to_string(pos.chunk) + ")"));
    }
    walk.feed(chunk);
  }
  return std::move(walk).take();
}

// ---- opening ----

Result<Response> open_response(WalkTranscript& transcript, BlockNumber anchor_block,
                               const Hash32& anchor_randomness, ProverSource& source,
                               const SigningKey& key) {
  const EpochChallenge& c = transcript.challenge();
  if (!transcript.complete()) {
    return make_error(Errc::invalid_argument,
                      "opening a walk of " + std::to_string(transcript.steps()) +
                          " steps, the network walks " + std::to_string(c.params.walk_steps));
  }
  if (key.public_key() != transcript.node()) {
    return make_error(Errc::invalid_argument, "the walk of node " + transcript.node().hex() +
                                                  " cannot be signed with the key of " +
                                                  key.public_key().hex());
  }
  Response resp;
  resp.node = transcript.node();
  resp.shard = c.shard;
  resp.epoch = c.epoch;
  resp.transcript_root = transcript.root();
  resp.final_state = transcript.final_state();
  resp.anchor_block = anchor_block;
  const OpeningPlan plan = plan_openings(c.params, resp.commitment(), anchor_randomness);

  auto open_step = [&](uint32_t step, StepOpening& out) -> Status {
    const std::string where = "opening step " + std::to_string(step);
    const ChunkPosition pos = transcript.position(step);
    out.sealed.resize(c.params.chunk_size);
    CAIRN_TRY_STATUS(source.read_sealed_chunk(pos, out.sealed));
    if (next_state(transcript.initial_state(), transcript.prev_state(step), out.sealed) !=
        transcript.state(step)) {
      return make_error(Errc::corruption, where + ": the sealed chunk of blob " +
                                              std::to_string(pos.blob.value) + " chunk " +
                                              std::to_string(pos.chunk) +
                                              " changed since the walk read it");
    }
    auto opening = source.open_chunk(pos, c.start_block, c.blobs_tree_size);
    if (!opening) return tl::unexpected(with_context(opening.error(), where));
    out.unsealed = std::move(opening->unsealed);
    out.commitment = opening->commitment;
    out.chunk_proof = std::move(opening->chunk_proof);
    out.blob_path = std::move(opening->blob_path);
    out.transcript_path = transcript.leaf_path(step);
    return {};
  };

  resp.pairs.resize(plan.pair_steps.size());
  for (size_t k = 0; k < plan.pair_steps.size(); ++k) {
    PairOpening& p = resp.pairs[k];
    p.step = plan.pair_steps[k];
    p.prev_state = transcript.prev_state(p.step);
    CAIRN_TRY_STATUS(open_step(p.step, p.first));
    CAIRN_TRY_STATUS(open_step(p.step + 1, p.second));
  }
  CAIRN_TRY_STATUS(sign_response(resp, key));
  return resp;
}

}  // namespace cairn::sampling
