#include <algorithm>
#include <cstring>
#include <string>

#include "cairn/sampling/proof.hpp"
#include "response_check.hpp"

namespace cairn::sampling {
namespace {

constexpr char kMagic[kProofMagicBytes + 1] = "CAIRNRCP";

tl::unexpected<Error> malformed_proof(const std::string& what) {
  return make_error(Errc::invalid_argument, "replica proof: " + what);
}

tl::unexpected<Error> rejected(const std::string& what) {
  return make_error(Errc::verification_failed, what);
}

}  // namespace

Hash32 ReplicaProof::chain_id() const {
  return contracts::compute_chain_id(sequencer, params, genesis_time_ms);
}

Bytes ReplicaProof::encode() const {
  // Sized then written (rather than grown from empty): GCC 12 reports false
  // -Wstringop-overflow positives on inlined growth of a fresh vector.
  Bytes out(kProofMagicBytes + 1);
  std::memcpy(out.data(), kMagic, kProofMagicBytes);
  out[kProofMagicBytes] = kProofVersion;
  append(out, sequencer.bytes);
  append(out, contracts::encode_params(params));
  append_be<uint64_t>(out, genesis_time_ms);
  append_be<uint32_t>(out, shard.value);
  append_be<uint64_t>(out, epoch.value);
  append_be<uint16_t>(out, static_cast<uint16_t>(headers.size()));
  for (const contracts::BlockHeader& h : headers) append(out, h.encode());
  append_be<uint32_t>(out, static_cast<uint32_t>(entries.size()));
  for (const ProofEntry& e : entries) {
    e.anchor_path.serialize_to(out);
    const size_t len_at = out.size();
    append_be<uint32_t>(out, 0);
    e.response.encode_to(out);
    put_be<uint32_t>(out.data() + len_at, static_cast<uint32_t>(out.size() - len_at - 4));
  }
  return out;
}

Result<ReplicaProof> ReplicaProof::decode(ByteSpan data) noexcept {
  ByteReader r(data);
  ByteSpan magic;
  if (!r.view(kProofMagicBytes, magic) ||
      std::memcmp(magic.data(), kMagic, kProofMagicBytes) != 0) {
    return malformed_proof("not a replica-count proof (no CAIRNRCP magic)");
  }
  uint8_t version = 0;
  if (!r.read_be(version)) return malformed_proof("truncated before the version");
  if (version != kProofVersion) {
    return make_error(Errc::unsupported, "replica proof: version " + std::to_string(version) +
                                             " (this build reads " + std::to_string(kProofVersion) +
                                             ")");
  }
  ReplicaProof p;
  if (!r.read(p.sequencer.bytes)) return malformed_proof("truncated sequencer key");
  auto params = contracts::decode_params(r);
  if (!params) return tl::unexpected(with_context(params.error(), "replica proof"));
  p.params = *params;
  uint16_t header_count = 0;
  if (!r.read_be(p.genesis_time_ms) || !r.read_be(p.shard.value) || !r.read_be(p.epoch.value) ||
      !r.read_be(header_count)) {
    return malformed_proof("truncated subject");
  }
  if (header_count > kMaxProofHeaders ||
      r.remaining() < size_t{header_count} * contracts::kHeaderBytes) {
    return malformed_proof(std::to_string(header_count) + " headers do not fit the proof");
  }
  p.headers.reserve(header_count);
  for (uint16_t i = 0; i < header_count; ++i) {
    ByteSpan raw;
    r.view(contracts::kHeaderBytes, raw);
    auto h = contracts::BlockHeader::decode(raw);
    if (!h)
      return tl::unexpected(with_context(h.error(), "replica proof: header " + std::to_string(i)));
    p.headers.push_back(*h);
  }
  uint32_t entry_count = 0;
  if (!r.read_be(entry_count)) return malformed_proof("truncated response count");
  // Every entry takes at least a 17-byte path and a 4-byte length.
  if (entry_count > kMaxProofResponses || r.remaining() < size_t{entry_count} * 21) {
    return malformed_proof(std::to_string(entry_count) + " responses do not fit the proof");
  }
  p.entries.reserve(entry_count);
  for (uint32_t i = 0; i < entry_count; ++i) {
    const std::string where = "replica proof: response " + std::to_string(i);
    ProofEntry e;
    auto path = erasure::MerkleProof::read(r);
    if (!path) return tl::unexpected(with_context(path.error(), where + " anchor path"));
    e.anchor_path = std::move(*path);
    uint32_t len = 0;
    ByteSpan raw;
    if (!r.read_be(len) || !r.view(len, raw))
      return malformed_proof("response " + std::to_string(i) + " truncated");
    auto resp = Response::decode(raw);
    if (!resp) return tl::unexpected(with_context(resp.error(), where));
    e.response = std::move(*resp);
    p.entries.push_back(std::move(e));
  }
  if (!r.done()) return malformed_proof(std::to_string(r.remaining()) + " trailing bytes");
  return p;
}

Result<ProofReport> verify_replica_proof(const ReplicaProof& proof, const TrustRoot& trust,
                                         const VerifyLimits& limits) {
  const erasure::NetworkParams& params = proof.params;
  if (auto st = params.validate(); !st) return rejected("replica proof: " + st.error().message);
  const uint64_t replica_bytes = uint64_t{params.total_fragments()} * params.fragment_size();
  if (replica_bytes > limits.max_replica_bytes || params.seal_cost > limits.max_seal_cost ||
      params.mask_checks > limits.max_mask_checks) {
    return rejected("replica proof: parameters beyond this verifier's limits (replica of " +
                    std::to_string(replica_bytes) + " bytes, seal_cost " +
                    std::to_string(params.seal_cost) + ", mask_checks " +
                    std::to_string(params.mask_checks) + ")");
  }
  const Hash32 chain_id = proof.chain_id();
  ProofReport report;
  report.shard = proof.shard;
  report.epoch = proof.epoch;
  report.chain_id = chain_id;
  report.sequencer = proof.sequencer;
  report.responses = proof.entries.size();

  // The trust root.
  switch (trust.kind) {
    case TrustRoot::Kind::embedded:
      break;
    case TrustRoot::Kind::sequencer_key:
      if (proof.sequencer != trust.sequencer) {
        return rejected("replica proof: made on the chain of sequencer " + proof.sequencer.hex() +
                        ", not the trusted " + trust.sequencer.hex());
      }
      report.trust_pinned = true;
      break;
    case TrustRoot::Kind::genesis: {
      const contracts::ChainInfo& g = trust.genesis;
      if (proof.sequencer != g.sequencer) {
        return rejected("replica proof: made on the chain of sequencer " + proof.sequencer.hex() +
                        ", not the trusted genesis's " + g.sequencer.hex());
      }
      if (!(params == g.params))
        return rejected("replica proof: network parameters differ from the trusted genesis");
      if (proof.genesis_time_ms != g.genesis_time_ms || chain_id != g.chain_id) {
        return rejected("replica proof: chain id " + to_hex(chain_id) +
                        " is not the trusted genesis's " + to_hex(g.chain_id));
      }
      report.trust_pinned = true;
      break;
    }
  }

  // The header chain: blocks e*E .. e*E+D under the trusted key.
  BlockNumber start{};
  if (!contracts::epoch_start_block(params, proof.epoch, start)) {
    return rejected("replica proof: epoch " + std::to_string(proof.epoch.value) +
                    " has no start block");
  }
  report.start_block = start;
  const uint64_t d = params.deadline_blocks;
  if (proof.headers.size() != d + 1) {
    return rejected("replica proof: " + std::to_string(proof.headers.size()) +
                    " headers, expected " + std::to_string(d + 1) + " (blocks " +
                    std::to_string(start.value) + ".." + std::to_string(start.value + d) + ")");
  }
  if (proof.headers.front().number != start) {
    return rejected("replica proof: headers start at block " +
                    std::to_string(proof.headers.front().number.value) + ", epoch " +
                    std::to_string(proof.epoch.value) + " starts at block " +
                    std::to_string(start.value));
  }
  if (auto st = contracts::verify_header_chain(proof.headers, proof.sequencer, chain_id); !st) {
    return tl::unexpected(with_context(st.error(), "replica proof"));
  }
  auto challenge = make_epoch_challenge(params, proof.shard, proof.epoch, proof.headers.front());
  if (!challenge) return rejected("replica proof: " + challenge.error().message);
  report.first_blob = challenge->first_blob;
  report.blob_count = challenge->blob_count;

  std::vector<Hash32> randomness;
  for (const contracts::BlockHeader& h : proof.headers)
    randomness.push_back(contracts::block_randomness(h.hash()));

  // Cheap checks of every response first, masks last: a tampered proof
  // fails in milliseconds.
  std::vector<detail::MaskCheck> masks;
  for (size_t i = 0; i < proof.entries.size(); ++i) {
    const ProofEntry& e = proof.entries[i];
    const Response& resp = e.response;
    const std::string who =
        "replica proof: response " + std::to_string(i) + " (node " + resp.node.hex() + ")";
    if (resp.shard != proof.shard || resp.epoch != proof.epoch) {
      return rejected(who + " answers shard " + std::to_string(resp.shard.value) + " epoch " +
                      std::to_string(resp.epoch.value) + ", the proof is for shard " +
                      std::to_string(proof.shard.value) + " epoch " +
                      std::to_string(proof.epoch.value));
    }
    const uint64_t b = resp.anchor_block.value;
    if (b <= start.value || b > start.value + d) {
      return rejected(who + " was anchored in block " + std::to_string(b) +
                      ", outside the window " + std::to_string(start.value + 1) + ".." +
                      std::to_string(start.value + d));
    }
    const contracts::BlockHeader& anchor = proof.headers[b - start.value];
    if (e.anchor_path.index > UINT32_MAX ||
        !contracts::verify_response_inclusion(
            anchor, resp.node, resp.shard, resp.epoch, resp.commitment(),
            static_cast<uint32_t>(e.anchor_path.index), e.anchor_path)) {
      return rejected(who + " is not anchored in the responses_root of block " + std::to_string(b));
    }
    auto st = detail::check_response_paths(*challenge, resp, randomness[b - start.value], masks);
    if (!st)
      return tl::unexpected(
          with_context(st.error(), "replica proof: response " + std::to_string(i)));
    report.nodes.push_back(resp.node);
  }
  if (auto st = detail::run_mask_checks(params, masks); !st) {
    return tl::unexpected(with_context(st.error(), "replica proof"));
  }
  std::sort(report.nodes.begin(), report.nodes.end());
  report.nodes.erase(std::unique(report.nodes.begin(), report.nodes.end()), report.nodes.end());
  return report;
}

Result<ProofReport> verify_replica_proof(ByteSpan bytes, const TrustRoot& trust,
                                         const VerifyLimits& limits) {
  if (bytes.size() > limits.max_proof_bytes) {
    return malformed_proof(std::to_string(bytes.size()) + " bytes exceed the limit of " +
                           std::to_string(limits.max_proof_bytes));
  }
  auto proof = ReplicaProof::decode(bytes);
  if (!proof) return tl::unexpected(proof.error());
  return verify_replica_proof(*proof, trust, limits);
}

}  // namespace cairn::sampling
