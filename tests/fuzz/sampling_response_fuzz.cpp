// libFuzzer target for the challenge response decoder.
// Build: CXX=clang++-14 CC=clang-14 cmake -DCAIRN_FUZZ=ON ... ; run:
//   build/tests/sampling_response_fuzz tests/fuzz/corpus/sampling_response -max_total_time=60

#include "fuzz/sampling_response_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return cairn::sampling::fuzz::response_one_input(data, size);
}
