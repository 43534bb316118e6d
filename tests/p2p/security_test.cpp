// Attacks on a Host through a scripted peer: forged handshake signatures,
// unexpected node ids, tampered, replayed and reordered frames, oversize
// length prefixes, random bytes, protocol violations and stalls. Each must
// close the connection with a logged reason and free its resources.

#include <gtest/gtest.h>

#include "cairn/p2p/identity.hpp"
#include "raw_peer.hpp"

using namespace std::chrono_literals;

namespace cairn::p2p {
namespace {

using test::kTestType;
using test::LogCapture;
using test::RawPeer;
using test::SimNode;
using test::SimWorld;

struct Target {
  SimWorld w;
  SimNode* host = nullptr;
  std::vector<Bytes> received;
  int connected = 0;
  Subscription sub, con;
  Target() {
    host = &w.add("target");
    sub = std::move(*host->host->on_message(kTestType, [this](const NodeId&, ByteSpan p) {
      received.emplace_back(p.begin(), p.end());
    }));
    con = host->host->on_connected([this](const PeerInfo&) { ++connected; });
  }
  Host& h() { return *host->host; }
  // Everything the target held for the attacker is gone.
  void expect_freed() {
    w.clock.advance(8s);  // past the handshake timeout and the close linger
    EXPECT_EQ(h().stats().sessions_open, 0u);
    EXPECT_EQ(h().peer_count(), 0u);
  }
};

DisconnectReason refusal_reason(const Bytes& rec) {
  EXPECT_TRUE(is_refusal(rec));
  return static_cast<DisconnectReason>(rec.size() > 1 ? rec[1] : 0xff);
}

TEST(Security, ForgedHandshakeSignatureIsRefused) {
  Target t;
  SimNode& victim = t.w.add("victim");
  LogCapture logs;
  RawPeer evil(t.w, "evil");
  ASSERT_TRUE(evil.connect(t.host->address));
  // Claims to be `victim` but can only sign with its own key.
  SigningKey own = test::key_from_rng(t.w.rng);
  // The target answers the hello with its own auth before it sees ours, so
  // the script gets that far; our auth then fails and the target refuses.
  evil.handshake(victim.id(), own);
  auto refusal = evil.read_record();
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal_reason(*refusal), DisconnectReason::bad_signature);
  EXPECT_TRUE(evil.wait_closed());
  EXPECT_FALSE(t.h().is_connected(victim.id()));
  EXPECT_EQ(t.connected, 0);
  EXPECT_TRUE(logs.contains("bad_signature: handshake signature of " + short_id(victim.id()) +
                            " does not verify"))
      << logs.dump();
  t.expect_freed();
}

TEST(Security, HelloForSomeoneElseIsRefusedWithAReason) {
  Target t;
  LogCapture logs;
  RawPeer evil(t.w, "evil");
  ASSERT_TRUE(evil.connect(t.host->address));
  SigningKey own = test::key_from_rng(t.w.rng);
  SigningKey other = test::key_from_rng(t.w.rng);
  evil.write_record(evil.hello(own.public_key(), other.public_key()));
  auto first = evil.read_record();  // the target's hello, sent at accept
  ASSERT_TRUE(first);
  auto refusal = evil.read_record();
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal_reason(*refusal), DisconnectReason::unexpected_peer_id);
  EXPECT_TRUE(evil.wait_closed());
  EXPECT_TRUE(logs.contains("unexpected_peer_id: peer dialed " + short_id(other.public_key())))
      << logs.dump();
  t.expect_freed();
}

class Established : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(evil.connect(t.host->address));
    ASSERT_TRUE(evil.handshake(key.public_key(), key));
    t.w.clock.advance(10ms);
    ASSERT_TRUE(t.h().is_connected(key.public_key()));
    evil.write(evil.sealed(kTestType, as_bytes("first")));
    t.w.clock.advance(10ms);
    ASSERT_EQ(t.received.size(), 1u);
  }
  // The target closed on us for `reason` (goodbye frame, then end of stream).
  void expect_closed(DisconnectReason reason) {
    EXPECT_TRUE(evil.wait_closed());
    EXPECT_FALSE(t.h().is_connected(key.public_key()));
    EXPECT_TRUE(logs.contains(std::string(disconnect_reason_name(reason)))) << logs.dump();
    t.expect_freed();
  }

  Target t;
  SigningKey key = test::key_from_rng(t.w.rng);
  RawPeer evil{t.w, "evil"};
  LogCapture logs;
};

TEST_F(Established, TamperedCiphertextClosesTheSession) {
  Bytes rec = evil.sealed(kTestType, as_bytes("second frame, tampered"));
  rec[kLengthPrefixBytes + 5] ^= 0x20;
  evil.write(rec);
  expect_closed(DisconnectReason::decrypt_failed);
  EXPECT_EQ(t.received.size(), 1u) << "the tampered frame must not be delivered";
}

