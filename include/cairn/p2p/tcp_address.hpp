#pragma once
// "host:port" parsing shared by the TCP transport, the simulator and the
// node's HTTP API listen address.

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/core/result.hpp"

namespace cairn::p2p {

struct HostPort {
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;
};

// Splits at the last ':'; "[v6]:port" keeps the inside of the brackets.
// invalid_argument when the port is missing, not a number or above 65535.
inline Result<HostPort> parse_tcp_address(std::string_view a) {
  const auto bad = [&](const char* why) {
    return make_error(Errc::invalid_argument, "address '" + std::string(a) + "': " + why);
  };
  const size_t colon = a.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= a.size()) return bad("expected host:port");
  std::string_view host = a.substr(0, colon);
  const std::string_view port = a.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return bad("empty host");
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return bad("port is not a number");
    p = p * 10 + static_cast<uint32_t>(c - '0');
    if (p > 65535) return bad("port above 65535");
  }
  return HostPort{std::string(host), static_cast<uint16_t>(p)};
}

}  // namespace cairn::p2p
