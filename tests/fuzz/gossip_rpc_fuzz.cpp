// libFuzzer target: the gossip RPC decoder and the router behind it
// (properties in gossip_fuzz_checks.hpp). Seeds: corpus/gossip_rpc/.

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "gossip_fuzz_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = cairn::p2p::fuzz::check_gossip_rpc(cairn::ByteSpan(data, size));
  if (!r.violation.empty()) std::abort();
  return 0;
}
