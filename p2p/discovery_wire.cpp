#include <string>

#include "cairn/p2p/discovery.hpp"
#include "decode_guard.hpp"

namespace cairn::p2p {

namespace {

constexpr size_t kNodeIdBytes = 32;
// Smallest record: id, address length, one address byte, shard count.
constexpr size_t kMinRecordBytes = kNodeIdBytes + 1 + 1 + 2;

tl::unexpected<Error> malformed_exchange(const std::string& what) {
  return make_error(Errc::invalid_argument, "peer exchange: " + what);
}

bool shards_ok(const std::vector<ShardId>& shards) {
  if (shards.size() > kMaxPxShards) return false;
  for (size_t i = 1; i < shards.size(); ++i) {
    if (!(shards[i - 1] < shards[i])) return false;
  }
  return true;
}

void put_shards(Bytes& out, const std::vector<ShardId>& shards) {
  append_be<uint16_t>(out, static_cast<uint16_t>(shards.size()));
  for (ShardId s : shards) append_be<uint32_t>(out, s.value);
}

void put_address(Bytes& out, const std::string& address) {
  out.push_back(static_cast<uint8_t>(address.size()));
  append(out, as_bytes(address));
}

bool read_shards(ByteReader& r, std::vector<ShardId>& out) noexcept {
  uint16_t n = 0;
  if (!r.read_be(n) || n > kMaxPxShards || static_cast<size_t>(n) * 4 > r.remaining()) return false;
  out.resize(n);
  for (auto& s : out) r.read_be(s.value);
  return shards_ok(out);
}

bool read_address(ByteReader& r, std::string& out) noexcept {
  uint8_t len = 0;
  ByteSpan bytes;
  if (!r.read_be(len) || !r.view(len, bytes)) return false;
  out.assign(bytes.begin(), bytes.end());
  return true;
}

Result<PeerExchange> decode_exchange(ByteSpan data) {
  ByteReader r(data);
  uint8_t version = 0, flags = 0;
  if (!r.read_be(version)) return malformed_exchange("empty");
  if (version != kPeerExchangeVersion) {
    return make_error(Errc::unsupported, "peer exchange: version " + std::to_string(version) +
                                             " (this build speaks " +
                                             std::to_string(kPeerExchangeVersion) + ")");
  }
  if (!r.read_be(flags)) return malformed_exchange("truncated flags");
  if ((flags & ~kPxFlagRequest) != 0) return malformed_exchange("unknown flags");
  PeerExchange px;
  px.request = (flags & kPxFlagRequest) != 0;
  if (!read_shards(r, px.shards)) return malformed_exchange("bad sender shards");
  if (!read_address(r, px.address)) return malformed_exchange("bad sender address");
  uint16_t n = 0;
  if (!r.read_be(n) || n > kMaxPxRecords ||
      static_cast<size_t>(n) * kMinRecordBytes > r.remaining()) {
    return malformed_exchange("bad record count");
  }
  px.records.resize(n);
  for (auto& rec : px.records) {
    if (!r.read(rec.id.bytes)) return malformed_exchange("truncated record id");
    if (!read_address(r, rec.address) || rec.address.empty())
      return malformed_exchange("bad record address");
    if (!read_shards(r, rec.shards)) return malformed_exchange("bad record shards");
  }
  if (!r.done()) return malformed_exchange("trailing bytes");
  return px;
}

}  // namespace

Result<Bytes> encode_peer_exchange(const PeerExchange& px) {
  if (px.records.size() > kMaxPxRecords) return malformed_exchange("too many records");
  if (px.address.size() > kMaxPxAddressBytes) return malformed_exchange("sender address too long");
  if (!shards_ok(px.shards)) return malformed_exchange("sender shards unsorted or too many");
  Bytes out;
  out.push_back(kPeerExchangeVersion);
  out.push_back(px.request ? kPxFlagRequest : 0);
  put_shards(out, px.shards);
  put_address(out, px.address);
  append_be<uint16_t>(out, static_cast<uint16_t>(px.records.size()));
  for (const auto& rec : px.records) {
    if (rec.address.empty() || rec.address.size() > kMaxPxAddressBytes) {
      return malformed_exchange("record address empty or too long");
    }
    if (!shards_ok(rec.shards)) return malformed_exchange("record shards unsorted or too many");
    append(out, rec.id.bytes);
    put_address(out, rec.address);
    put_shards(out, rec.shards);
  }
  return out;
}

Result<PeerExchange> decode_peer_exchange(ByteSpan data) noexcept {
  return detail::guarded_decode<PeerExchange>("peer exchange",
                                              [&] { return decode_exchange(data); });
}

}  // namespace cairn::p2p
