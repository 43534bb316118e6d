#include "node/http_range.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <vector>

namespace cairn::node::http {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Decimal digits only, at least one; saturates at 2^64 - 1.
std::optional<uint64_t> parse_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<uint64_t>(c - '0');
    v = v > (kMax - d) / 10 ? kMax : v * 10 + d;
  }
  return v;
}

bool starts_with_bytes_unit(std::string_view s) {
  constexpr std::string_view unit = "bytes";
  if (s.size() < unit.size()) return false;
  for (size_t i = 0; i < unit.size(); ++i) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != unit[i]) return false;
  }
  return true;
}

// One range-spec: F-L, F- or -N. nullopt when malformed.
struct Spec {
  std::optional<uint64_t> first, last;  // suffix: !first, last = N
};

std::optional<Spec> parse_spec(std::string_view s) {
  s = trim(s);
  const size_t dash = s.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const std::string_view a = s.substr(0, dash);
  const std::string_view b = s.substr(dash + 1);
  Spec spec;
  if (!a.empty()) {
    spec.first = parse_number(a);
    if (!spec.first) return std::nullopt;
  }
  if (!b.empty()) {
    spec.last = parse_number(b);
    if (!spec.last) return std::nullopt;
  }
  if (!spec.first && !spec.last) return std::nullopt;  // "-"
  if (spec.first && spec.last && *spec.last < *spec.first) return std::nullopt;
  return spec;
}

}  // namespace

RangeDecision decide_range(std::string_view header, uint64_t size) {
  header = trim(header);
  if (header.empty()) return WholeBody{};
  const std::string quoted = "Range '" + std::string(header) + "'";
  if (!starts_with_bytes_unit(header)) {
    return Unsatisfiable{quoted + ": only the 'bytes' unit is supported"};
  }
  std::string_view list = trim(header.substr(5));
  if (list.empty() || list.front() != '=') {
    return Unsatisfiable{quoted + ": expected bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX"};
  }
  list.remove_prefix(1);
  std::vector<ByteRange> satisfiable;
  bool any = false;
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    if (!trim(item).empty()) {  // empty list elements are allowed (RFC 9110 section 5.6.1)
      auto spec = parse_spec(item);
      if (!spec) {
        return Unsatisfiable{quoted + ": malformed range '" + std::string(trim(item)) +
                             "' (expected FIRST-LAST with LAST >= FIRST, FIRST- or -SUFFIX)"};
      }
      any = true;
      if (!spec->first) {  // suffix: the last N bytes
        const uint64_t n = std::min(*spec->last, size);
        if (n > 0) satisfiable.push_back(ByteRange{size - n, size - 1});
      } else if (*spec->first < size) {
        const uint64_t last = spec->last ? std::min(*spec->last, size - 1) : size - 1;
        satisfiable.push_back(ByteRange{*spec->first, last});
      }
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  if (!any) return Unsatisfiable{quoted + ": no range given"};
  if (satisfiable.empty()) {
    return Unsatisfiable{quoted + ": no range overlaps the " + std::to_string(size) + " bytes available"};
  }
  ByteRange cover = satisfiable.front();
  for (const auto& r : satisfiable) {
    cover.first = std::min(cover.first, r.first);
    cover.last = std::max(cover.last, r.last);
  }
  return cover;
}

std::string content_range(const ByteRange& r, uint64_t size) {
  return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" + std::to_string(size);
}

std::string unsatisfied_content_range(uint64_t size) { return "bytes */" + std::to_string(size); }

}  // namespace cairn::node::http
