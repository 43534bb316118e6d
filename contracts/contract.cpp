#include "cairn/contracts/contract.hpp"

#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include "cairn/contracts/header.hpp"
#include "cairn/erasure/sha256.hpp"
#include "keyed_hash.hpp"
#include "merkle_log.hpp"

namespace cairn::contracts {
namespace {

struct ResponseEntry {
  Hash32 response_hash{};
  BlockNumber anchored_in;
  uint32_t leaf_index = 0;
};

using ShardEpoch = std::pair<uint32_t, uint64_t>;

// "host:port": printable ASCII without spaces, a non-empty host, a decimal
// port 1..65535 after the last ':' (so "[::1]:9000" works).
bool valid_endpoint(const std::string& e) {
  if (e.empty() || e.size() > kMaxEndpointBytes) return false;
  for (char c : e) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  const size_t colon = e.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == e.size()) return false;
  if (e.size() - colon - 1 > 5) return false;
  uint32_t port = 0;
  for (size_t i = colon + 1; i < e.size(); ++i) {
    if (e[i] < '0' || e[i] > '9') return false;
    port = port * 10 + static_cast<uint32_t>(e[i] - '0');
  }
  return port >= 1 && port <= 65535;
}

Receipt rejected(Receipt r, TxStatus status, std::string detail) {
  r.status = status;
  r.detail = std::move(detail);
  if (r.detail.size() > kMaxReceiptDetailBytes) r.detail.resize(kMaxReceiptDetailBytes);
  return r;
}

}  // namespace

struct ContractState::Impl {
  erasure::NetworkParams params;
  Hash32 chain_id{};

  std::vector<BlobRecord> blobs;  // by index
  std::unordered_map<BlobId, uint64_t, KeyedHash> blob_index;
  MerkleLog blob_log;  // leaves blob_leaf(commitment), by index

  std::map<NodeId, NodeRecord> nodes;
  std::map<uint32_t, std::set<NodeId>> shard_nodes;

  std::map<ShardEpoch, std::map<NodeId, ResponseEntry>> responses;
  // Leaves of responses_root per block (only blocks that anchored any).
  std::map<uint64_t, std::vector<Hash32>> response_leaves;

  std::unordered_map<NodeId, uint64_t, KeyedHash> nonces;

  BlockContext block;
  std::vector<Hash32> block_leaves;  // responses anchored in the open block

  Receipt apply_register(Receipt r, const RegisterNode& reg, const NodeId& sender);
  Receipt apply_put(Receipt r, const PutBlob& put);
  Receipt apply_response(Receipt r, const SubmitResponse& resp, const NodeId& sender);
  bool shard_in_index_space(ShardId s) const {
    return params.blobs_per_shard != 0 &&
           uint64_t{s.value} <= (UINT64_MAX - 1) / params.blobs_per_shard;
  }
};

ContractState::ContractState(const erasure::NetworkParams& params, const Hash32& chain_id)
    : impl_(std::make_unique<Impl>()) {
  impl_->params = params;
  impl_->chain_id = chain_id;
}
ContractState::~ContractState() = default;
ContractState::ContractState(ContractState&&) noexcept = default;
ContractState& ContractState::operator=(ContractState&&) noexcept = default;

const erasure::NetworkParams& ContractState::params() const noexcept { return impl_->params; }
const Hash32& ContractState::chain_id() const noexcept { return impl_->chain_id; }

void ContractState::begin_block(const BlockContext& ctx) {
  impl_->block = ctx;
  impl_->block_leaves.clear();
}

BlockRoots ContractState::end_block() {
  Impl& s = *impl_;
  BlockRoots roots;
  roots.blob_count = s.blob_log.size();
  roots.blobs_root = s.blob_log.root(roots.blob_count);
  roots.response_count = static_cast<uint32_t>(s.block_leaves.size());
  roots.responses_root = erasure::merkle_root(s.block_leaves);
  if (!s.block_leaves.empty()) s.response_leaves[s.block.number.value] = std::move(s.block_leaves);
  s.block_leaves.clear();
  return roots;
}

