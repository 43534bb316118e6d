#include "cairn/p2p/gossip_wire.hpp"

#include <sodium.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "decode_guard.hpp"

namespace cairn::p2p {

namespace {

constexpr std::string_view kMessageIdDomain = "cairn/gossip/msg/v1";

// Fixed sizes of one entry of each section (the payload bytes of a message
// and the ids of an IHAVE come on top).
constexpr size_t kSubscriptionBytes = 1 + 4;
constexpr size_t kMessageHeaderBytes = 4 + 4;
constexpr size_t kIhaveHeaderBytes = 4 + 2;
constexpr size_t kMessageIdBytes = 32;
constexpr size_t kGraftBytes = 4;
constexpr size_t kPruneBytes = 4 + 4;

Status check_limit(size_t count, size_t limit, const char* what) {
  if (count > limit) {
    return make_error(Errc::invalid_argument, std::string("gossip rpc: ") + what + " count " +
                                                  std::to_string(count) + " exceeds " +
                                                  std::to_string(limit));
  }
  return {};
}

tl::unexpected<Error> malformed(const char* what) {
  return make_error(Errc::invalid_argument, std::string("gossip rpc: ") + what);
}

}  // namespace

MessageId gossip_message_id(TopicId topic, ByteSpan data) noexcept {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  const ByteSpan domain = as_bytes(kMessageIdDomain);
  crypto_generichash_update(&st, domain.data(), domain.size());
  uint8_t t[4];
  put_be<uint32_t>(t, topic.value);
  crypto_generichash_update(&st, t, sizeof t);
  crypto_generichash_update(&st, data.data(), data.size());
  MessageId id;
  crypto_generichash_final(&st, id.bytes.data(), id.bytes.size());
  return id;
}

size_t encoded_size(const GossipRpc& rpc) noexcept {
  size_t n = 1 + 6 * 2;  // version + six section counts
  n += rpc.subscriptions.size() * kSubscriptionBytes;
  for (const auto& m : rpc.messages) n += kMessageHeaderBytes + (m.data ? m.data->size() : 0);
  for (const auto& h : rpc.ihave) n += kIhaveHeaderBytes + h.ids.size() * kMessageIdBytes;
  n += rpc.iwant.size() * kMessageIdBytes;
  n += rpc.graft.size() * kGraftBytes;
  n += rpc.prune.size() * kPruneBytes;
  return n;
}

Result<Bytes> encode_gossip_rpc(const GossipRpc& rpc) {
  CAIRN_TRY_STATUS(check_limit(rpc.subscriptions.size(), kMaxGossipSubscriptions, "subscription"));
  CAIRN_TRY_STATUS(check_limit(rpc.messages.size(), kMaxGossipMessages, "message"));
  CAIRN_TRY_STATUS(check_limit(rpc.ihave.size(), kMaxGossipIhaveTopics, "ihave"));
  CAIRN_TRY_STATUS(check_limit(rpc.iwant.size(), kMaxGossipIdsPerControl, "iwant id"));
  CAIRN_TRY_STATUS(check_limit(rpc.graft.size(), kMaxGossipGraftPrune, "graft"));
  CAIRN_TRY_STATUS(check_limit(rpc.prune.size(), kMaxGossipGraftPrune, "prune"));
  for (const auto& m : rpc.messages) {
    if (!m.data) return malformed("message without payload");
    CAIRN_TRY_STATUS(check_limit(m.data->size(), kMaxGossipDataBytes, "payload byte"));
  }
  for (const auto& h : rpc.ihave) {
    CAIRN_TRY_STATUS(check_limit(h.ids.size(), kMaxGossipIdsPerControl, "ihave id"));
  }

  Bytes out;
  out.reserve(encoded_size(rpc));
  out.push_back(kGossipWireVersion);
  append_be<uint16_t>(out, static_cast<uint16_t>(rpc.subscriptions.size()));
  for (const auto& s : rpc.subscriptions) {
    out.push_back(s.subscribe ? 1 : 0);
    append_be<uint32_t>(out, s.topic.value);
  }
  append_be<uint16_t>(out, static_cast<uint16_t>(rpc.messages.size()));
  for (const auto& m : rpc.messages) {
    append_be<uint32_t>(out, m.topic.value);
    append_be<uint32_t>(out, static_cast<uint32_t>(m.data->size()));
    append(out, *m.data);
  }
  append_be<uint16_t>(out, static_cast<uint16_t>(rpc.ihave.size()));
  for (const auto& h : rpc.ihave) {
    append_be<uint32_t>(out, h.topic.value);
    append_be<uint16_t>(out, static_cast<uint16_t>(h.ids.size()));
    for (const auto& id : h.ids) append(out, id.bytes);
  }
  append_be<uint16_t>(out, static_cast<uint16_t>(rpc.iwant.size()));
  for (const auto& id : rpc.iwant) append(out, id.bytes);
  append_be<uint16_t>(out, static_cast<uint16_t>(rpc.graft.size()));
  for (const auto& t : rpc.graft) append_be<uint32_t>(out, t.value);
  append_be<uint16_t>(out, static_cast<uint16_t>(rpc.prune.size()));
  for (const auto& p : rpc.prune) {
    append_be<uint32_t>(out, p.topic.value);
    append_be<uint32_t>(out, p.backoff_seconds);
  }
  return out;
}

std::vector<GossipRpc> split_gossip_rpc(GossipRpc rpc, size_t max_bytes) {
  std::vector<GossipRpc> out;
  const size_t empty_size = encoded_size(GossipRpc{});
  GossipRpc cur;
  size_t cur_size = empty_size;
  // Starts a new RPC when `item_bytes` would overflow the budget or the
  // section already holds `count_limit` entries.
  auto make_room = [&](size_t item_bytes, size_t section_count, size_t count_limit) {
    const bool over_bytes = cur_size + item_bytes > max_bytes && !cur.empty();
    if (over_bytes || section_count >= count_limit) {
      out.push_back(std::move(cur));
      cur = GossipRpc{};
      cur_size = empty_size;
    }
    cur_size += item_bytes;
  };
  for (auto& s : rpc.subscriptions) {
    make_room(kSubscriptionBytes, cur.subscriptions.size(), kMaxGossipSubscriptions);
    cur.subscriptions.push_back(s);
  }
  for (auto& m : rpc.messages) {
    make_room(kMessageHeaderBytes + (m.data ? m.data->size() : 0), cur.messages.size(),
              kMaxGossipMessages);
    cur.messages.push_back(std::move(m));
  }
  for (auto& h : rpc.ihave) {
    // An entry with more ids than fit in one entry or one budget is cut.
    size_t pos = 0;
    while (pos < h.ids.size()) {
      const size_t room_ids = max_bytes > cur_size + kIhaveHeaderBytes
                                  ? (max_bytes - cur_size - kIhaveHeaderBytes) / kMessageIdBytes
                                  : 0;
      size_t take =
          std::min({h.ids.size() - pos, kMaxGossipIdsPerControl, std::max<size_t>(room_ids, 1)});
      make_room(kIhaveHeaderBytes + take * kMessageIdBytes, cur.ihave.size(),
                kMaxGossipIhaveTopics);
      GossipIhave part{h.topic, {}};
      part.ids.assign(h.ids.begin() + static_cast<std::ptrdiff_t>(pos),
                      h.ids.begin() + static_cast<std::ptrdiff_t>(pos + take));
      cur.ihave.push_back(std::move(part));
      pos += take;
    }
  }
  for (auto& id : rpc.iwant) {
    make_room(kMessageIdBytes, cur.iwant.size(), kMaxGossipIdsPerControl);
    cur.iwant.push_back(id);
  }
  for (auto& t : rpc.graft) {
    make_room(kGraftBytes, cur.graft.size(), kMaxGossipGraftPrune);
    cur.graft.push_back(t);
  }
  for (auto& p : rpc.prune) {
    make_room(kPruneBytes, cur.prune.size(), kMaxGossipGraftPrune);
    cur.prune.push_back(p);
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

namespace {

// Reads a section count and checks it against the wire limit and against the
// bytes left (each entry takes at least `min_entry` bytes), so no vector is
// sized beyond what the input could describe.
bool read_count(ByteReader& r, size_t limit, size_t min_entry, size_t& count) noexcept {
  uint16_t n = 0;
  if (!r.read_be(n)) return false;
  if (n > limit) return false;
  if (static_cast<size_t>(n) * min_entry > r.remaining()) return false;
  count = n;
  return true;
}

bool read_id(ByteReader& r, MessageId& id) noexcept { return r.read(id.bytes); }

Result<GossipRpc> decode_rpc(ByteSpan data) {
  ByteReader r(data);
  uint8_t version = 0;
  if (!r.read_be(version)) return malformed("empty");
  if (version != kGossipWireVersion) {
    return make_error(Errc::unsupported, "gossip rpc: version " + std::to_string(version) +
                                             " (this build speaks " +
                                             std::to_string(kGossipWireVersion) + ")");
  }
  GossipRpc rpc;
  size_t n = 0;

  if (!read_count(r, kMaxGossipSubscriptions, kSubscriptionBytes, n)) {
    return malformed("bad subscription count");
  }
  rpc.subscriptions.resize(n);
  for (auto& s : rpc.subscriptions) {
    uint8_t flag = 0;
    if (!r.read_be(flag) || !r.read_be(s.topic.value)) return malformed("truncated subscription");
    if (flag > 1) return malformed("bad subscription flag");
    s.subscribe = flag == 1;
  }

  if (!read_count(r, kMaxGossipMessages, kMessageHeaderBytes, n)) {
    return malformed("bad message count");
  }
  rpc.messages.resize(n);
  for (auto& m : rpc.messages) {
    uint32_t len = 0;
    ByteSpan body;
    if (!r.read_be(m.topic.value) || !r.read_be(len)) return malformed("truncated message header");
    if (len > kMaxGossipDataBytes) return malformed("message payload over the wire limit");
    if (!r.view(len, body)) return malformed("truncated message payload");
    m.data = std::make_shared<const Bytes>(body.begin(), body.end());
  }

  if (!read_count(r, kMaxGossipIhaveTopics, kIhaveHeaderBytes, n)) {
    return malformed("bad ihave count");
  }
  rpc.ihave.resize(n);
  for (auto& h : rpc.ihave) {
    size_t ids = 0;
    if (!r.read_be(h.topic.value)) return malformed("truncated ihave");
    if (!read_count(r, kMaxGossipIdsPerControl, kMessageIdBytes, ids))
      return malformed("bad ihave ids");
    h.ids.resize(ids);
    for (auto& id : h.ids) read_id(r, id);  // length checked by read_count
  }

  if (!read_count(r, kMaxGossipIdsPerControl, kMessageIdBytes, n))
    return malformed("bad iwant count");
  rpc.iwant.resize(n);
  for (auto& id : rpc.iwant) read_id(r, id);

  if (!read_count(r, kMaxGossipGraftPrune, kGraftBytes, n)) return malformed("bad graft count");
  rpc.graft.resize(n);
  for (auto& t : rpc.graft) r.read_be(t.value);

  if (!read_count(r, kMaxGossipGraftPrune, kPruneBytes, n)) return malformed("bad prune count");
  rpc.prune.resize(n);
  for (auto& p : rpc.prune) {
    r.read_be(p.topic.value);
    r.read_be(p.backoff_seconds);
  }

  if (!r.done()) return malformed("trailing bytes");
  return rpc;
}

}  // namespace

Result<GossipRpc> decode_gossip_rpc(ByteSpan data) noexcept {
  return detail::guarded_decode<GossipRpc>("gossip rpc", [&] { return decode_rpc(data); });
}

}  // namespace cairn::p2p
