#include "cairn/sampling/assemble.hpp"

#include <algorithm>
#include <string>

namespace cairn::sampling {

Result<AssembledProof> assemble_replica_proof(const contracts::ChainInfo& chain, ShardId shard,
                                              Epoch epoch,
                                              std::vector<contracts::BlockHeader> headers,
                                              std::vector<AnchoredResponse> candidates) {
  AssembledProof out;
  ReplicaProof& p = out.proof;
  p.sequencer = chain.sequencer;
  p.params = chain.params;
  p.genesis_time_ms = chain.genesis_time_ms;
  p.shard = shard;
  p.epoch = epoch;
  p.headers = std::move(headers);
  // The proof without responses must verify: right headers, right chain.
  auto base = verify_replica_proof(p, TrustRoot::chain(chain));
  if (!base) {
    return make_error(Errc::invalid_argument,
                      "assembling the proof of shard " + std::to_string(shard.value) + " epoch " +
                          std::to_string(epoch.value) + ": " + base.error().message);
  }
  // Each candidate alone on top of the headers: keeps what verifies.
  std::sort(candidates.begin(), candidates.end(),
            [](const AnchoredResponse& a, const AnchoredResponse& b) {
              return a.response.node < b.response.node;
            });
  ReplicaProof one = p;
  for (AnchoredResponse& c : candidates) {
    const NodeId node = c.response.node;
    one.entries.assign(1, ProofEntry{std::move(c.response), std::move(c.anchor_path)});
    auto st = verify_replica_proof(one, TrustRoot::chain(chain));
    if (!st) {
      out.excluded.emplace_back(node, st.error());
    } else if (!p.entries.empty() && p.entries.back().response.node == node) {
      out.excluded.emplace_back(
          node, Error{Errc::conflict, "a response of this node is already counted"});
    } else {
      p.entries.push_back(std::move(one.entries.front()));
    }
  }
  return out;
}

}  // namespace cairn::sampling