Receipt ContractState::execute(ByteSpan encoded, uint32_t position) {
  Receipt r;
  r.tx_hash = tx_hash(encoded);
  r.block = impl_->block.number;
  r.position = position;
  auto tx = Transaction::decode(encoded);
  if (!tx) return rejected(std::move(r), TxStatus::malformed, tx.error().message);
  if (!verify_tx_signature(*tx, impl_->chain_id)) {
    r.kind = tx->kind();
    return rejected(std::move(r), TxStatus::bad_signature,
                    "signature does not verify for sender " + tx->sender.hex() + " on this chain");
  }
  return apply(*tx, r.tx_hash, position);
}

Receipt ContractState::apply(const Transaction& tx, const Hash32& hash, uint32_t position) {
  Impl& s = *impl_;
  Receipt r;
  r.tx_hash = hash;
  r.block = s.block.number;
  r.position = position;
  r.kind = tx.kind();
  auto nonce = s.nonces.find(tx.sender);
  if (nonce != s.nonces.end() && tx.nonce <= nonce->second) {
    return rejected(std::move(r), TxStatus::stale_nonce,
                    "nonce " + std::to_string(tx.nonce) + " is not above " +
                        std::to_string(nonce->second) + ", the sender's last included nonce");
  }
  s.nonces[tx.sender] = tx.nonce;
  if (const auto* reg = std::get_if<RegisterNode>(&tx.body)) {
    return s.apply_register(std::move(r), *reg, tx.sender);
  }
  if (const auto* put = std::get_if<PutBlob>(&tx.body)) return s.apply_put(std::move(r), *put);
  return s.apply_response(std::move(r), std::get<SubmitResponse>(tx.body), tx.sender);
}

Receipt ContractState::Impl::apply_register(Receipt r, const RegisterNode& reg,
                                            const NodeId& sender) {
  if (reg.node_id != sender) {
    return rejected(std::move(r), TxStatus::sender_mismatch,
                    "node_id " + reg.node_id.hex() + " is not the signer " + sender.hex());
  }
  if (!valid_endpoint(reg.endpoint)) {
    return rejected(std::move(r), TxStatus::bad_endpoint,
                    "endpoint '" + reg.endpoint + "' is not printable host:port");
  }
  for (ShardId shard : reg.shards) {
    if (!shard_in_index_space(shard)) {
      return rejected(std::move(r), TxStatus::unknown_shard,
                      "shard " + std::to_string(shard.value) + " lies beyond the blob index space");
    }
  }
  auto [it, inserted] = nodes.try_emplace(reg.node_id);
  if (!inserted) {
    for (ShardId old : it->second.shards) {
      auto sn = shard_nodes.find(old.value);
      sn->second.erase(reg.node_id);
      if (sn->second.empty()) shard_nodes.erase(sn);
    }
  }
  it->second = NodeRecord{reg.node_id, reg.endpoint, reg.shards, block.number};
  for (ShardId shard : reg.shards) shard_nodes[shard.value].insert(reg.node_id);
  r.events.emplace_back(NodeRegistered{reg.node_id, reg.endpoint, reg.shards});
  return r;
}

Receipt ContractState::Impl::apply_put(Receipt r, const PutBlob& put) {
  if (put.size > params.blob_size) {
    return rejected(std::move(r), TxStatus::blob_too_large,
                    "size " + std::to_string(put.size) + " exceeds blob_size " +
                        std::to_string(params.blob_size));
  }
  auto [it, inserted] = blob_index.try_emplace(put.commitment, blobs.size());
  if (!inserted) {
    const BlobRecord& existing = blobs[it->second];
    if (existing.size != put.size) {
      return rejected(std::move(r), TxStatus::size_mismatch,
                      "commitment " + put.commitment.hex() + " is registered as blob " +
                          std::to_string(it->second) + " with size " +
                          std::to_string(existing.size) + ", not " + std::to_string(put.size));
    }
    r.blob_index = BlobIndex{it->second};
    return r;
  }
  const BlobIndex index{blobs.size()};
  blobs.push_back(BlobRecord{index, put.commitment, put.size, block.number});
  blob_log.append(blob_leaf(put.commitment));
  r.blob_index = index;
  r.events.emplace_back(BlobRegistered{index, put.commitment, put.size});
  return r;
}

