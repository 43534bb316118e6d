#include "node/wire.hpp"

#include <array>
#include <string>

#include "cairn/erasure/commitment.hpp"

namespace cairn::node::wire {
namespace {

constexpr std::string_view kNoticeDomain = "cairn/node-notice/v1";
// version, kind, node, timestamp, count
constexpr size_t kNoticeHeader = 1 + 1 + 32 + 8 + 2;
constexpr size_t kAnnounceEntry = 32 + 8 + 4;
constexpr size_t kStoredEntry = 32 + 8;
constexpr size_t kSignatureBytes = 64;
// version, length, fragment size, n
constexpr size_t kResponseHeader = 1 + 4 + 4 + 1;

size_t entry_bytes(NoticeKind kind) { return kind == NoticeKind::announce ? kAnnounceEntry : kStoredEntry; }

Bytes signing_message(ShardId topic, ByteSpan body) {
  Bytes msg;
  msg.reserve(kNoticeDomain.size() + 4 + body.size());
  append(msg, as_bytes(kNoticeDomain));
  append_be<uint32_t>(msg, topic.value);
  append(msg, body);
  return msg;
}

tl::unexpected<Error> malformed(const std::string& what) {
  return make_error(Errc::invalid_argument, "node notice: " + what);
}

}  // namespace

Result<Bytes> encode_notice(const Notice& notice, ShardId topic, const erasure::NetworkParams& params,
                            const SigningKey& key) {
  if (notice.entries.empty() || notice.entries.size() > kMaxNoticeEntries) {
    return make_error(Errc::invalid_argument, "node notice: " + std::to_string(notice.entries.size()) +
                                                  " entries (1.." + std::to_string(kMaxNoticeEntries) + ")");
  }
  if (notice.node != key.public_key()) {
    return make_error(Errc::invalid_argument, "node notice: node id is not the signing key");
  }
  Bytes out;
  out.reserve(kNoticeHeader + notice.entries.size() * kAnnounceEntry + kSignatureBytes);
  out.push_back(kNodeWireVersion);
  out.push_back(static_cast<uint8_t>(notice.kind));
  append(out, notice.node.bytes);
  append_be<uint64_t>(out, notice.timestamp_ms);
  append_be<uint16_t>(out, static_cast<uint16_t>(notice.entries.size()));
  for (const NoticeEntry& e : notice.entries) {
    if (params.shard_of(e.index) != topic) {
      return make_error(Errc::invalid_argument, "node notice: blob index " + std::to_string(e.index.value) +
                                                    " is not in shard " + std::to_string(topic.value));
    }
    append(out, e.id.bytes);
    append_be<uint64_t>(out, e.index.value);
    if (notice.kind == NoticeKind::announce) append_be<uint32_t>(out, e.size);
  }
  const Signature sig = key.sign(signing_message(topic, out));
  append(out, sig);
  return out;
}

Result<Notice> decode_notice(ByteSpan data, ShardId topic, const erasure::NetworkParams& params,
                             bool check_signature) noexcept {
  try {
    ByteReader r(data);
    uint8_t version = 0, kind = 0;
    uint16_t count = 0;
    Notice n;
    if (!r.read_be(version)) return malformed("empty");
    if (version != kNodeWireVersion) {
      return make_error(Errc::unsupported, "node notice: version " + std::to_string(version) + " (this build speaks " +
                                               std::to_string(kNodeWireVersion) + ")");
    }
    if (!r.read_be(kind) || !r.read(n.node.bytes) || !r.read_be(n.timestamp_ms) || !r.read_be(count)) {
      return malformed("truncated header");
    }
    if (kind != static_cast<uint8_t>(NoticeKind::announce) && kind != static_cast<uint8_t>(NoticeKind::stored)) {
      return malformed("unknown kind " + std::to_string(kind));
    }
    n.kind = static_cast<NoticeKind>(kind);
    if (count == 0 || count > kMaxNoticeEntries) {
      return malformed(std::to_string(count) + " entries (1.." + std::to_string(kMaxNoticeEntries) + ")");
    }
    // Exact length before allocating: header + entries + signature.
    if (r.remaining() != size_t{count} * entry_bytes(n.kind) + kSignatureBytes) {
      return malformed("length does not match " + std::to_string(count) + " entries");
    }
    n.entries.resize(count);
    for (NoticeEntry& e : n.entries) {
      r.read(e.id.bytes);
      r.read_be(e.index.value);
      if (n.kind == NoticeKind::announce) r.read_be(e.size);
      if (params.shard_of(e.index) != topic) {
        return malformed("blob index " + std::to_string(e.index.value) + " is not in shard " +
                         std::to_string(topic.value));
      }
      if (e.size > params.blob_size) return malformed("blob size above blob_size");
    }
    const size_t body_size = r.position();
    Signature sig{};
    r.read(sig);
    if (check_signature && !ed25519_verify(n.node, signing_message(topic, data.first(body_size)), sig)) {
      return make_error(Errc::verification_failed, "node notice: bad signature");
    }
    return n;
  } catch (...) {
    return make_error(Errc::internal, "node notice: out of memory while decoding");
  }
}

Bytes encode_fragments_request(const FragmentsRequest& request) {
  const bool v2 = request.at_least > 0;
  Bytes out;
  out.reserve(1 + 32 + 1 + 1 + request.fragments.size());
  out.push_back(v2 ? kFragmentsRequestV2 : kFragmentsRequestV1);
  append(out, request.id.bytes);
  if (v2) out.push_back(request.at_least);
  out.push_back(static_cast<uint8_t>(request.fragments.size()));
  append(out, request.fragments);
  return out;
}

Result<FragmentsRequest> decode_fragments_request(ByteSpan data, uint32_t total_fragments) noexcept {
  try {
    ByteReader r(data);
    uint8_t version = 0, count = 0;
    FragmentsRequest req;
    if (!r.read_be(version)) return make_error(Errc::invalid_argument, "fragments request: empty");
    if (version != kFragmentsRequestV1 && version != kFragmentsRequestV2) {
      return make_error(Errc::unsupported,
                        "fragments request: version " + std::to_string(version) + " (this build speaks 1 and 2)");
    }
    if (!r.read(req.id.bytes) || (version == kFragmentsRequestV2 && !r.read_be(req.at_least)) || !r.read_be(count)) {
      return make_error(Errc::invalid_argument, "fragments request: truncated");
    }
    // Version 2 exists to carry a non-zero at_least: 0 there is version 1's
    // encoding, so it is refused (one encoding per request).
    if (version == kFragmentsRequestV2 && (req.at_least == 0 || req.at_least > total_fragments)) {
      return make_error(Errc::invalid_argument, "fragments request: at_least " + std::to_string(req.at_least) +
                                                    " (1.." + std::to_string(total_fragments) + ")");
    }
    if (r.remaining() != count || count > total_fragments) {
      return make_error(Errc::invalid_argument, "fragments request: bad fragment count");
    }
    std::array<bool, 256> seen{};
    req.fragments.resize(count);
    r.read(req.fragments);
    for (uint8_t f : req.fragments) {
      if (f >= total_fragments || seen[f]) {
        return make_error(Errc::invalid_argument,
                          "fragments request: fragment " + std::to_string(f) + " out of range or repeated");
      }
      seen[f] = true;
    }
    return req;
  } catch (...) {
    return make_error(Errc::internal, "fragments request: out of memory while decoding");
  }
}

void encode_fragments_response(Bytes& out, uint32_t length, uint32_t fragment_size, std::span<const Hash32> roots,
                               std::span<const FragmentView> fragments) {
  out.reserve(out.size() + kResponseHeader + roots.size() * 32 + 1 + fragments.size() * (1 + size_t{fragment_size}));
  out.push_back(kNodeWireVersion);
  append_be<uint32_t>(out, length);
  append_be<uint32_t>(out, fragment_size);
  out.push_back(static_cast<uint8_t>(roots.size()));
  for (const Hash32& r : roots) append(out, r);
  out.push_back(static_cast<uint8_t>(fragments.size()));
  for (const FragmentView& f : fragments) {
    out.push_back(f.index);
    append(out, f.bytes);
  }
}

size_t fragments_response_size(const erasure::NetworkParams& params, size_t count) noexcept {
  return kResponseHeader + size_t{params.total_fragments()} * 32 + 1 + count * (1 + size_t{params.fragment_size()});
}

Result<FragmentsResponse> decode_fragments_response(ByteSpan data, const erasure::NetworkParams& params) noexcept {
  try {
    ByteReader r(data);
    uint8_t version = 0, n = 0, count = 0;
    uint32_t fragment_size = 0;
    FragmentsResponse resp;
    if (!r.read_be(version)) return make_error(Errc::invalid_argument, "fragments response: empty");
    if (version != kNodeWireVersion) {
      return make_error(Errc::unsupported, "fragments response: version " + std::to_string(version));
    }
    if (!r.read_be(resp.length) || !r.read_be(fragment_size) || !r.read_be(n)) {
      return make_error(Errc::invalid_argument, "fragments response: truncated header");
    }
    if (n != params.total_fragments() || fragment_size != params.fragment_size() || resp.length > params.blob_size) {
      return make_error(Errc::invalid_argument, "fragments response: geometry differs from the network's");
    }
    if (r.remaining() < size_t{n} * 32 + 1) {
      return make_error(Errc::invalid_argument, "fragments response: truncated roots");
    }
    resp.roots.resize(n);
    for (Hash32& root : resp.roots) r.read(root);
    r.read_be(count);
    if (count > n || r.remaining() != size_t{count} * (1 + size_t{fragment_size})) {
      return make_error(Errc::invalid_argument, "fragments response: length does not match its fragment count");
    }
    std::array<bool, 256> seen{};
    resp.fragments.resize(count);
    for (FragmentView& f : resp.fragments) {
      r.read_be(f.index);
      r.view(fragment_size, f.bytes);
      if (f.index >= n || seen[f.index]) {
        return make_error(Errc::invalid_argument, "fragments response: fragment number out of range or repeated");
      }
      seen[f.index] = true;
    }
    return resp;
  } catch (...) {
    return make_error(Errc::internal, "fragments response: out of memory while decoding");
  }
}

shards::FragmentReply to_reply(const FragmentsResponse& response, uint32_t fragment_size) {
  shards::FragmentReply reply;
  reply.fragment_roots = response.roots;
  reply.data.reserve(response.fragments.size() * size_t{fragment_size});
  for (const FragmentView& f : response.fragments) {
    reply.fragments.push_back(FragmentIndex{f.index});
    append(reply.data, f.bytes);
  }
  return reply;
}

std::vector<FragmentView> views_of(const shards::FragmentReply& reply, uint32_t fragment_size) {
  std::vector<FragmentView> views;
  views.reserve(reply.fragments.size());
  for (size_t i = 0; i < reply.fragments.size(); ++i) {
    views.push_back({reply.fragments[i].value, ByteSpan(reply.data).subspan(i * fragment_size, fragment_size)});
  }
  return views;
}

Status verify_roots(const BlobId& id, std::span<const Hash32> roots) {
  if (erasure::commitment_from_roots(roots) != id) {
    return make_error(Errc::verification_failed, "fragment roots do not commit to blob " + id.hex());
  }
  return {};
}

bool is_response_message(ByteSpan data) noexcept {
  return data.size() >= 2 && data[0] == kNodeWireVersion && data[1] == kResponseMessageKind;
}

Bytes encode_response_message(const sampling::Response& response) {
  Bytes out{kNodeWireVersion, kResponseMessageKind};
  response.encode_to(out);
  return out;
}

Result<sampling::Response> decode_response_message(ByteSpan data, ShardId topic) noexcept {
  if (data.size() < 2) return make_error(Errc::invalid_argument, "response message: truncated");
  if (data[0] != kNodeWireVersion) {
    return make_error(Errc::unsupported, "response message: version " + std::to_string(data[0]));
  }
  if (data[1] != kResponseMessageKind) return make_error(Errc::invalid_argument, "response message: wrong kind");
  auto r = sampling::Response::decode(data.subspan(2));
  if (!r) return tl::unexpected(with_context(r.error(), "response message"));
  if (r->shard != topic) {
    return make_error(Errc::invalid_argument, "response message: answers shard " + std::to_string(r->shard.value) +
                                                  ", gossiped on shard " + std::to_string(topic.value));
  }
  try {
    if (!ed25519_verify(r->node, r->signing_hash(), r->signature)) {
      return make_error(Errc::verification_failed,
                        "response message of node " + r->node.hex().substr(0, 16) + ": bad signature");
    }
  } catch (...) {
    return make_error(Errc::internal, "response message: out of memory hashing it");
  }
  return r;
}

}  // namespace cairn::node::wire
