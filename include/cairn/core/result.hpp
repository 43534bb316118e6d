#pragma once
// Expected failures in cairn are values, not exceptions: every fallible call
// returns Result<T> carrying either T or an Error with a code and context.

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace cairn {

// Error codes. Stable across releases (they appear in logs, JSON output and
// exit-code mapping): append only, do not renumber.
enum class Errc : int {
  ok = 0,
  invalid_argument = 1,     // caller passed something malformed or out of range
  corruption = 2,           // stored or received bytes fail a checksum/commitment
  not_found = 3,            // the named object does not exist
  io_error = 4,             // the OS or storage engine failed
  too_many_losses = 5,      // fewer than k fragments survive; data cannot be rebuilt
  busy = 6,                 // a bounded queue is full; retry later
  unsupported = 7,          // a version or feature this build does not speak
  verification_failed = 8,  // a proof, signature or commitment did not verify
  timeout = 9,              // a deadline passed
  cancelled = 10,           // the operation was cancelled by shutdown or its owner
  conflict = 11,            // state changed underneath (e.g. already exists, different)
  internal = 12,            // a bug: an invariant did not hold
};

constexpr std::string_view errc_name(Errc c) noexcept {
  switch (c) {
    case Errc::ok:
      return "ok";
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::corruption:
      return "corruption";
    case Errc::not_found:
      return "not_found";
    case Errc::io_error:
      return "io_error";
    case Errc::too_many_losses:
      return "too_many_losses";
    case Errc::busy:
      return "busy";
    case Errc::unsupported:
      return "unsupported";
    case Errc::verification_failed:
      return "verification_failed";
    case Errc::timeout:
      return "timeout";
    case Errc::cancelled:
      return "cancelled";
    case Errc::conflict:
      return "conflict";
    case Errc::internal:
      return "internal";
  }
  return "unknown";
}

// An error: a code and a human-readable message that names the context
// (shard, index, fragment, peer, file) so an operator can act on it.
struct Error {
  Errc code = Errc::internal;
  std::string message;

  std::string to_string() const {
    std::string s(errc_name(code));
    s += ": ";
    s += message;
    return s;
  }
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = Result<void>;

inline tl::unexpected<Error> make_error(Errc code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}

// Prefixes context to an error on its way up: "reading shard 3: corruption: ..."
inline Error with_context(Error e, std::string_view context) {
  e.message = std::string(context) + ": " + e.message;
  return e;
}

}  // namespace cairn

// Propagates the error of a Result expression, otherwise yields nothing.
#define CAIRN_TRY_STATUS(expr)                                      \
  do {                                                              \
    auto&& cairn_try_r_ = (expr);                                   \
    if (!cairn_try_r_) return tl::unexpected(cairn_try_r_.error()); \
  } while (0)
