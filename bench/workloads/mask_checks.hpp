#pragma once
// The mask checks a verifier cannot avoid: for each response, the q
// (seal key, chunk) pairs verify_response recomputes a replica mask for.
// The raw baseline of the verify and e2e workloads computes exactly these.

#include <cstdint>
#include <utility>
#include <vector>

#include "cairn/core/result.hpp"
#include "cairn/sampling/challenge.hpp"
#include "cairn/sampling/proof.hpp"
#include "cairn/sampling/response.hpp"
#include "cairn/sampling/seal.hpp"

namespace cairn::bench {

using MaskChecks = std::vector<std::pair<sampling::SealKey, uint32_t>>;

// The mask checks of response `r` to challenge `c`, anchored in a block of
// randomness `anchor_randomness`.
MaskChecks mask_checks_of(const sampling::EpochChallenge& c, const sampling::Response& r,
                          const Hash32& anchor_randomness);

// The mask checks of every response in `proof`, with the challenge and the
// anchor randomness taken from the proof's own headers. invalid_argument
// when an anchor block is outside the headers.
Result<MaskChecks> proof_mask_checks(const sampling::ReplicaProof& proof);

}  // namespace cairn::bench
