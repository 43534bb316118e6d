#include <algorithm>
#include <string>

#include "cairn/contracts/header.hpp"
#include "response_check.hpp"

namespace cairn::sampling {
namespace detail {
namespace {

std::string short_hex(const NodeId& node) { return node.hex().substr(0, 16); }

// Checks one opened step starting from `prev` (state_{step-1}); returns
// state_step through `state`.
Status check_step(const EpochChallenge& c, const Response& resp, const Hash32& state0,
                  const std::string& where, uint32_t step, const Hash32& prev, const StepOpening& o,
                  Hash32& state) {
  const erasure::NetworkParams& params = c.params;
  auto fail = [&](const std::string& what) {
    return make_error(Errc::verification_failed,
                      where + " step " + std::to_string(step) + ": " + what);
  };
  if (o.sealed.size() != params.chunk_size || o.unsealed.size() != params.chunk_size) {
    return fail("chunks of " + std::to_string(o.sealed.size()) + "/" +
                std::to_string(o.unsealed.size()) + " bytes, expected " +
                std::to_string(params.chunk_size));
  }
  const ChunkPosition pos = step_position(c, prev);
  state = next_state(state0, prev, o.sealed);
  const Hash32 leaf = transcript_leaf(step, prev, o.sealed, state);
  if (!erasure::merkle_verify(resp.transcript_root, leaf, step - 1, params.walk_steps,
                              o.transcript_path)) {
    return fail("leaf is not at index " + std::to_string(step - 1) + " of the transcript root");
  }
  const uint32_t cpf = params.chunks_per_fragment();
  const uint32_t fragment = pos.chunk / cpf;
  const uint32_t chunk = pos.chunk % cpf;
  if (!erasure::verify_chunk(params, o.commitment, fragment, chunk, o.unsealed, o.chunk_proof)) {
    return fail("unsealed chunk is not chunk " + std::to_string(chunk) + " of fragment " +
                std::to_string(fragment) + " of blob " + o.commitment.hex());
  }
  if (!erasure::merkle_verify(c.blobs_root, contracts::blob_leaf(o.commitment), pos.blob.value,
                              c.blobs_tree_size, o.blob_path)) {
    return fail("blob " + o.commitment.hex() + " is not blob " + std::to_string(pos.blob.value) +
                " of blobs_root at block " + std::to_string(c.start_block.value));
  }
  if (step == params.walk_steps && state != resp.final_state) {
    return fail("the last step does not end in the committed final state");
  }
  return {};
}

}  // namespace

Status check_response_paths(const EpochChallenge& c, const Response& resp,
                            const Hash32& anchor_randomness, std::vector<MaskCheck>& masks) {
  const erasure::NetworkParams& params = c.params;
  CAIRN_TRY_STATUS(params.validate());
  const std::string who = "response of node " + short_hex(resp.node);
  auto fail = [&](const std::string& what) {
    return make_error(Errc::verification_failed, who + ": " + what);
  };
  if (resp.shard != c.shard || resp.epoch != c.epoch) {
    return fail("answers shard " + std::to_string(resp.shard.value) + " epoch " +
                std::to_string(resp.epoch.value) + ", not shard " + std::to_string(c.shard.value) +
                " epoch " + std::to_string(c.epoch.value));
  }
  if (!ed25519_verify(resp.node, resp.signing_hash(), resp.signature)) {
    return fail("the node's signature does not verify");
  }
  if (resp.pairs.size() != params.openings) {
    return fail(std::to_string(resp.pairs.size()) + " opened pairs, the network asks for " +
                std::to_string(params.openings));
  }
  const OpeningPlan plan = plan_openings(params, resp.commitment(), anchor_randomness);
  const Hash32 state0 = initial_state(c, resp.node);
  for (size_t k = 0; k < resp.pairs.size(); ++k) {
    const PairOpening& p = resp.pairs[k];
    const std::string where = who + " pair " + std::to_string(k);
    if (p.step != plan.pair_steps[k]) {
      return fail("pair " + std::to_string(k) + " opens step " + std::to_string(p.step) +
                  ", the anchor's randomness picks step " + std::to_string(plan.pair_steps[k]));
    }
    if (p.step == 1 && p.prev_state != state0) {
      return fail("pair " + std::to_string(k) + " does not start from the epoch's initial state");
    }
    Hash32 mid{}, end{};
    CAIRN_TRY_STATUS(check_step(c, resp, state0, where, p.step, p.prev_state, p.first, mid));
    // The second step starts where the first ended: a break between them
    // would give a leaf that is not on the transcript.
    CAIRN_TRY_STATUS(check_step(c, resp, state0, where, p.step + 1, mid, p.second, end));
    const Hash32* prevs[2] = {&p.prev_state, &mid};
    const StepOpening* steps[2] = {&p.first, &p.second};
    for (uint32_t half = 0; half < 2; ++half) {
      const auto slot = static_cast<uint32_t>(2 * k + half);
      if (std::find(plan.mask_slots.begin(), plan.mask_slots.end(), slot) ==
          plan.mask_slots.end()) {
        continue;
      }
      const ChunkPosition pos = step_position(c, *prevs[half]);
      masks.push_back(MaskCheck{SealKey{resp.node, steps[half]->commitment, pos.blob}, pos.chunk,
                                &steps[half]->sealed, &steps[half]->unsealed,
                                where + " step " + std::to_string(p.step + half)});
    }
  }
  return {};
}

Status run_mask_checks(const erasure::NetworkParams& params, std::vector<MaskCheck>& masks) {
  auto key_less = [](const MaskCheck& a, const MaskCheck& b) {
    if (a.key.node != b.key.node) return a.key.node < b.key.node;
    if (a.key.commitment != b.key.commitment) return a.key.commitment < b.key.commitment;
    return a.key.index < b.key.index;
  };
  auto same_key = [](const MaskCheck& a, const MaskCheck& b) {
    return a.key.node == b.key.node && a.key.commitment == b.key.commitment &&
           a.key.index == b.key.index;
  };
  std::stable_sort(masks.begin(), masks.end(), key_less);
  Bytes mask(size_t{params.total_fragments()} * params.fragment_size());
  const size_t chunk_size = params.chunk_size;
  for (size_t g = 0; g < masks.size();) {
    size_t end = g;
    uint32_t highest = 0;
    while (end < masks.size() && same_key(masks[g], masks[end]))
      highest = std::max(highest, masks[end++].chunk);
    replica_mask_prefix(params, masks[g].key, highest + 1, mask);
    for (size_t i = g; i < end; ++i) {
      const MaskCheck& m = masks[i];
      const uint8_t* mk = mask.data() + size_t{m.chunk} * chunk_size;
      bool equal = m.sealed->size() == chunk_size && m.unsealed->size() == chunk_size;
      for (size_t b = 0; equal && b < chunk_size; ++b)
        equal = ((*m.sealed)[b] ^ mk[b]) == (*m.unsealed)[b];
      if (!equal) {
        return make_error(Errc::verification_failed,
                          m.where +
                              ": the sealed chunk is not the unsealed chunk under this node's "
                              "replica mask (the node walked over data it did not hold sealed)");
      }
    }
    g = end;
  }
  return {};
}

}  // namespace detail

Status verify_response(const EpochChallenge& challenge, const Response& response,
                       const Hash32& anchor_randomness) {
  std::vector<detail::MaskCheck> masks;
  CAIRN_TRY_STATUS(detail::check_response_paths(challenge, response, anchor_randomness, masks));
  return detail::run_mask_checks(challenge.params, masks);
}

}  // namespace cairn::sampling
