#include "json_codec.hpp"

#include <charconv>

namespace cairn::contracts::json_codec {
namespace {

tl::unexpected<Error> bad(const std::string& what) {
  return make_error(Errc::invalid_argument, "chain JSON: " + what);
}

// Field `key` of object j, or nullptr.
const json* field(const json& j, const char* key) noexcept {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::optional<Bytes> raw_field(const json& j, size_t max_bytes) noexcept {
  const json* r = field(j, "raw");
  if (r == nullptr) return std::nullopt;
  return parse_data(*r, max_bytes);
}

}  // namespace

std::string quantity(uint64_t v) {
  char buf[2 + 16];
  buf[0] = '0';
  buf[1] = 'x';
  auto [end, ec] = std::to_chars(buf + 2, buf + sizeof buf, v, 16);
  return std::string(buf, end);
}

std::string hex_data(ByteSpan b) { return "0x" + to_hex(b); }

std::optional<uint64_t> parse_quantity(const json& j) noexcept {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer()) {
    const auto v = j.get<int64_t>();
    if (v < 0) return std::nullopt;
    return static_cast<uint64_t>(v);
  }
  if (!j.is_string()) return std::nullopt;
  const std::string& s = j.get_ref<const std::string&>();
  if (s.size() < 3 || s.size() > 18 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (size_t i = 2; i < s.size(); ++i) {
    const int d = detail::hex_value(s[i]);
    if (d < 0) return std::nullopt;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

std::optional<Bytes> parse_data(const json& j, size_t max_bytes) noexcept {
  if (!j.is_string()) return std::nullopt;
  const std::string& s = j.get_ref<const std::string&>();
  if (s.size() < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return std::nullopt;
  if ((s.size() - 2) / 2 > max_bytes) return std::nullopt;
  try {
    return from_hex(std::string_view(s).substr(2));
  } catch (...) {
    return std::nullopt;
  }
}

std::optional<Hash32> parse_hash(const json& j) noexcept {
  auto b = parse_data(j, 32);
  if (!b || b->size() != 32) return std::nullopt;
  Hash32 h{};
  std::copy(b->begin(), b->end(), h.begin());
  return h;
}

json chain_info_to_json(const ChainInfo& info) {
  return json{{"chainId", hex_data(info.chain_id)},
              {"sequencer", hex_data(info.sequencer.bytes)},
              {"genesisHash", hex_data(info.genesis_hash)},
              {"genesisTimeMs", quantity(info.genesis_time_ms)},
              {"params", contracts::params_to_json(info.params)},
              {"raw", hex_data(info.encode())}};
}

Result<ChainInfo> chain_info_from_json(const json& j) noexcept {
  auto raw = raw_field(j, 1024);
  if (!raw) return bad("chain info without a valid \"raw\"");
  return ChainInfo::decode(*raw);
}

json header_to_json(const BlockHeader& h) {
  const Hash32 hash = h.hash();
  return json{{"number", quantity(h.number.value)},
              {"hash", hex_data(hash)},
              {"parentHash", hex_data(h.parent_hash)},
              {"timestampMs", quantity(h.timestamp_ms)},
              {"chainId", hex_data(h.chain_id)},
              {"txRoot", hex_data(h.tx_root)},
              {"txCount", quantity(h.tx_count)},
              {"blobsRoot", hex_data(h.blobs_root)},
              {"blobCount", quantity(h.blob_count)},
              {"responsesRoot", hex_data(h.responses_root)},
              {"responseCount", quantity(h.response_count)},
              {"signature", hex_data(h.signature)},
              {"randomness", hex_data(block_randomness(hash))},
              {"raw", hex_data(h.encode())}};
}

Result<BlockHeader> header_from_json(const json& j) noexcept {
  auto raw = raw_field(j, kHeaderBytes);
  if (!raw) return bad("header without a valid \"raw\"");
  return BlockHeader::decode(*raw);
}

namespace {
json shards_json(const std::vector<ShardId>& shards) {
  json a = json::array();
  for (ShardId s : shards) a.push_back(s.value);
  return a;
}

std::optional<std::vector<ShardId>> shards_from(const json* j) noexcept {
  if (j == nullptr || !j->is_array() || j->size() > kMaxRegisteredShards) return std::nullopt;
  std::vector<ShardId> out;
  for (const json& s : *j) {
    auto v = parse_quantity(s);
    if (!v || *v > UINT32_MAX) return std::nullopt;
    out.push_back(ShardId{static_cast<uint32_t>(*v)});
  }
  return out;
}
}  // namespace

json event_to_json(const Event& e) {
  if (const auto* b = std::get_if<BlobRegistered>(&e)) {
    return json{{"type", "blob_registered"},
                {"index", quantity(b->index.value)},
                {"commitment", hex_data(b->commitment.bytes)},
                {"size", b->size}};
  }
  if (const auto* n = std::get_if<NodeRegistered>(&e)) {
    return json{{"type", "node_registered"},
                {"nodeId", hex_data(n->node_id.bytes)},
                {"endpoint", n->endpoint},
                {"shards", shards_json(n->shards)}};
  }
  const auto& a = std::get<ResponseAnchored>(e);
  return json{{"type", "response_anchored"},
              {"nodeId", hex_data(a.node_id.bytes)},
              {"shard", a.shard.value},
              {"epoch", quantity(a.epoch.value)},
              {"responseHash", hex_data(a.response_hash)},
              {"leafIndex", a.leaf_index}};
}

json receipt_to_json(const Receipt& r) {
  json events = json::array();
  for (const Event& e : r.events) events.push_back(event_to_json(e));
  json j{{"transactionHash", hex_data(r.tx_hash)},
         {"blockNumber", quantity(r.block.value)},
         {"transactionIndex", quantity(r.position)},
         {"kind", std::string(tx_kind_name(r.kind))},
         {"status", std::string(tx_status_name(r.status))},
         {"events", std::move(events)},
         {"raw", hex_data(r.encode())}};
  if (!r.detail.empty()) j["detail"] = r.detail;
  if (r.blob_index) j["blobIndex"] = quantity(r.blob_index->value);
  return j;
}

Result<Receipt> receipt_from_json(const json& j) noexcept {
  // A receipt is at most ~600 bytes plus its events (one per transaction).
  auto raw = raw_field(j, 4 * kMaxTxBytes);
  if (!raw) return bad("receipt without a valid \"raw\"");
  return Receipt::decode(*raw);
}

json events_to_json(BlockNumber block, const std::vector<Event>& events) {
  json list = json::array();
  Bytes raw(4);
  put_be<uint32_t>(raw.data(), static_cast<uint32_t>(events.size()));
  for (const Event& e : events) {
    list.push_back(event_to_json(e));
    encode_event(raw, e);
  }
  return json{
      {"blockNumber", quantity(block.value)}, {"events", std::move(list)}, {"raw", hex_data(raw)}};
}

Result<std::vector<Event>> events_from_json(const json& j) noexcept {
  // Bounded by the server's body limits; 64 MiB is far above any block.
  auto raw = raw_field(j, 64u << 20);
  if (!raw) return bad("events without a valid \"raw\"");
  ByteReader r(*raw);
  uint32_t count = 0;
  if (!r.read_be(count) || size_t{count} * 37 > r.remaining()) return bad("events: bad count");
  std::vector<Event> out;
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    auto e = decode_event(r);
    if (!e) return tl::unexpected(e.error());
    out.push_back(std::move(*e));
  }
  if (!r.done()) return bad("events: trailing bytes");
  return out;
}

json blob_to_json(const BlobRecord& b, const erasure::NetworkParams& params) {
  return json{{"index", quantity(b.index.value)},
              {"shard", params.shard_of(b.index).value},
              {"commitment", hex_data(b.commitment.bytes)},
              {"size", b.size},
              {"registeredIn", quantity(b.registered_in.value)}};
}

Result<BlobRecord> blob_from_json(const json& j) noexcept {
  try {
    BlobRecord b;
    auto index = parse_quantity(j.at("index"));
    auto commitment = parse_hash(j.at("commitment"));
    auto size = parse_quantity(j.at("size"));
    auto block = parse_quantity(j.at("registeredIn"));
    if (!index || !commitment || !size || *size > UINT32_MAX || !block) return bad("blob record");
    b.index = BlobIndex{*index};
    b.commitment.bytes = *commitment;
    b.size = static_cast<uint32_t>(*size);
    b.registered_in = BlockNumber{*block};
    return b;
  } catch (...) {
    return bad("blob record");
  }
}

json node_to_json(const NodeRecord& n) {
  return json{{"nodeId", hex_data(n.node_id.bytes)},
              {"endpoint", n.endpoint},
              {"shards", shards_json(n.shards)},
              {"registeredIn", quantity(n.registered_in.value)}};
}

Result<NodeRecord> node_from_json(const json& j) noexcept {
  try {
    NodeRecord n;
    auto id = parse_hash(j.at("nodeId"));
    const json& endpoint = j.at("endpoint");
    auto shards = shards_from(field(j, "shards"));
    auto block = parse_quantity(j.at("registeredIn"));
    if (!id || !endpoint.is_string() || !shards || !block) return bad("node record");
    n.node_id.bytes = *id;
    n.endpoint = endpoint.get<std::string>();
    n.shards = std::move(*shards);
    n.registered_in = BlockNumber{*block};
    return n;
  } catch (...) {
    return bad("node record");
  }
}

json response_to_json(const ResponseRecord& r) {
  return json{{"nodeId", hex_data(r.node_id.bytes)},
              {"shard", r.shard.value},
              {"epoch", quantity(r.epoch.value)},
              {"responseHash", hex_data(r.response_hash)},
              {"anchoredIn", quantity(r.anchored_in.value)},
              {"leafIndex", r.leaf_index}};
}

Result<ResponseRecord> response_from_json(const json& j) noexcept {
  try {
    auto id = parse_hash(j.at("nodeId"));
    auto shard = parse_quantity(j.at("shard"));
    auto epoch = parse_quantity(j.at("epoch"));
    auto hash = parse_hash(j.at("responseHash"));
    auto block = parse_quantity(j.at("anchoredIn"));
    auto leaf = parse_quantity(j.at("leafIndex"));
    if (!id || !shard || *shard > UINT32_MAX || !epoch || !hash || !block || !leaf ||
        *leaf > UINT32_MAX) {
      return bad("response record");
    }
    ResponseRecord r;
    r.node_id.bytes = *id;
    r.shard = ShardId{static_cast<uint32_t>(*shard)};
    r.epoch = Epoch{*epoch};
    r.response_hash = *hash;
    r.anchored_in = BlockNumber{*block};
    r.leaf_index = static_cast<uint32_t>(*leaf);
    return r;
  } catch (...) {
    return bad("response record");
  }
}

json proof_to_json(const erasure::MerkleProof& p) {
  json path = json::array();
  for (const Hash32& h : p.path) path.push_back(hex_data(h));
  return json{{"index", quantity(p.index)},
              {"treeSize", quantity(p.tree_size)},
              {"path", std::move(path)},
              {"raw", hex_data(p.serialize())}};
}

Result<erasure::MerkleProof> proof_from_json(const json& j) noexcept {
  auto raw = raw_field(j, 17 + 32 * erasure::kMaxMerkleDepth);
  if (!raw) return bad("proof without a valid \"raw\"");
  return erasure::MerkleProof::parse(*raw);
}

}  // namespace cairn::contracts::json_codec
