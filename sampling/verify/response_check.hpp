#pragma once
// verify_response() in two stages, so a proof verifier can run the cheap
// checks of every response (signature, Merkle paths, state chaining: a few
// hundred microseconds each) before the mask checks (about one replica mask
// each): a tampered proof then fails fast.

#include <string>
#include <vector>

#include "cairn/sampling/response.hpp"
#include "cairn/sampling/seal.hpp"

namespace cairn::sampling::detail {

// One pending check: sealed XOR mask(key) at replica chunk `chunk` must equal
// unsealed. Points into the Response it came from, which must outlive it.
struct MaskCheck {
  SealKey key;
  uint32_t chunk = 0;
  const Bytes* sealed = nullptr;
  const Bytes* unsealed = nullptr;
  std::string where;  // "node <hex> pair 3 step 17"
};

// Everything verify_response() checks except the masks; appends the mask
// checks the plan asks for to `masks`.
Status check_response_paths(const EpochChallenge& challenge, const Response& response,
                            const Hash32& anchor_randomness, std::vector<MaskCheck>& masks);

// Runs the mask checks. Checks on the same blob of the same node share one
// mask computation (up to the largest chunk they need).
Status run_mask_checks(const erasure::NetworkParams& params, std::vector<MaskCheck>& masks);

}  // namespace cairn::sampling::detail
