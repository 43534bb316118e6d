#include "cairn/sampling/response.hpp"

#include <string>

#include "cairn/erasure/sha256.hpp"

namespace cairn::sampling {
namespace {

constexpr std::string_view kSignatureDomain = "cairn/response-sig/v1";

// version node shard epoch transcript_root final_state anchor_block chunk_size pair_count
constexpr size_t kFixedHeaderBytes = 1 + 32 + 4 + 8 + 32 + 32 + 8 + 4 + 2;
// Smallest encoded MerkleProof (empty path) and ChunkProof.
constexpr size_t kMinMerkleProofBytes = 17;
constexpr size_t kMinChunkProofBytes = 2 * kMinMerkleProofBytes + 32;

size_t min_step_bytes(uint32_t chunk_size) {
  return 2 * size_t{chunk_size} + 32 + kMinChunkProofBytes + 2 * kMinMerkleProofBytes;
}

tl::unexpected<Error> malformed_response(const std::string& what) {
  return make_error(Errc::invalid_argument, "response: " + what);
}

void encode_step(Bytes& out, const StepOpening& s) {
  append(out, s.sealed);
  append(out, s.unsealed);
  append(out, s.commitment.bytes);
  s.chunk_proof.serialize_to(out);
  s.blob_path.serialize_to(out);
  s.transcript_path.serialize_to(out);
}

Result<StepOpening> read_step(ByteReader& r, uint32_t chunk_size,
                              const std::string& where) noexcept {
  StepOpening s;
  ByteSpan sealed, unsealed;
  if (!r.view(chunk_size, sealed) || !r.view(chunk_size, unsealed) || !r.read(s.commitment.bytes)) {
    return malformed_response(where + ": truncated chunk or commitment");
  }
  s.sealed.assign(sealed.begin(), sealed.end());
  s.unsealed.assign(unsealed.begin(), unsealed.end());
  auto chunk_proof = erasure::ChunkProof::read(r);
  if (!chunk_proof) return tl::unexpected(with_context(chunk_proof.error(), "response: " + where));
  s.chunk_proof = std::move(*chunk_proof);
  auto blob_path = erasure::MerkleProof::read(r);
  if (!blob_path)
    return tl::unexpected(with_context(blob_path.error(), "response: " + where + " blob path"));
  s.blob_path = std::move(*blob_path);
  auto transcript_path = erasure::MerkleProof::read(r);
  if (!transcript_path) {
    return tl::unexpected(
        with_context(transcript_path.error(), "response: " + where + " transcript path"));
  }
  s.transcript_path = std::move(*transcript_path);
  return s;
}

uint32_t chunk_size_of(const Response& r) {
  return r.pairs.empty() ? 0 : static_cast<uint32_t>(r.pairs.front().first.sealed.size());
}

// Bytes of one encoded pair with typical proof depths (a reserve() hint).
size_t pair_size_hint(uint32_t chunk_size) {
  return 36 + 2 * (min_step_bytes(chunk_size) + 32 * 32);
}

void encode_body(const Response& resp, Bytes& out) {
  const uint32_t chunk_size = chunk_size_of(resp);
  out.reserve(out.size() + kFixedHeaderBytes + resp.pairs.size() * pair_size_hint(chunk_size) + 64);
  out.push_back(kResponseVersion);
  append(out, resp.node.bytes);
  append_be<uint32_t>(out, resp.shard.value);
  append_be<uint64_t>(out, resp.epoch.value);
  append(out, resp.transcript_root);
  append(out, resp.final_state);
  append_be<uint64_t>(out, resp.anchor_block.value);
  append_be<uint32_t>(out, chunk_size);
  append_be<uint16_t>(out, static_cast<uint16_t>(resp.pairs.size()));
  for (const PairOpening& p : resp.pairs) {
    append_be<uint32_t>(out, p.step);
    append(out, p.prev_state);
    encode_step(out, p.first);
    encode_step(out, p.second);
  }
}

}  // namespace

Hash32 Response::commitment() const {
  return commitment_hash(node, shard, epoch, transcript_root, final_state);
}

Bytes Response::encode_unsigned() const {
  Bytes out;
  encode_body(*this, out);
  return out;
}

void Response::encode_to(Bytes& out) const {
  encode_body(*this, out);
  append(out, signature);
}

Bytes Response::encode() const {
  Bytes out;
  encode_to(out);
  return out;
}

Hash32 Response::signing_hash() const {
  return erasure::sha256({as_bytes(kSignatureDomain), encode_unsigned()});
}

Result<Response> Response::read(ByteReader& r) noexcept {
  const size_t start = r.position();
  uint8_t version = 0;
  if (!r.read_be(version)) return malformed_response("empty");
  if (version != kResponseVersion) {
    return make_error(Errc::unsupported, "response: version " + std::to_string(version) +
                                             " (this build reads " +
                                             std::to_string(kResponseVersion) + ")");
  }
  Response resp;
  uint32_t chunk_size = 0;
  uint16_t pair_count = 0;
  if (!r.read(resp.node.bytes) || !r.read_be(resp.shard.value) || !r.read_be(resp.epoch.value) ||
      !r.read(resp.transcript_root) || !r.read(resp.final_state) ||
      !r.read_be(resp.anchor_block.value) || !r.read_be(chunk_size) || !r.read_be(pair_count)) {
    return malformed_response("truncated header");
  }
  if (chunk_size == 0 || chunk_size > kMaxResponseChunkBytes) {
    return malformed_response("chunk size " + std::to_string(chunk_size) + " outside 1.." +
                              std::to_string(kMaxResponseChunkBytes));
  }
  // A response opens at least one pair; with none, chunk_size would be a
  // free field (the encoder derives it from the first pair).
  if (pair_count == 0 || pair_count > kMaxResponsePairs) {
    return malformed_response(std::to_string(pair_count) + " pairs, expected 1.." +
                              std::to_string(kMaxResponsePairs));
  }
  // Bound the allocation by what the remaining bytes can hold at the least.
  const size_t min_pair = 4 + 32 + 2 * min_step_bytes(chunk_size);
  if (r.remaining() < size_t{pair_count} * min_pair + 64) {
    return malformed_response(
        std::to_string(pair_count) + " pairs of " + std::to_string(chunk_size) +
        "-byte chunks do not fit in the remaining " + std::to_string(r.remaining()) + " bytes");
  }
  resp.pairs.reserve(pair_count);
  for (uint16_t i = 0; i < pair_count; ++i) {
    const std::string where = "pair " + std::to_string(i);
    PairOpening p;
    if (!r.read_be(p.step) || !r.read(p.prev_state))
      return malformed_response(where + ": truncated");
    auto first = read_step(r, chunk_size, where + " first step");
    if (!first) return tl::unexpected(first.error());
    p.first = std::move(*first);
    auto second = read_step(r, chunk_size, where + " second step");
    if (!second) return tl::unexpected(second.error());
    p.second = std::move(*second);
    resp.pairs.push_back(std::move(p));
  }
  if (!r.read(resp.signature)) return malformed_response("truncated signature");
  if (r.position() - start > kMaxResponseBytes) {
    return malformed_response("longer than " + std::to_string(kMaxResponseBytes) + " bytes");
  }
  return resp;
}

Result<Response> Response::decode(ByteSpan data) noexcept {
  if (data.size() > kMaxResponseBytes) {
    return malformed_response(std::to_string(data.size()) + " bytes exceed " +
                              std::to_string(kMaxResponseBytes));
  }
  ByteReader r(data);
  auto resp = read(r);
  if (resp && !r.done())
    return malformed_response(std::to_string(r.remaining()) + " trailing bytes");
  return resp;
}

Status sign_response(Response& response, const SigningKey& key) {
  if (key.public_key() != response.node) {
    return make_error(Errc::invalid_argument, "response of node " + response.node.hex() +
                                                  " cannot be signed with the key of " +
                                                  key.public_key().hex());
  }
  response.signature = key.sign(response.signing_hash());
  return {};
}

}  // namespace cairn::sampling
