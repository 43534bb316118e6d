// libFuzzer target for the replica-count proof decoder and verifier.
// Build: CXX=clang++-14 CC=clang-14 cmake -DCAIRN_FUZZ=ON ... ; run:
//   build/tests/sampling_proof_fuzz tests/fuzz/corpus/sampling_proof -max_total_time=60

#include "fuzz/sampling_proof_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return cairn::sampling::fuzz::proof_one_input(data, size);
}
