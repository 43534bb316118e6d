#include "cairn/contracts/tx.hpp"

#include <array>

#include "cairn/erasure/sha256.hpp"

namespace cairn::contracts {
namespace {

constexpr std::string_view kTxDomain = "cairn/tx/v1";
constexpr uint8_t kReceiptVersion = 1;

tl::unexpected<Error> malformed_tx(const std::string& what) {
  return make_error(Errc::invalid_argument, "transaction: " + what);
}

void encode_string16(Bytes& out, std::string_view s) {
  append_be<uint16_t>(out, static_cast<uint16_t>(s.size()));
  append(out, as_bytes(s));
}

void encode_shards(Bytes& out, const std::vector<ShardId>& shards) {
  append_be<uint16_t>(out, static_cast<uint16_t>(shards.size()));
  for (ShardId s : shards) append_be<uint32_t>(out, s.value);
}

// Reads a u16-length string of at most `max` bytes.
bool read_string16(ByteReader& r, size_t max, std::string& out, std::string& why) noexcept {
  uint16_t len = 0;
  if (!r.read_be(len)) {
    why = "truncated length";
    return false;
  }
  if (len > max) {
    why = std::to_string(len) + " bytes exceeds " + std::to_string(max);
    return false;
  }
  ByteSpan v;
  if (!r.view(len, v)) {
    why = "truncated: " + std::to_string(len) + " bytes announced, " +
          std::to_string(r.remaining()) + " left";
    return false;
  }
  out.assign(reinterpret_cast<const char*>(v.data()), v.size());
  return true;
}

// Reads a u16-count list of strictly ascending u32 shard ids.
bool read_shards(ByteReader& r, std::vector<ShardId>& out, std::string& why) noexcept {
  uint16_t count = 0;
  if (!r.read_be(count)) {
    why = "truncated shard count";
    return false;
  }
  if (count > kMaxRegisteredShards) {
    why = std::to_string(count) + " shards exceeds " + std::to_string(kMaxRegisteredShards);
    return false;
  }
  if (r.remaining() < size_t{count} * 4) {
    why = "truncated shard list";
    return false;
  }
  out.resize(count);
  for (size_t i = 0; i < count; ++i) {
    r.read_be(out[i].value);
    if (i > 0 && out[i].value <= out[i - 1].value) {
      why = "shard list not strictly ascending";
      return false;
    }
  }
  return true;
}

}  // namespace

std::string_view tx_kind_name(TxKind kind) noexcept {
  switch (kind) {
    case TxKind::unknown:
      return "unknown";
    case TxKind::register_node:
      return "register_node";
    case TxKind::put_blob:
      return "put_blob";
    case TxKind::submit_response:
      return "submit_response";
  }
  return "unknown";
}

TxKind Transaction::kind() const noexcept {
  switch (body.index()) {
    case 0:
      return TxKind::register_node;
    case 1:
      return TxKind::put_blob;
    case 2:
      return TxKind::submit_response;
  }
  return TxKind::unknown;
}

Bytes Transaction::encode_unsigned() const {
  Bytes out;
  out.reserve(160);
  out.push_back(kTxVersion);
  out.push_back(static_cast<uint8_t>(kind()));
  append(out, sender.bytes);
  append_be<uint64_t>(out, nonce);
  if (const auto* reg = std::get_if<RegisterNode>(&body)) {
    append(out, reg->node_id.bytes);
    encode_string16(out, reg->endpoint);
    encode_shards(out, reg->shards);
  } else if (const auto* put = std::get_if<PutBlob>(&body)) {
    append(out, put->commitment.bytes);
    append_be<uint32_t>(out, put->size);
  } else if (const auto* resp = std::get_if<SubmitResponse>(&body)) {
    append(out, resp->node_id.bytes);
    append_be<uint32_t>(out, resp->shard.value);
    append_be<uint64_t>(out, resp->epoch.value);
    append(out, resp->response_hash);
  }
  return out;
}

Bytes Transaction::encode() const {
  Bytes out = encode_unsigned();
  append(out, signature);
  return out;
}

Bytes Transaction::signing_message(const Hash32& chain_id) const {
  Bytes out(kTxDomain.begin(), kTxDomain.end());
  append(out, chain_id);
  append(out, encode_unsigned());
  return out;
}

Result<Transaction> Transaction::decode(ByteSpan data) noexcept {
  if (data.size() > kMaxTxBytes) {
    return malformed_tx(std::to_string(data.size()) + " bytes exceeds " +
                        std::to_string(kMaxTxBytes));
  }
  ByteReader r(data);
  uint8_t version = 0, kind = 0;
  if (!r.read_be(version) || !r.read_be(kind)) return malformed_tx("truncated header");
  if (version != kTxVersion) {
    return malformed_tx("version " + std::to_string(version) + " (this build reads 1)");
  }
  Transaction tx;
  if (!r.read(tx.sender.bytes)) return malformed_tx("sender: expected 32 bytes");
  if (!r.read_be(tx.nonce)) return malformed_tx("nonce: expected 8 bytes");
  std::string why;
  switch (static_cast<TxKind>(kind)) {
    case TxKind::register_node: {
      RegisterNode reg;
      if (!r.read(reg.node_id.bytes))
        return malformed_tx("register_node.node_id: expected 32 bytes");
      if (!read_string16(r, kMaxEndpointBytes, reg.endpoint, why)) {
        return malformed_tx("register_node.endpoint: " + why);
      }
      if (!read_shards(r, reg.shards, why)) return malformed_tx("register_node.shards: " + why);
      tx.body = std::move(reg);
      break;
    }
    case TxKind::put_blob: {
      PutBlob put;
      if (!r.read(put.commitment.bytes))
        return malformed_tx("put_blob.commitment: expected 32 bytes");
      if (!r.read_be(put.size)) return malformed_tx("put_blob.size: expected 4 bytes");
      tx.body = put;
      break;
    }
    case TxKind::submit_response: {
      SubmitResponse resp;
      if (!r.read(resp.node_id.bytes)) {
        return malformed_tx("submit_response.node_id: expected 32 bytes");
      }
      if (!r.read_be(resp.shard.value))
        return malformed_tx("submit_response.shard: expected 4 bytes");
      if (!r.read_be(resp.epoch.value))
        return malformed_tx("submit_response.epoch: expected 8 bytes");
      if (!r.read(resp.response_hash)) {
        return malformed_tx("submit_response.response_hash: expected 32 bytes");
      }
      tx.body = resp;
      break;
    }
    default:
      return malformed_tx("unknown kind " + std::to_string(kind));
  }
  if (r.remaining() < tx.signature.size()) {
    return malformed_tx("signature: expected 64 bytes, " + std::to_string(r.remaining()) + " left");
  }
  r.read(tx.signature);
  if (!r.done()) {
    return malformed_tx(std::to_string(r.remaining()) + " trailing bytes after the signature");
  }
  return tx;
}

Hash32 tx_hash(ByteSpan encoded) { return erasure::sha256(encoded); }

Bytes sign_tx(Transaction& tx, const SigningKey& key, const Hash32& chain_id) {
  tx.sender = key.public_key();
  tx.signature = key.sign(tx.signing_message(chain_id));
  return tx.encode();
}

bool verify_tx_signature(const Transaction& tx, const Hash32& chain_id) noexcept {
  try {
    const Bytes msg = tx.signing_message(chain_id);
    return ed25519_verify(tx.sender, msg, tx.signature);
  } catch (...) {
    return false;  // allocation failure: treat as unverifiable
  }
}

Bytes make_register_node(const SigningKey& key, const Hash32& chain_id, uint64_t nonce,
                         std::string endpoint, std::vector<ShardId> shards) {
  Transaction tx;
  tx.nonce = nonce;
  tx.body = RegisterNode{key.public_key(), std::move(endpoint), std::move(shards)};
  return sign_tx(tx, key, chain_id);
}

Bytes make_put_blob(const SigningKey& key, const Hash32& chain_id, uint64_t nonce,
                    const BlobId& commitment, uint32_t size) {
  Transaction tx;
  tx.nonce = nonce;
  tx.body = PutBlob{commitment, size};
  return sign_tx(tx, key, chain_id);
}

Bytes make_submit_response(const SigningKey& key, const Hash32& chain_id, uint64_t nonce,
                           ShardId shard, Epoch epoch, const Hash32& response_hash) {
  Transaction tx;
  tx.nonce = nonce;
  tx.body = SubmitResponse{key.public_key(), shard, epoch, response_hash};
  return sign_tx(tx, key, chain_id);
}

namespace {
constexpr std::array<std::string_view, 15> kStatusNames = {
    "ok",
    "malformed",
    "bad_signature",
    "stale_nonce",
    "sender_mismatch",
    "blob_too_large",
    "size_mismatch",
    "unknown_shard",
    "deadline_passed",
    "epoch_not_started",
    "not_registered",
    "duplicate_response",
    "bad_endpoint",
    "mempool_full",
    "duplicate_pending",
};
}  // namespace

std::string_view tx_status_name(TxStatus status) noexcept {
  const auto i = static_cast<size_t>(status);
  return i < kStatusNames.size() ? kStatusNames[i] : "unknown";
}

std::optional<TxStatus> tx_status_from_name(std::string_view name) noexcept {
  for (size_t i = 0; i < kStatusNames.size(); ++i) {
    if (kStatusNames[i] == name) return static_cast<TxStatus>(i);
  }
  return std::nullopt;
}

void encode_event(Bytes& out, const Event& event) {
  if (const auto* b = std::get_if<BlobRegistered>(&event)) {
    out.push_back(static_cast<uint8_t>(EventKind::blob_registered));
    append_be<uint64_t>(out, b->index.value);
    append(out, b->commitment.bytes);
    append_be<uint32_t>(out, b->size);
  } else if (const auto* n = std::get_if<NodeRegistered>(&event)) {
    out.push_back(static_cast<uint8_t>(EventKind::node_registered));
    append(out, n->node_id.bytes);
    encode_string16(out, n->endpoint);
    encode_shards(out, n->shards);
  } else if (const auto* a = std::get_if<ResponseAnchored>(&event)) {
    out.push_back(static_cast<uint8_t>(EventKind::response_anchored));
    append(out, a->node_id.bytes);
    append_be<uint32_t>(out, a->shard.value);
    append_be<uint64_t>(out, a->epoch.value);
    append(out, a->response_hash);
    append_be<uint32_t>(out, a->leaf_index);
  }
}

Result<Event> decode_event(ByteReader& r) noexcept {
  uint8_t kind = 0;
  if (!r.read_be(kind)) return make_error(Errc::invalid_argument, "event: truncated");
  std::string why;
  switch (static_cast<EventKind>(kind)) {
    case EventKind::blob_registered: {
      BlobRegistered e;
      if (!r.read_be(e.index.value) || !r.read(e.commitment.bytes) || !r.read_be(e.size)) {
        return make_error(Errc::invalid_argument, "blob_registered event: truncated");
      }
      return Event{e};
    }
    case EventKind::node_registered: {
      NodeRegistered e;
      if (!r.read(e.node_id.bytes) || !read_string16(r, kMaxEndpointBytes, e.endpoint, why) ||
          !read_shards(r, e.shards, why)) {
        return make_error(Errc::invalid_argument,
                          "node_registered event: " + (why.empty() ? "truncated" : why));
      }
      return Event{std::move(e)};
    }
    case EventKind::response_anchored: {
      ResponseAnchored e;
      if (!r.read(e.node_id.bytes) || !r.read_be(e.shard.value) || !r.read_be(e.epoch.value) ||
          !r.read(e.response_hash) || !r.read_be(e.leaf_index)) {
        return make_error(Errc::invalid_argument, "response_anchored event: truncated");
      }
      return Event{e};
    }
  }
  return make_error(Errc::invalid_argument, "event: unknown kind " + std::to_string(kind));
}

Bytes Receipt::encode() const {
  Bytes out;
  out.reserve(96 + detail.size() + 64 * events.size());
  out.push_back(kReceiptVersion);
  append(out, tx_hash);
  append_be<uint64_t>(out, block.value);
  append_be<uint32_t>(out, position);
  out.push_back(static_cast<uint8_t>(kind));
  out.push_back(static_cast<uint8_t>(status));
  const std::string_view d =
      std::string_view(detail).substr(0, std::min(detail.size(), kMaxReceiptDetailBytes));
  encode_string16(out, d);
  out.push_back(blob_index ? 1 : 0);
  if (blob_index) append_be<uint64_t>(out, blob_index->value);
  append_be<uint16_t>(out, static_cast<uint16_t>(events.size()));
  for (const Event& e : events) encode_event(out, e);
  return out;
}

Result<Receipt> Receipt::decode(ByteSpan data) noexcept {
  ByteReader r(data);
  uint8_t version = 0, kind = 0, status = 0, has_index = 0;
  if (!r.read_be(version)) return make_error(Errc::invalid_argument, "receipt: empty");
  if (version != kReceiptVersion) {
    return make_error(Errc::unsupported, "receipt: version " + std::to_string(version));
  }
  Receipt rc;
  std::string why;
  if (!r.read(rc.tx_hash) || !r.read_be(rc.block.value) || !r.read_be(rc.position) ||
      !r.read_be(kind) || !r.read_be(status) ||
      !read_string16(r, kMaxReceiptDetailBytes, rc.detail, why) || !r.read_be(has_index)) {
    return make_error(Errc::invalid_argument, "receipt: " + (why.empty() ? "truncated" : why));
  }
  if (kind > static_cast<uint8_t>(TxKind::submit_response) || status >= kStatusNames.size() ||
      has_index > 1) {
    return make_error(Errc::invalid_argument, "receipt: field out of range");
  }
  rc.kind = static_cast<TxKind>(kind);
  rc.status = static_cast<TxStatus>(status);
  if (has_index == 1) {
    uint64_t index = 0;
    if (!r.read_be(index)) return make_error(Errc::invalid_argument, "receipt: truncated index");
    rc.blob_index = BlobIndex{index};
  }
  uint16_t count = 0;
  if (!r.read_be(count)) return make_error(Errc::invalid_argument, "receipt: truncated events");
  // Every event takes at least 37 bytes: bound the count before reserving.
  if (size_t{count} * 37 > r.remaining()) {
    return make_error(Errc::invalid_argument, "receipt: event count exceeds the data");
  }
  rc.events.reserve(count);
  for (uint16_t i = 0; i < count; ++i) {
    auto e = decode_event(r);
    if (!e) return tl::unexpected(with_context(e.error(), "receipt"));
    rc.events.push_back(std::move(*e));
  }
  if (!r.done()) return make_error(Errc::invalid_argument, "receipt: trailing bytes");
  return rc;
}

}  // namespace cairn::contracts
