#pragma once
// The node wire fuzz harness (tools/node/wire.hpp), shared by the libFuzzer
// target (node_wire_fuzz.cpp, CAIRN_FUZZ=ON with clang) and the corpus
// replay in the unit tests (tests/node/wire_test.cpp).
//
// Input: one byte choosing the decoder (b % 3: notice, fragments request,
// fragments response) and, for notices, the topic (b / 3), then the bytes.
// Decoders must not crash; the harness aborts when one breaks its
// contract: a request or response it accepts must re-encode to exactly the
// input (one encoding; for requests, version 1 or version 2 with at_least),
// a request's at_least must be at most n, and a notice it accepts must stay
// within its limits.

#include <cstdint>
#include <cstdlib>

#include "cairn/erasure/params.hpp"
#include "node/wire.hpp"

namespace cairn::node::fuzz {

inline int wire_one_input(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto params = erasure::NetworkParams::localnet();
  const ByteSpan in(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      const ShardId topic{static_cast<uint32_t>(data[0] / 3)};
      auto n = wire::decode_notice(in, topic, params, /*check_signature=*/false);
      if (n) {
        if (n->entries.empty() || n->entries.size() > wire::kMaxNoticeEntries) std::abort();
        for (const auto& e : n->entries) {
          if (params.shard_of(e.index) != topic || e.size > params.blob_size) std::abort();
        }
      }
      // With the signature checked, random bytes never pass.
      (void)wire::decode_notice(in, topic, params);
      break;
    }
    case 1: {
      auto r = wire::decode_fragments_request(in, params.total_fragments());
      if (r && r->at_least > params.total_fragments()) std::abort();
      if (r && wire::encode_fragments_request(*r) != Bytes(in.begin(), in.end())) std::abort();
      break;
    }
    default: {
      auto r = wire::decode_fragments_response(in, params);
      if (r) {
        Bytes again;
        wire::encode_fragments_response(again, r->length, params.fragment_size(), r->roots,
                                        r->fragments);
        if (again != Bytes(in.begin(), in.end())) std::abort();
      }
      break;
    }
  }
  return 0;
}

}  // namespace cairn::node::fuzz
