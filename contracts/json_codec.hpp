#pragma once
// JSON forms of chain objects for the JSON-RPC server and clients, in
// Ethereum's conventions: quantities are "0x"-prefixed hex without leading
// zeros, byte strings "0x"-prefixed hex. Objects whose exact bytes matter
// (headers, receipts, events, proofs) also carry "raw": the hex of their
// canonical binary encoding, which clients decode instead of the JSON view.
//
// The parse_* functions take untrusted JSON and never throw.

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cairn/contracts/chain.hpp"
#include "cairn/contracts/header.hpp"
#include "cairn/contracts/params_json.hpp"
#include "cairn/contracts/records.hpp"
#include "cairn/contracts/tx.hpp"

namespace cairn::contracts::json_codec {

using nlohmann::json;

std::string quantity(uint64_t v);
std::string hex_data(ByteSpan b);

// A hex quantity "0x1a" (at most 16 digits, no empty "0x") or a JSON
// unsigned integer.
std::optional<uint64_t> parse_quantity(const json& j) noexcept;
// "0x"-prefixed hex of any length (at most `max_bytes`).
std::optional<Bytes> parse_data(const json& j, size_t max_bytes) noexcept;
std::optional<Hash32> parse_hash(const json& j) noexcept;

json chain_info_to_json(const ChainInfo& info);
Result<ChainInfo> chain_info_from_json(const json& j) noexcept;

// cairn_getHeader form: decoded fields, "hash", "randomness" and "raw".
json header_to_json(const BlockHeader& h);
// Decodes "raw" (the fields are a view for people).
Result<BlockHeader> header_from_json(const json& j) noexcept;

json event_to_json(const Event& e);
json receipt_to_json(const Receipt& r);
Result<Receipt> receipt_from_json(const json& j) noexcept;
// {"block", "events": [...], "raw": hex of u32 count || encoded events}
json events_to_json(BlockNumber block, const std::vector<Event>& events);
Result<std::vector<Event>> events_from_json(const json& j) noexcept;

json blob_to_json(const BlobRecord& b, const erasure::NetworkParams& params);
Result<BlobRecord> blob_from_json(const json& j) noexcept;
json node_to_json(const NodeRecord& n);
Result<NodeRecord> node_from_json(const json& j) noexcept;
json response_to_json(const ResponseRecord& r);
Result<ResponseRecord> response_from_json(const json& j) noexcept;

json proof_to_json(const erasure::MerkleProof& p);
Result<erasure::MerkleProof> proof_from_json(const json& j) noexcept;

}  // namespace cairn::contracts::json_codec
