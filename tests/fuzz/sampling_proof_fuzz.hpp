#pragma once
// The replica-count proof decoder fuzz harness, shared by the libFuzzer
// target (sampling_proof_fuzz.cpp, CAIRN_FUZZ=ON with clang) and the corpus
// replay in the unit tests (tests/sampling/fuzz_corpus_test.cpp).
//
// Input: one proof file. Whatever decodes must re-encode to exactly the
// input, and the verifier (under tight resource limits, with the proof's own
// key as trust root) must return an answer: a proof file is the most exposed
// input cairn has (anyone hands one to `cairn verify` or the C interface).

#include <cstdint>
#include <cstdlib>

#include "cairn/sampling/proof.hpp"

namespace cairn::sampling::fuzz {

inline int proof_one_input(const uint8_t* data, size_t size) {
  const ByteSpan in(data, size);
  auto p = ReplicaProof::decode(in);
  if (!p) {
    const Errc code = p.error().code;
    if (code != Errc::invalid_argument && code != Errc::unsupported) std::abort();
    return 0;
  }
  const Bytes again = p->encode();
  if (again.size() != size || !std::equal(again.begin(), again.end(), data)) std::abort();
  VerifyLimits limits;
  limits.max_replica_bytes = 1u << 20;
  limits.max_seal_cost = 4;
  limits.max_mask_checks = 8;
  auto report = verify_replica_proof(*p, TrustRoot::embedded_key(), limits);
  if (report && report->replicas() > p->entries.size()) std::abort();
  if (!report && report.error().code != Errc::verification_failed) std::abort();
  return 0;
}

}  // namespace cairn::sampling::fuzz
