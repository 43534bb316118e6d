#pragma once
// The response decoder fuzz harness, shared by the libFuzzer target
// (sampling_response_fuzz.cpp, CAIRN_FUZZ=ON with clang) and the corpus
// replay in the unit tests (tests/sampling/fuzz_corpus_test.cpp).
//
// Input: one encoded response. Whatever decodes must re-encode to exactly
// the input (the format is canonical: one response, one byte string, so
// response hashes and signatures cannot be malleated), and verifying it
// against a fixed challenge must return an answer. The harness aborts when a
// contract breaks; crashes and sanitizer reports are the fuzzer's other
// findings.

#include <cstdint>
#include <cstdlib>

#include "cairn/sampling/response.hpp"

namespace cairn::sampling::fuzz {

// Small parameters so verification of whatever decodes stays cheap.
inline EpochChallenge fuzz_challenge() {
  EpochChallenge c;
  c.params.blob_size = 1024;
  c.params.data_fragments = 2;
  c.params.parity_fragments = 2;
  c.params.chunk_size = 128;
  c.params.blobs_per_shard = 4;
  c.params.epoch_blocks = 4;
  c.params.deadline_blocks = 2;
  c.params.walk_steps = 16;
  c.params.openings = 2;
  c.params.mask_checks = 1;
  c.params.seal_cost = 2;
  c.epoch = Epoch{1};
  c.start_block = BlockNumber{4};
  c.blob_count = 3;
  c.blobs_tree_size = 3;
  return c;
}

inline int response_one_input(const uint8_t* data, size_t size) {
  const ByteSpan in(data, size);
  auto r = Response::decode(in);
  if (!r) {
    const Errc code = r.error().code;
    if (code != Errc::invalid_argument && code != Errc::unsupported) std::abort();
    return 0;
  }
  const Bytes again = r->encode();
  if (again.size() != size || !std::equal(again.begin(), again.end(), data)) std::abort();
  auto st = verify_response(fuzz_challenge(), *r, Hash32{});
  if (!st && st.error().code != Errc::verification_failed) std::abort();
  return 0;
}

}  // namespace cairn::sampling::fuzz