TEST_F(Established, TamperedMacClosesTheSession) {
  Bytes rec = evil.sealed(kTestType, as_bytes("second"));
  rec.back() ^= 0x01;
  evil.write(rec);
  expect_closed(DisconnectReason::decrypt_failed);
  EXPECT_EQ(t.received.size(), 1u);
}

TEST_F(Established, ReplayedFrameClosesTheSession) {
  const Bytes rec = evil.sealed(kTestType, as_bytes("pay me once"));
  evil.write(rec);
  t.w.clock.advance(10ms);
  ASSERT_EQ(t.received.size(), 2u);
  evil.write(rec);
  expect_closed(DisconnectReason::decrypt_failed);
  EXPECT_EQ(t.received.size(), 2u) << "the replay must not be delivered";
}

TEST_F(Established, ReorderedFramesCloseTheSession) {
  const Bytes one = evil.sealed(kTestType, as_bytes("one"));
  const Bytes two = evil.sealed(kTestType, as_bytes("two"));
  evil.write(two);
  evil.write(one);
  expect_closed(DisconnectReason::decrypt_failed);
  EXPECT_EQ(t.received.size(), 1u);
}

TEST_F(Established, OversizeLengthPrefixIsRefusedBeforeAllocating) {
  Bytes prefix(4);
  put_be<uint32_t>(prefix.data(), 0xfffffff0u);
  evil.write(prefix);
  expect_closed(DisconnectReason::frame_too_large);
  EXPECT_TRUE(logs.contains("4294967280 bytes exceeds the limit")) << logs.dump();
}

TEST_F(Established, MalformedControlFrameIsAProtocolViolation) {
  evil.write(evil.sealed(MessageType::ping, as_bytes("short")));
  ASSERT_TRUE(evil.wait_closed());
  // The penalty, decayed by the few milliseconds since.
  EXPECT_NEAR(t.h().score(key.public_key()), -t.h().settings().penalty_protocol_violation, 0.01);
  expect_closed(DisconnectReason::protocol_error);
}

TEST_F(Established, GoodbyeCarriesTheReasonToThePeer) {
  t.h().disconnect(key.public_key(), DisconnectReason::requested, "test");
  std::optional<Bytes> rec;
  for (int i = 0; i < 10 && !(rec = evil.read_record()); ++i) {
  }
  ASSERT_TRUE(rec);
  // Pings may precede it; the last record is the goodbye.
  std::optional<std::pair<MessageType, Bytes>> f = evil.open(*rec);
  while (f && f->first != MessageType::goodbye) {
    rec = evil.read_record();
    ASSERT_TRUE(rec);
    f = evil.open(*rec);
  }
  ASSERT_TRUE(f);
  EXPECT_EQ(f->second, Bytes{static_cast<uint8_t>(DisconnectReason::requested)});
  EXPECT_TRUE(evil.wait_closed());
}

TEST_F(Established, SilentPeerAfterTheHandshakeIsDroppedByIdleTimeout) {
  const Duration last = t.w.clock.elapsed() - 5ms;  // when "first" arrived
  ASSERT_TRUE(t.w.clock.run_until([&] { return !t.h().is_connected(key.public_key()); }, 60s));
  EXPECT_EQ(t.w.clock.elapsed(), last + t.h().settings().idle_timeout);
  expect_closed(DisconnectReason::idle_timeout);
}

TEST(Security, OversizeHandshakeRecordIsRefused) {
  Target t;
  LogCapture logs;
  RawPeer evil(t.w, "evil");
  ASSERT_TRUE(evil.connect(t.host->address));
  Bytes prefix(4);
  put_be<uint32_t>(prefix.data(), 100000);
  evil.write(prefix);
  EXPECT_TRUE(evil.wait_closed());
  EXPECT_TRUE(logs.contains("frame_too_large")) << logs.dump();
  t.expect_freed();
}

TEST(Security, RandomBytesNeverGetPastTheHandshake) {
  Target t;
  LogCapture logs;
  auto rng = cairn::test::seeded_rng(11);
  for (int i = 0; i < 25; ++i) {
    RawPeer evil(t.w, "evil" + std::to_string(i));
    ASSERT_TRUE(evil.connect(t.host->address));
    evil.write(cairn::test::random_bytes(rng, 1 + rng() % 8192));
    // Closed at once (bad length or bad hello) or, when the random length
    // prefix asks for more than was sent, by the handshake timeout.
    EXPECT_TRUE(evil.wait_closed(6s)) << i;
  }
  EXPECT_EQ(t.connected, 0);
  t.expect_freed();
  EXPECT_EQ(t.h().stats().handshakes_failed, 25u);
}

