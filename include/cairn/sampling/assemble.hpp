#pragma once
// Building a replica-count proof from what a node collected for (shard,
// epoch): the headers of blocks e*E .. e*E+D and every response it saw with
// the path of its anchor. What `cairn proof` and the HTTP proof API will
// serve; they gather the inputs from the chain and the store.

#include <utility>
#include <vector>

#include "cairn/contracts/header.hpp"
#include "cairn/sampling/proof.hpp"

namespace cairn::sampling {

// A response a node received (gossip, or its own) and the path of its
// commitment in the responses_root of block response.anchor_block
// (Chain::response_inclusion gives it).
struct AnchoredResponse {
  Response response;
  erasure::MerkleProof anchor_path;
};

struct AssembledProof {
  ReplicaProof proof;
  // Candidates left out, with the reason: invalid, anchored outside the
  // window, for another shard or epoch, or a second response of a node
  // already counted.
  std::vector<std::pair<NodeId, Error>> excluded;
};

// Verifies every candidate against the headers and keeps the valid ones, one
// per node (the first valid one), in node id order. invalid_argument when
// the headers are not blocks e*E .. e*E+D of `chain` or the shard held no
// blob at e*E. The result verifies with verify_replica_proof() under
// TrustRoot::chain(chain).
Result<AssembledProof> assemble_replica_proof(const contracts::ChainInfo& chain, ShardId shard,
                                              Epoch epoch,
                                              std::vector<contracts::BlockHeader> headers,
                                              std::vector<AnchoredResponse> candidates);

}  // namespace cairn::sampling
