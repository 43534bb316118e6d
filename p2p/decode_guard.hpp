#pragma once
// The noexcept boundary of cairn's gossip decoders: runs a decoder body that
// may allocate and turns any exception into an Error, so a decoder of
// untrusted bytes can promise noexcept without risking std::terminate.

#include <new>
#include <string>

#include "cairn/core/result.hpp"

namespace cairn::p2p::detail {

// `what` names the payload in the error ("gossip rpc", "peer exchange").
template <class T, class Body>
Result<T> guarded_decode(const char* what, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return make_error(Errc::busy, std::string(what) + ": out of memory while decoding");
  } catch (...) {
    return make_error(Errc::internal, std::string(what) + ": unexpected exception while decoding");
  }
}

}  // namespace cairn::p2p::detail