TEST(Security, RandomBytesAfterTheHandshakeCloseTheSession) {
  auto rng = cairn::test::seeded_rng(12);
  for (int i = 0; i < 10; ++i) {
    Target t;
    LogCapture logs;
    SigningKey key = test::key_from_rng(t.w.rng);
    RawPeer evil(t.w, "evil");
    ASSERT_TRUE(evil.connect(t.host->address));
    ASSERT_TRUE(evil.handshake(key.public_key(), key));
    Bytes junk = cairn::test::random_bytes(rng, 64 + rng() % 4096);
    put_be<uint32_t>(junk.data(), static_cast<uint32_t>(junk.size() - 4));  // a plausible length
    evil.write(junk);
    EXPECT_TRUE(evil.wait_closed()) << i;
    EXPECT_TRUE(logs.contains("decrypt_failed")) << logs.dump();
    EXPECT_TRUE(t.received.empty());
    t.expect_freed();
  }
}

TEST(Security, HalfAHandshakeIsTimedOut) {
  Target t;
  LogCapture logs;
  SigningKey key = test::key_from_rng(t.w.rng);
  // A complete hello but never an auth.
  RawPeer a(t.w, "evil-a");
  ASSERT_TRUE(a.connect(t.host->address));
  const Duration accepted = t.w.clock.elapsed() - 5ms;
  a.write_record(a.hello(key.public_key()));
  // Half of a hello record.
  RawPeer b(t.w, "evil-b");
  ASSERT_TRUE(b.connect(t.host->address));
  Bytes h = b.hello(key.public_key());
  Bytes partial(4);
  put_be<uint32_t>(partial.data(), static_cast<uint32_t>(h.size()));
  partial.insert(partial.end(), h.begin(), h.begin() + 40);
  b.write(partial);
  t.w.clock.advance(10ms);
  EXPECT_EQ(t.h().stats().handshakes_pending, 2u);
  ASSERT_TRUE(t.w.clock.run_until([&] { return t.h().stats().sessions_open == 0; }, 10s));
  EXPECT_EQ(t.w.clock.elapsed(), accepted + 10ms + t.h().settings().handshake_timeout);
  EXPECT_TRUE(a.wait_closed());
  EXPECT_TRUE(b.wait_closed());
  EXPECT_TRUE(logs.contains("handshake_timeout")) << logs.dump();
  t.expect_freed();
}

TEST(Security, HandshakeFloodIsCappedAtTheAcceptor) {
  Target t;
  std::vector<std::unique_ptr<RawPeer>> floods;
  const size_t cap = t.h().settings().max_pending_handshakes;
  for (size_t i = 0; i < cap + 8; ++i) {
    floods.push_back(std::make_unique<RawPeer>(t.w, "flood" + std::to_string(i)));
    ASSERT_TRUE(floods.back()->connect(t.host->address));
  }
  t.w.clock.advance(10ms);
  EXPECT_EQ(t.h().stats().handshakes_pending, cap);
  size_t refused = 0;
  for (auto& f : floods)
    if (f->ended()) ++refused;
  EXPECT_EQ(refused, 8u);
  t.expect_freed();
}

// A peer that pings without reading what we send back: our pongs (control
// frames, queued past the data bound) would pile up without end; once the
// queue's frame bound is reached the session is cut and its memory freed.
TEST(Security, PingFloodWhileNotReadingIsCutAtTheQueueBound) {
  Target t;
  LogCapture logs;
  SigningKey key = test::key_from_rng(t.w.rng);
  RawPeer evil(t.w, "evil");
  ASSERT_TRUE(evil.connect(t.host->address));
  ASSERT_TRUE(evil.handshake(key.public_key(), key));
  t.w.clock.advance(10ms);
  ASSERT_TRUE(t.h().is_connected(key.public_key()));
  // From now on target -> evil barely moves: what the target writes stays queued.
  LinkModel slow;
  slow.latency = 1ms;
  slow.bandwidth_bytes_per_second = 100;
  slow.window_bytes = 4096;
  t.w.net.set_link("target", "evil", slow);
  const size_t bound = t.h().settings().max_queue_frames;
  Bytes ping(8);
  for (size_t i = 0; i < bound + 100; ++i) {
    put_be<uint64_t>(ping.data(), i);
    evil.write(evil.sealed(MessageType::ping, ping));
  }
  ASSERT_TRUE(t.w.clock.run_until([&] { return !t.h().is_connected(key.public_key()); }, 10s))
      << "a ping flood of " << bound + 100 << " frames left the session open";
  EXPECT_TRUE(
      logs.contains(std::string(disconnect_reason_name(DisconnectReason::send_queue_overflow))))
      << logs.dump();
  t.expect_freed();
}

}  // namespace
}  // namespace cairn::p2p
