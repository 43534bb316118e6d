// libFuzzer target for the storage node's wire decoders (notices, fragments
// request and response). Build: CXX=clang++-14 cmake -DCAIRN_FUZZ=ON ... ; run:
//   build-fuzz/tests/node_wire_fuzz /tmp/node-corpus tests/fuzz/corpus/node_wire -max_total_time=60

#include "fuzz/node_wire_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return cairn::node::fuzz::wire_one_input(data, size);
}