Receipt ContractState::Impl::apply_response(Receipt r, const SubmitResponse& resp,
                                            const NodeId& sender) {
  if (resp.node_id != sender) {
    return rejected(std::move(r), TxStatus::sender_mismatch,
                    "node_id " + resp.node_id.hex() + " is not the signer " + sender.hex());
  }
  const uint64_t next_shard = blobs.size() / params.blobs_per_shard;
  if (resp.shard.value > next_shard) {
    return rejected(std::move(r), TxStatus::unknown_shard,
                    "shard " + std::to_string(resp.shard.value) + " is not open (open shards: 0.." +
                        std::to_string(next_shard) + ")");
  }
  auto node_it = nodes.find(resp.node_id);
  const bool serves =
      node_it != nodes.end() &&
      std::binary_search(node_it->second.shards.begin(), node_it->second.shards.end(), resp.shard);
  if (!serves) {
    return rejected(std::move(r), TxStatus::not_registered,
                    "node " + resp.node_id.hex() + " is not registered for shard " +
                        std::to_string(resp.shard.value));
  }
  BlockNumber start;
  if (!epoch_start_block(params, resp.epoch, start) || block.number <= start) {
    return rejected(std::move(r), TxStatus::epoch_not_started,
                    "epoch " + std::to_string(resp.epoch.value) + " starts at block " +
                        std::to_string(start.value) + "; responses are accepted after it");
  }
  if (block.number.value - start.value > params.deadline_blocks) {
    return rejected(std::move(r), TxStatus::deadline_passed,
                    "epoch " + std::to_string(resp.epoch.value) + " closed at block " +
                        std::to_string(start.value + params.deadline_blocks) + "; this is block " +
                        std::to_string(block.number.value));
  }
  auto& by_node = responses[{resp.shard.value, resp.epoch.value}];
  if (by_node.count(resp.node_id) != 0) {
    return rejected(std::move(r), TxStatus::duplicate_response,
                    "node " + resp.node_id.hex() + " already anchored a response for shard " +
                        std::to_string(resp.shard.value) + " epoch " +
                        std::to_string(resp.epoch.value));
  }
  const auto leaf_index = static_cast<uint32_t>(block_leaves.size());
  by_node.emplace(resp.node_id, ResponseEntry{resp.response_hash, block.number, leaf_index});
  block_leaves.push_back(response_leaf(resp.node_id, resp.shard, resp.epoch, resp.response_hash));
  r.events.emplace_back(
      ResponseAnchored{resp.node_id, resp.shard, resp.epoch, resp.response_hash, leaf_index});
  return r;
}

std::optional<BlobRecord> ContractState::blob_by_id(const BlobId& commitment) const {
  auto it = impl_->blob_index.find(commitment);
  if (it == impl_->blob_index.end()) return std::nullopt;
  return blob_by_index(BlobIndex{it->second});
}

std::optional<BlobRecord> ContractState::blob_by_index(BlobIndex index) const {
  if (index.value >= impl_->blobs.size()) return std::nullopt;
  return impl_->blobs[index.value];
}

uint64_t ContractState::blob_count() const noexcept { return impl_->blobs.size(); }

uint64_t ContractState::blob_count(ShardId shard) const noexcept {
  BlockHeader h;
  h.blob_count = impl_->blobs.size();
  return shard_blob_count(h, impl_->params, shard);
}

bool ContractState::shard_open(ShardId shard) const noexcept {
  return shard.value <= impl_->blobs.size() / impl_->params.blobs_per_shard;
}

