// libFuzzer target for the p2p record, frame and handshake decoders.
// Build: CXX=clang++-14 cmake -DCAIRN_FUZZ=ON ... ; run:
//   build-fuzz/tests/p2p_frame_fuzz /tmp/p2p-corpus tests/fuzz/corpus/p2p_frame -max_total_time=60
// (new inputs land in the first directory; copy real finds into the corpus).

#include "fuzz/p2p_frame_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return cairn::p2p::fuzz::frame_one_input(data, size);
}
