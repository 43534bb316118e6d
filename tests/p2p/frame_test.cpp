// Record and frame codec, handshake messages and the in-place secretstream.

#include <gtest/gtest.h>

#include <cstring>

#include "frame.hpp"
#include "handshake.hpp"
#include "p2p_test_util.hpp"

namespace cairn::p2p {
namespace {

Bytes plain_frame(MessageType t, uint8_t flags, ByteSpan body) {
  uint8_t header[kFrameHeaderBytes];
  put_frame_header(header, t, flags);
  Bytes f(header, header + kFrameHeaderBytes);
  f.resize(kFrameHeaderBytes + body.size());
  if (!body.empty()) std::memcpy(f.data() + kFrameHeaderBytes, body.data(), body.size());
  return f;
}

TEST(RecordLength, RefusesOversizeBeforeAllocating) {
  uint8_t p[4];
  put_be<uint32_t>(p, 1000);
  EXPECT_EQ(*decode_record_length(ByteSpan(p, 4), 1000), 1000u);
  auto r = decode_record_length(ByteSpan(p, 4), 999);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  put_be<uint32_t>(p, 0xffffffffu);
  EXPECT_EQ(decode_record_length(ByteSpan(p, 4), max_session_record(4u << 20)).error().code,
            Errc::invalid_argument);
  put_be<uint32_t>(p, 0);
  EXPECT_EQ(decode_record_length(ByteSpan(p, 4), 10).error().code, Errc::corruption);
  EXPECT_EQ(decode_record_length(ByteSpan(p, 3), 10).error().code, Errc::corruption);
}

TEST(Frame, DecodesRawFrames) {
  const Bytes body = {1, 2, 3, 4, 5};
  const Bytes f = plain_frame(MessageType::fragments_request, 0, body);
  Bytes scratch;
  auto v = decode_frame(f, 100, scratch, nullptr);
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_EQ(v->type, MessageType::fragments_request);
  EXPECT_FALSE(v->compressed);
  EXPECT_EQ(Bytes(v->payload.begin(), v->payload.end()), body);
  EXPECT_EQ(decode_frame(f, 4, scratch, nullptr).error().code, Errc::invalid_argument);
  EXPECT_EQ(decode_frame(ByteSpan(f).first(2), 100, scratch, nullptr).error().code,
            Errc::corruption);
  const Bytes bad_flags = plain_frame(MessageType::response, 0x02, body);
  EXPECT_EQ(decode_frame(bad_flags, 100, scratch, nullptr).error().code, Errc::corruption);
}

TEST(Frame, CompressesOnlyWhenItShrinksAndBoundsTheInflatedSize) {
  ZstdContexts z;
  Bytes body;
  const Bytes text(20000, 'a');
  ASSERT_TRUE(compress_body(text, 1, z, body));
  EXPECT_LT(body.size(), text.size());
  auto rng = cairn::test::seeded_rng(1);
  const Bytes noise = cairn::test::random_bytes(rng, 20000);
  Bytes unused;
  EXPECT_FALSE(compress_body(noise, 1, z, unused)) << "random data must be sent raw";

  const Bytes f = plain_frame(MessageType::response, kFlagZstd, body);
  Bytes scratch;
  auto v = decode_frame(f, 20000, scratch, &z);
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_TRUE(v->compressed);
  EXPECT_EQ(Bytes(v->payload.begin(), v->payload.end()), text);
  // The declared raw_len is checked against the limit before inflating.
  Bytes fresh;
  auto big = decode_frame(f, 19999, fresh, &z);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, Errc::invalid_argument);
  EXPECT_EQ(fresh.capacity(), 0u) << "nothing may be allocated for an oversize frame";
  // A raw_len that lies about the content is refused.
  Bytes lie = body;
  put_be<uint32_t>(lie.data(), 19000);
  EXPECT_EQ(decode_frame(plain_frame(MessageType::response, kFlagZstd, lie), 20000, scratch, &z)
                .error()
                .code,
            Errc::corruption);
  // Garbage instead of a zstd frame.
  Bytes garbage(64, 0x5a);
  put_be<uint32_t>(garbage.data(), 1000);
  EXPECT_EQ(decode_frame(plain_frame(MessageType::response, kFlagZstd, garbage), 20000, scratch, &z)
                .error()
                .code,
            Errc::corruption);
}

TEST(Handshake, HelloRoundTripsAndRejectsMalformedInput) {
  auto rng = cairn::test::seeded_rng(2);
  Hello h;
  h.role = Role::responder;
  h.min_version = 1;
  h.max_version = 3;
  h.node_id = test::key_from_rng(rng).public_key();
  h.ephemeral[0] = 7;
  h.features = kFeatureZstd;
  h.address = "10.0.0.1:4100";
  Bytes b = encode_hello(h);
  EXPECT_EQ(b.size(), kHelloFixedBytes + h.address.size());
  auto d = decode_hello(b);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->role, Role::responder);
  EXPECT_EQ(d->max_version, 3);
  EXPECT_EQ(d->node_id, h.node_id);
  EXPECT_EQ(d->address, h.address);
  // Extension bytes of a later version are tolerated.
  Bytes ext = b;
  ext.push_back(0xee);
  EXPECT_TRUE(decode_hello(ext));
  // Truncations at every length fail cleanly.
  for (size_t n = 0; n < b.size(); ++n) EXPECT_FALSE(decode_hello(ByteSpan(b).first(n))) << n;
  Bytes bad = b;
  bad[0] = 'X';
  EXPECT_FALSE(decode_hello(bad));
  bad = b;
  bad[kHelloFixedBytes] = 0x07;  // control character in the address
  EXPECT_FALSE(decode_hello(bad));
  bad = b;
  put_be<uint16_t>(bad.data() + 9, 4);  // min above max
  EXPECT_FALSE(decode_hello(bad));
}

