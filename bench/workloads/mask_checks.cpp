#include "mask_checks.hpp"

#include <string>

#include "cairn/contracts/header.hpp"

namespace cairn::bench {

MaskChecks mask_checks_of(const sampling::EpochChallenge& c, const sampling::Response& r,
                          const Hash32& anchor_randomness) {
  const sampling::OpeningPlan plan = sampling::plan_openings(c.params, r.commitment(), anchor_randomness);
  const Hash32 state0 = sampling::initial_state(c, r.node);
  MaskChecks out;
  for (uint32_t slot : plan.mask_slots) {
    const sampling::PairOpening& p = r.pairs[slot / 2];
    const sampling::StepOpening& step = slot % 2 == 0 ? p.first : p.second;
    const Hash32 prev = slot % 2 == 0 ? p.prev_state : sampling::next_state(state0, p.prev_state, p.first.sealed);
    const sampling::ChunkPosition pos = sampling::step_position(c, prev);
    out.push_back({sampling::SealKey{r.node, step.commitment, pos.blob}, pos.chunk});
  }
  return out;
}

Result<MaskChecks> proof_mask_checks(const sampling::ReplicaProof& proof) {
  if (proof.headers.empty()) return make_error(Errc::invalid_argument, "proof without headers");
  auto challenge = sampling::make_epoch_challenge(proof.params, proof.shard, proof.epoch, proof.headers.front());
  if (!challenge) return tl::unexpected(challenge.error());
  const uint64_t first = proof.headers.front().number.value;
  MaskChecks out;
  for (const sampling::ProofEntry& e : proof.entries) {
    const uint64_t anchor = e.response.anchor_block.value;
    if (anchor < first || anchor - first >= proof.headers.size()) {
      return make_error(Errc::invalid_argument, "anchor block " + std::to_string(anchor) + " outside the proof");
    }
    const Hash32 randomness = contracts::block_randomness(proof.headers[anchor - first].hash());
    auto checks = mask_checks_of(*challenge, e.response, randomness);
    out.insert(out.end(), checks.begin(), checks.end());
  }
  return out;
}

}  // namespace cairn::bench
