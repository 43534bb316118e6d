#pragma once
// HTTP byte ranges (RFC 9110 section 14) for the API's downloads: the
// parsing of a `Range: bytes=...` header against a representation size, and
// the Content-Range values that answer it.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace cairn::node::http {

// Serve the whole representation (no Range header): 200.
struct WholeBody {};
// Serve bytes [first, last] (inclusive, last < size): 206.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t length() const { return last - first + 1; }
};
// 416, with `reason` for the error body.
struct Unsatisfiable {
  std::string reason;
};
using RangeDecision = std::variant<WholeBody, ByteRange, Unsatisfiable>;

// Decides how to answer `header` (the Range value; empty when absent) for a
// representation of `size` bytes:
//   - "bytes=F-L", "bytes=F-", "bytes=-N" (suffix) and lists of them, with
//     optional whitespace; the unit is case-insensitive;
//   - L beyond the end is clamped; a suffix longer than the body is the
//     whole body;
//   - several satisfiable ranges are coalesced into the one range that
//     covers them (RFC 9110 section 15.3.7 lets a server combine ranges;
//     this spares multipart/byteranges bodies);
//   - malformed syntax, another unit, L < F, or no range that overlaps the
//     body (F >= size, "-0", any range of an empty body) is Unsatisfiable.
// Numbers too large for 64 bits saturate (a huge F is beyond any body).
RangeDecision decide_range(std::string_view header, uint64_t size);

// "bytes F-L/SIZE" for a 206, "bytes */SIZE" for a 416.
std::string content_range(const ByteRange& r, uint64_t size);
std::string unsatisfied_content_range(uint64_t size);

}  // namespace cairn::node::http
