#include "cairn/contracts/header.hpp"

#include <string>

#include "cairn/erasure/sha256.hpp"

namespace cairn::contracts {
namespace {

constexpr std::string_view kHeaderDomain = "cairn/header/v1";
constexpr std::string_view kRandomnessDomain = "cairn/rand";
constexpr std::string_view kChainIdDomain = "cairn/chain-id/v1";
constexpr uint8_t kChainInfoVersion = 1;

std::string block_name(BlockNumber n) { return "block " + std::to_string(n.value); }

tl::unexpected<Error> chain_error(BlockNumber n, const std::string& what) {
  return make_error(Errc::verification_failed, "header chain: " + block_name(n) + ": " + what);
}

}  // namespace

Bytes BlockHeader::encode_unsigned() const {
  Bytes out;
  out.reserve(kHeaderBytes);
  out.push_back(kHeaderVersion);
  append(out, chain_id);
  append_be<uint64_t>(out, number.value);
  append(out, parent_hash);
  append_be<uint64_t>(out, timestamp_ms);
  append(out, tx_root);
  append_be<uint32_t>(out, tx_count);
  append(out, blobs_root);
  append_be<uint64_t>(out, blob_count);
  append(out, responses_root);
  append_be<uint32_t>(out, response_count);
  return out;
}

Bytes BlockHeader::encode() const {
  Bytes out = encode_unsigned();
  append(out, signature);
  return out;
}

Hash32 BlockHeader::hash() const {
  const Bytes body = encode_unsigned();
  return erasure::sha256({as_bytes(kHeaderDomain), body});
}

Result<BlockHeader> BlockHeader::decode(ByteSpan data) noexcept {
  if (data.size() != kHeaderBytes) {
    return make_error(Errc::invalid_argument, "block header: " + std::to_string(data.size()) +
                                                  " bytes, expected " +
                                                  std::to_string(kHeaderBytes));
  }
  ByteReader r(data);
  uint8_t version = 0;
  r.read_be(version);
  if (version != kHeaderVersion) {
    return make_error(Errc::unsupported,
                      "block header: version " + std::to_string(version) + " (this build reads 1)");
  }
  BlockHeader h;
  // The length was checked above, so no read below can fail.
  r.read(h.chain_id);
  r.read_be(h.number.value);
  r.read(h.parent_hash);
  r.read_be(h.timestamp_ms);
  r.read(h.tx_root);
  r.read_be(h.tx_count);
  r.read(h.blobs_root);
  r.read_be(h.blob_count);
  r.read(h.responses_root);
  r.read_be(h.response_count);
  r.read(h.signature);
  return h;
}

Bytes encode_params(const erasure::NetworkParams& p) {
  Bytes out;
  out.reserve(kParamsBytes);
  append_be<uint32_t>(out, p.blob_size);
  append_be<uint32_t>(out, p.data_fragments);
  append_be<uint32_t>(out, p.parity_fragments);
  append_be<uint32_t>(out, p.chunk_size);
  append_be<uint64_t>(out, p.blobs_per_shard);
  append_be<uint32_t>(out, p.block_time_ms);
  append_be<uint32_t>(out, p.epoch_blocks);
  append_be<uint32_t>(out, p.deadline_blocks);
  append_be<uint32_t>(out, p.walk_steps);
  append_be<uint32_t>(out, p.openings);
  append_be<uint32_t>(out, p.seal_cost);
  append_be<uint32_t>(out, p.mask_checks);
  return out;
}

Result<erasure::NetworkParams> decode_params(ByteReader& r) noexcept {
  if (r.remaining() < kParamsBytes) {
    return make_error(Errc::invalid_argument, "network parameters: truncated");
  }
  erasure::NetworkParams p;
  r.read_be(p.blob_size);
  r.read_be(p.data_fragments);
  r.read_be(p.parity_fragments);
  r.read_be(p.chunk_size);
  r.read_be(p.blobs_per_shard);
  r.read_be(p.block_time_ms);
  r.read_be(p.epoch_blocks);
  r.read_be(p.deadline_blocks);
  r.read_be(p.walk_steps);
  r.read_be(p.openings);
  r.read_be(p.seal_cost);
  r.read_be(p.mask_checks);
  return p;
}

Hash32 compute_chain_id(const NodeId& sequencer, const erasure::NetworkParams& params,
                        uint64_t genesis_time_ms) {
  uint8_t time_be[8];
  put_be<uint64_t>(time_be, genesis_time_ms);
  const Bytes p = encode_params(params);
  return erasure::sha256({as_bytes(kChainIdDomain), sequencer.span(), p, ByteSpan(time_be, 8)});
}

Bytes ChainInfo::encode() const {
  Bytes out;
  out.push_back(kChainInfoVersion);
  append(out, chain_id);
  append(out, sequencer.bytes);
  append(out, encode_params(params));
  append_be<uint64_t>(out, genesis_time_ms);
  append(out, genesis_hash);
  return out;
}

Result<ChainInfo> ChainInfo::decode(ByteSpan data) noexcept {
  ByteReader r(data);
  uint8_t version = 0;
  if (!r.read_be(version)) return make_error(Errc::invalid_argument, "chain info: empty");
  if (version != kChainInfoVersion) {
    return make_error(Errc::unsupported, "chain info: version " + std::to_string(version));
  }
  ChainInfo info;
  if (!r.read(info.chain_id) || !r.read(info.sequencer.bytes)) {
    return make_error(Errc::invalid_argument, "chain info: truncated");
  }
  auto params = decode_params(r);
  if (!params) return tl::unexpected(params.error());
  info.params = *params;
  if (!r.read_be(info.genesis_time_ms) || !r.read(info.genesis_hash) || !r.done()) {
    return make_error(Errc::invalid_argument, "chain info: wrong length");
  }
  return info;
}

Hash32 block_randomness(const Hash32& block_hash) {
  return erasure::sha256({as_bytes(kRandomnessDomain), block_hash});
}

void sign_header(BlockHeader& header, const SigningKey& sequencer) {
  const Hash32 h = header.hash();
  header.signature = sequencer.sign(h);
}

Status verify_header(const BlockHeader& header, const NodeId& sequencer) {
  const Hash32 h = header.hash();
  if (!ed25519_verify(sequencer, h, header.signature)) {
    return chain_error(header.number,
                       "sequencer signature does not verify against " + sequencer.hex());
  }
  return {};
}

Status verify_header_chain(std::span<const BlockHeader> headers, const NodeId& sequencer,
                           const Hash32& chain_id) {
  if (headers.empty()) return make_error(Errc::invalid_argument, "header chain: no headers");
  Hash32 previous_hash{};
  for (size_t i = 0; i < headers.size(); ++i) {
    const BlockHeader& h = headers[i];
    if (h.chain_id != chain_id) {
      return chain_error(h.number,
                         "chain id " + to_hex(h.chain_id) + " is not " + to_hex(chain_id));
    }
    if (h.number.value == 0 && h.parent_hash != Hash32{}) {
      return chain_error(h.number, "genesis block with a parent hash");
    }
    if (i > 0) {
      const BlockHeader& prev = headers[i - 1];
      if (h.number.value != prev.number.value + 1) {
        return chain_error(h.number, "does not follow " + block_name(prev.number));
      }
      if (h.parent_hash != previous_hash) {
        return chain_error(h.number, "parent hash " + to_hex(h.parent_hash) + " is not the hash " +
                                         to_hex(previous_hash) + " of " + block_name(prev.number));
      }
      if (h.timestamp_ms < prev.timestamp_ms) {
        return chain_error(h.number, "timestamp goes backwards");
      }
      if (h.blob_count < prev.blob_count) {
        return chain_error(h.number, "blob count shrinks");
      }
    }
    CAIRN_TRY_STATUS(verify_header(h, sequencer));
    previous_hash = h.hash();
  }
  return {};
}

Hash32 blob_leaf(const BlobId& commitment) { return erasure::merkle_leaf_hash(commitment.span()); }

Hash32 response_leaf(const NodeId& node, ShardId shard, Epoch epoch, const Hash32& response_hash) {
  uint8_t buf[32 + 4 + 8 + 32];
  std::copy(node.bytes.begin(), node.bytes.end(), buf);
  put_be<uint32_t>(buf + 32, shard.value);
  put_be<uint64_t>(buf + 36, epoch.value);
  std::copy(response_hash.begin(), response_hash.end(), buf + 44);
  return erasure::merkle_leaf_hash(ByteSpan(buf, sizeof buf));
}

bool verify_blob_inclusion(const BlockHeader& header, const BlobId& commitment, BlobIndex index,
                           const erasure::MerkleProof& proof) noexcept {
  return erasure::merkle_verify(header.blobs_root, blob_leaf(commitment), index.value,
                                header.blob_count, proof);
}

bool verify_response_inclusion(const BlockHeader& header, const NodeId& node, ShardId shard,
                               Epoch epoch, const Hash32& response_hash, uint32_t leaf_index,
                               const erasure::MerkleProof& proof) noexcept {
  return erasure::merkle_verify(header.responses_root,
                                response_leaf(node, shard, epoch, response_hash), leaf_index,
                                header.response_count, proof);
}

uint64_t shard_blob_count(const BlockHeader& header, const erasure::NetworkParams& params,
                          ShardId shard) noexcept {
  if (params.blobs_per_shard == 0) return 0;
  const uint64_t first = uint64_t{shard.value} * params.blobs_per_shard;
  if (first / params.blobs_per_shard != shard.value || header.blob_count <= first) return 0;
  return std::min(header.blob_count - first, params.blobs_per_shard);
}

bool epoch_start_block(const erasure::NetworkParams& params, Epoch epoch,
                       BlockNumber& start) noexcept {
  if (params.epoch_blocks != 0 && epoch.value > UINT64_MAX / params.epoch_blocks) return false;
  start = BlockNumber{epoch.value * params.epoch_blocks};
  return true;
}

}  // namespace cairn::contracts