std::vector<NodeRecord> ContractState::nodes(ShardId shard) const {
  std::vector<NodeRecord> out;
  auto it = impl_->shard_nodes.find(shard.value);
  if (it == impl_->shard_nodes.end()) return out;
  for (const NodeId& id : it->second) out.push_back(*node(id));
  return out;
}

std::optional<NodeRecord> ContractState::node(const NodeId& id) const {
  auto it = impl_->nodes.find(id);
  if (it == impl_->nodes.end()) return std::nullopt;
  return it->second;
}

std::vector<ResponseRecord> ContractState::responses(ShardId shard, Epoch epoch) const {
  std::vector<ResponseRecord> out;
  auto it = impl_->responses.find({shard.value, epoch.value});
  if (it == impl_->responses.end()) return out;
  for (const auto& [node_id, e] : it->second) {
    out.push_back(
        ResponseRecord{node_id, shard, epoch, e.response_hash, e.anchored_in, e.leaf_index});
  }
  return out;
}

std::optional<ResponseRecord> ContractState::response(const NodeId& node, ShardId shard,
                                                      Epoch epoch) const {
  auto it = impl_->responses.find({shard.value, epoch.value});
  if (it == impl_->responses.end()) return std::nullopt;
  auto e = it->second.find(node);
  if (e == it->second.end()) return std::nullopt;
  return ResponseRecord{
      node, shard, epoch, e->second.response_hash, e->second.anchored_in, e->second.leaf_index};
}

std::optional<uint64_t> ContractState::last_nonce(const NodeId& sender) const {
  auto it = impl_->nonces.find(sender);
  if (it == impl_->nonces.end()) return std::nullopt;
  return it->second;
}

Hash32 ContractState::blobs_root(uint64_t blob_count) const {
  return impl_->blob_log.root(std::min(blob_count, impl_->blob_log.size()));
}

Result<erasure::MerkleProof> ContractState::blob_proof(BlobIndex index, uint64_t blob_count) const {
  return impl_->blob_log.prove(index.value, blob_count);
}

Result<erasure::MerkleProof> ContractState::response_proof(BlockNumber block,
                                                           uint32_t leaf_index) const {
  auto it = impl_->response_leaves.find(block.value);
  if (it == impl_->response_leaves.end()) {
    return make_error(Errc::not_found,
                      "block " + std::to_string(block.value) + " anchored no responses");
  }
  return erasure::merkle_prove(it->second, leaf_index);
}

Hash32 ContractState::digest() const {
  const Impl& s = *impl_;
  erasure::Sha256 h;
  uint8_t buf[8];
  auto u64 = [&](uint64_t v) {
    put_be<uint64_t>(buf, v);
    h.update(ByteSpan(buf, 8));
  };
  h.update(as_bytes("cairn/state/v1"));
  h.update(s.chain_id);
  u64(s.blobs.size());
  h.update(s.blob_log.root(s.blob_log.size()));
  for (const BlobRecord& b : s.blobs) {
    u64(b.size);
    u64(b.registered_in.value);
  }
  u64(s.nodes.size());
  for (const auto& [id, n] : s.nodes) {
    h.update(id.bytes);
    u64(n.endpoint.size());
    h.update(as_bytes(n.endpoint));
    u64(n.shards.size());
    for (ShardId sh : n.shards) u64(sh.value);
    u64(n.registered_in.value);
  }
  u64(s.responses.size());
  for (const auto& [key, by_node] : s.responses) {
    u64(key.first);
    u64(key.second);
    u64(by_node.size());
    for (const auto& [id, e] : by_node) {
      h.update(id.bytes);
      h.update(e.response_hash);
      u64(e.anchored_in.value);
      u64(e.leaf_index);
    }
  }
  std::map<NodeId, uint64_t> nonces(s.nonces.begin(), s.nonces.end());
  u64(nonces.size());
  for (const auto& [id, n] : nonces) {
    h.update(id.bytes);
    u64(n);
  }
  return h.finish();
}

}  // namespace cairn::contracts
