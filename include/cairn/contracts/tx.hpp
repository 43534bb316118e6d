#pragma once
// Transactions of the rollup contract, their receipts and events, and the
// canonical binary encodings (docs/chain.md). Decoders take untrusted bytes
// (they arrive over JSON-RPC): they are noexcept, bound every length before
// allocating and reject anything but the one canonical encoding.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"

namespace cairn::contracts {

// Persisted / wire format: do not renumber.
enum class TxKind : uint8_t {
  unknown = 0,  // only in the receipt of bytes that did not decode
  register_node = 1,
  put_blob = 2,
  submit_response = 3,
};
std::string_view tx_kind_name(TxKind kind) noexcept;

inline constexpr uint8_t kTxVersion = 1;
// Endpoint text ("host:port"), bytes.
inline constexpr size_t kMaxEndpointBytes = 255;
// Shards one RegisterNode may list.
inline constexpr size_t kMaxRegisteredShards = 1024;
// No valid transaction is longer (the largest RegisterNode is 4,493 bytes).
inline constexpr size_t kMaxTxBytes = 8192;

// A node announces (or replaces) its endpoint and the shards it serves. An
// empty shard list withdraws it from every shard. node_id must be the sender.
struct RegisterNode {
  NodeId node_id{};
  std::string endpoint;
  // Strictly ascending (the canonical encoding; anything else is malformed).
  std::vector<ShardId> shards;
  bool operator==(const RegisterNode&) const = default;
};

// Registers a blob: the chain assigns the next index, or returns the index of
// an earlier registration of the same commitment (same size).
struct PutBlob {
  BlobId commitment{};
  uint32_t size = 0;  // true payload length, 0..blob_size
  bool operator==(const PutBlob&) const = default;
};

// Anchors the hash of a storage-challenge response of node_id (the sender)
// for (shard, epoch); accepted in blocks epoch*E < b <= epoch*E + D.
struct SubmitResponse {
  NodeId node_id{};
  ShardId shard{};
  Epoch epoch{};
  Hash32 response_hash{};
  bool operator==(const SubmitResponse&) const = default;
};

using TxBody = std::variant<RegisterNode, PutBlob, SubmitResponse>;

// A signed transaction. Replay protection: `nonce` must exceed the largest
// nonce of any earlier included transaction of the same sender (gaps are
// allowed); the signature covers the chain id, so a transaction of one chain
// is invalid on every other.
struct Transaction {
  NodeId sender{};
  uint64_t nonce = 0;
  TxBody body;
  Signature signature{};

  TxKind kind() const noexcept;
  // Everything but the signature, as encoded on the wire.
  Bytes encode_unsigned() const;
  // The full wire form: encode_unsigned() || signature.
  Bytes encode() const;
  // "cairn/tx/v1" || chain_id || encode_unsigned(): what the sender signs.
  Bytes signing_message(const Hash32& chain_id) const;
  // Parses untrusted bytes (at most kMaxTxBytes, all consumed).
  // invalid_argument naming the field on any malformed or wrong-size field.
  static Result<Transaction> decode(ByteSpan data) noexcept;

  bool operator==(const Transaction&) const = default;
};

// SHA-256 of the full wire form. Identifies a transaction and its receipt.
Hash32 tx_hash(ByteSpan encoded);

// Sets sender and signature, returns the wire form.
Bytes sign_tx(Transaction& tx, const SigningKey& key, const Hash32& chain_id);
bool verify_tx_signature(const Transaction& tx, const Hash32& chain_id) noexcept;

// Convenience builders: a signed transaction in wire form.
Bytes make_register_node(const SigningKey& key, const Hash32& chain_id, uint64_t nonce,
                         std::string endpoint, std::vector<ShardId> shards);
Bytes make_put_blob(const SigningKey& key, const Hash32& chain_id, uint64_t nonce,
                    const BlobId& commitment, uint32_t size);
Bytes make_submit_response(const SigningKey& key, const Hash32& chain_id, uint64_t nonce,
                           ShardId shard, Epoch epoch, const Hash32& response_hash);

// Outcome of a transaction. Persisted / wire format: do not renumber.
// malformed .. duplicate_pending may also be returned at submission, before
// a transaction reaches a block (see docs/chain.md "Admission").
enum class TxStatus : uint8_t {
  ok = 0,
  malformed = 1,            // bytes do not decode (a field of the wrong size, ...)
  bad_signature = 2,        // signature invalid for this sender and chain
  stale_nonce = 3,          // nonce not above the sender's last included nonce
  sender_mismatch = 4,      // node_id is not the signing key
  blob_too_large = 5,       // size > blob_size
  size_mismatch = 6,        // commitment already registered with another size
  unknown_shard = 7,        // shard not open (see docs/chain.md) or beyond the index space
  deadline_passed = 8,      // block > epoch*E + D
  epoch_not_started = 9,    // block <= epoch*E
  not_registered = 10,      // node does not serve the shard
  duplicate_response = 11,  // node already anchored a response for (shard, epoch)
  bad_endpoint = 12,        // endpoint not printable "host:port"
  mempool_full = 13,        // admission only: retry later
  duplicate_pending = 14,   // admission only: the same transaction is already pending
};
std::string_view tx_status_name(TxStatus status) noexcept;
std::optional<TxStatus> tx_status_from_name(std::string_view name) noexcept;

// Persisted / wire format: do not renumber.
enum class EventKind : uint8_t {
  blob_registered = 1,
  node_registered = 2,
  response_anchored = 3,
};

struct BlobRegistered {
  BlobIndex index{};
  BlobId commitment{};
  uint32_t size = 0;
  bool operator==(const BlobRegistered&) const = default;
};
struct NodeRegistered {
  NodeId node_id{};
  std::string endpoint;
  std::vector<ShardId> shards;
  bool operator==(const NodeRegistered&) const = default;
};
struct ResponseAnchored {
  NodeId node_id{};
  ShardId shard{};
  Epoch epoch{};
  Hash32 response_hash{};
  // Position in the block's responses_root.
  uint32_t leaf_index = 0;
  bool operator==(const ResponseAnchored&) const = default;
};
using Event = std::variant<BlobRegistered, NodeRegistered, ResponseAnchored>;

struct Receipt {
  Hash32 tx_hash{};
  BlockNumber block{};
  uint32_t position = 0;  // index of the transaction in its block
  TxKind kind = TxKind::unknown;
  TxStatus status = TxStatus::ok;
  // Human-readable reason when status != ok (at most 512 bytes).
  std::string detail;
  // PutBlob that succeeded: the blob's index (new or existing).
  std::optional<BlobIndex> blob_index;
  std::vector<Event> events;

  bool ok() const noexcept { return status == TxStatus::ok; }
  Bytes encode() const;
  static Result<Receipt> decode(ByteSpan data) noexcept;
  bool operator==(const Receipt&) const = default;
};

inline constexpr size_t kMaxReceiptDetailBytes = 512;

// Events on their own (one block's worth), same per-event encoding as in receipts.
void encode_event(Bytes& out, const Event& event);
Result<Event> decode_event(ByteReader& reader) noexcept;

}  // namespace cairn::contracts
