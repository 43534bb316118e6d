#pragma once
// Runs a background job body, turning an escaping exception into an error
// log line: no exception crosses the worker pool boundary, and the caller's
// bookkeeping after the body always runs.

#include <exception>
#include <functional>

#include "cairn/core/log.hpp"

namespace cairn::shards {

inline void run_logged(const char* module, const std::function<void()>& body) noexcept {
  try {
    body();
  } catch (const std::exception& e) {
    CAIRN_LOG(log::Level::error, module, "background job threw: " << e.what());
  } catch (...) {
    CAIRN_LOG(log::Level::error, module, "background job threw");
  }
}

}  // namespace cairn::shards
