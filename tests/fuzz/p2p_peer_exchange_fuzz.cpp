// libFuzzer target for the peer-exchange decoder and discovery behind it
// (properties in p2p_gossip_fuzz.hpp). Build: CXX=clang++-14 cmake
// -DCAIRN_FUZZ=ON ... ; run:
//   build/tests/p2p_peer_exchange_fuzz tests/fuzz/corpus/p2p_peer_exchange -max_total_time=60

#include <cstdlib>

#include "fuzz/p2p_gossip_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!cairn::p2p::fuzz::check_peer_exchange(cairn::ByteSpan(data, size)).violation.empty())
    std::abort();
  return 0;
}
