#pragma once
// Small helpers shared by the gossip and discovery unit tests.

#include <cstdint>

#include "cairn/core/ids.hpp"

namespace cairn::p2p::test {

// A recognisable node id for scripted peer n (n + 1 in the first four bytes,
// so node_id(0) is not the all-zero id).
inline NodeId node_id(uint32_t n) {
  NodeId id;
  put_be<uint32_t>(id.bytes.data(), n + 1);
  return id;
}

// The n back from node_id(n).
inline uint32_t node_number(const NodeId& id) { return get_be<uint32_t>(id.bytes.data()) - 1; }

}  // namespace cairn::p2p::test