TEST(Handshake, VersionNegotiationPicksTheHighestCommonVersion) {
  EXPECT_EQ(negotiate_version(1, 1, 1, 1), 1);
  EXPECT_EQ(negotiate_version(1, 3, 2, 5), 3);
  EXPECT_EQ(negotiate_version(2, 5, 1, 3), 3);
  EXPECT_FALSE(negotiate_version(1, 1, 2, 2));
}

TEST(SecretStream, InPlaceSealAndOpenMatchLibsodiumAndCatchTamperingAndReplay) {
  ensure_sodium();
  EphemeralKey a, b;
  auto ka = derive_session_keys(Role::initiator, a, b.public_key());
  auto kb = derive_session_keys(Role::responder, b, a.public_key());
  ASSERT_TRUE(ka && kb);
  EXPECT_EQ(ka->tx, kb->rx);
  EXPECT_EQ(ka->rx, kb->tx);

  SealState seal;
  std::array<uint8_t, crypto_secretstream_xchacha20poly1305_HEADERBYTES> header{};
  seal.init(ka->tx, header);
  OpenState open;
  ASSERT_TRUE(open.init(kb->rx, header));

  // Reference: libsodium out-of-place with the same key and header.
  crypto_secretstream_xchacha20poly1305_state ref;
  ASSERT_EQ(crypto_secretstream_xchacha20poly1305_init_pull(&ref, header.data(), kb->rx.data()), 0);

  auto rng = cairn::test::seeded_rng(3);
  std::vector<Bytes> records;
  for (size_t len : {0u, 1u, 63u, 64u, 65u, 4096u, 100000u}) {
    const Bytes msg = cairn::test::random_bytes(rng, len);
    Bytes rec(len + kSealOverhead);
    if (len > 0) std::memcpy(rec.data() + 1, msg.data(), len);
    seal.seal_in_place(rec.data(), len);
    records.push_back(rec);

    Bytes out(len);
    unsigned long long mlen = 0;
    unsigned char tag = 0;
    ASSERT_EQ(crypto_secretstream_xchacha20poly1305_pull(&ref, out.data(), &mlen, &tag, rec.data(),
                                                         rec.size(), nullptr, 0),
              0);
    EXPECT_EQ(out, msg);

    Bytes copy = rec;
    auto n = open.open_in_place(copy.data(), copy.size());
    ASSERT_TRUE(n) << n.error().to_string();
    EXPECT_EQ(Bytes(copy.begin() + 1, copy.begin() + 1 + static_cast<long>(*n)), msg);
  }
  // A replayed record no longer authenticates: the nonce moved on.
  Bytes replay = records[3];
  auto r = open.open_in_place(replay.data(), replay.size());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::verification_failed);

  // A flipped bit anywhere is caught.
  SealState s2;
  seal.init(ka->tx, header);
  OpenState o2;
  ASSERT_TRUE(o2.init(kb->rx, header));
  Bytes rec(10 + kSealOverhead, 0);
  seal.seal_in_place(rec.data(), 10);
  for (size_t i = 0; i < rec.size(); ++i) {
    Bytes t = rec;
    t[i] ^= 0x01;
    EXPECT_FALSE(o2.open_in_place(t.data(), t.size())) << "bit flip at " << i;
  }
  EXPECT_TRUE(o2.open_in_place(rec.data(), rec.size()));
}

}  // namespace
}  // namespace cairn::p2p
