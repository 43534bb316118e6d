#pragma once
// The p2p frame fuzz harness, shared by the libFuzzer target
// (p2p_frame_fuzz.cpp, CAIRN_FUZZ=ON with clang) and the corpus replay in
// the unit tests (tests/p2p/frame_corpus_test.cpp).
//
// Input: one byte choosing the payload limit (2^(b % 21) bytes), then a
// stream of records as on the wire (u32 length prefix, body). Every body is
// fed to each decoder of untrusted bytes: frame, hello, auth. The harness
// aborts when a decoder breaks its contract (a payload above the limit, a
// hello that does not re-encode to its own prefix); crashes and sanitizer
// reports are the fuzzer's other findings.

#include <cstdint>
#include <cstdlib>

#include "frame.hpp"
#include "handshake.hpp"

namespace cairn::p2p::fuzz {

inline int frame_one_input(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t max_payload = 1u << (data[0] % 21);
  ByteSpan in(data + 1, size - 1);
  Bytes scratch;
  ZstdContexts zstd;
  while (in.size() >= kLengthPrefixBytes) {
    auto len = decode_record_length(in.first(kLengthPrefixBytes), max_session_record(max_payload));
    if (!len) {
      if (len.error().code != Errc::invalid_argument && len.error().code != Errc::corruption)
        std::abort();
      break;
    }
    in = in.subspan(kLengthPrefixBytes);
    const size_t n = std::min<size_t>(*len, in.size());
    const ByteSpan rec = in.first(n);
    in = in.subspan(n);

    auto f = decode_frame(rec, max_payload, scratch, &zstd);
    if (f && f->payload.size() > max_payload) std::abort();
    auto h = decode_hello(rec);
    if (h) {
      const Bytes again = encode_hello(*h);
      if (again.size() > rec.size() || !std::equal(again.begin(), again.end(), rec.begin())) {
        std::abort();
      }
    }
    auto a = decode_auth(rec);
    if (a && rec.size() != kAuthBytes) std::abort();
    (void)is_refusal(rec);
  }
  return 0;
}

}  // namespace cairn::p2p::fuzz
