// Host over the simulated network with a manual clock: handshake, messages,
// keepalive, idle and handshake timeouts, reconnect backoff, caps, queues,
// scores and bans, shutdown. Times are exact virtual times (link latency 5 ms).

#include <gtest/gtest.h>

#include "cairn/p2p/identity.hpp"
#include "p2p_test_util.hpp"

using namespace std::chrono_literals;

namespace cairn::p2p {
namespace {

using test::kTestType;
using test::LogCapture;
using test::ms;
using test::SimNode;
using test::SimWorld;

constexpr auto kOtherType = static_cast<MessageType>(0xf002);

struct Inbox {
  std::vector<std::pair<NodeId, Bytes>> messages;
  Subscription sub;
  void attach(Host& h, MessageType t = kTestType) {
    sub = std::move(*h.on_message(t, [this](const NodeId& from, ByteSpan p) {
      messages.emplace_back(from, Bytes(p.begin(), p.end()));
    }));
  }
};

struct Events {
  std::vector<std::pair<Duration, PeerInfo>> connected;
  std::vector<std::pair<Duration, DisconnectInfo>> disconnected;
  Subscription a, b;
  void attach(Host& h, ManualClock& clock) {
    a = h.on_connected(
        [this, &clock](const PeerInfo& p) { connected.emplace_back(clock.elapsed(), p); });
    b = h.on_disconnected(
        [this, &clock](const DisconnectInfo& d) { disconnected.emplace_back(clock.elapsed(), d); });
  }
};

// Two nodes a and b with their connect/disconnect events recorded.
class HostPair : public ::testing::Test {
 protected:
  void SetUp() override {
    ea.attach(*a.host, w.clock);
    eb.attach(*b.host, w.clock);
  }
  SimWorld w;
  SimNode& a = w.add("a");
  SimNode& b = w.add("b");
  Events ea, eb;
};

TEST_F(HostPair, HandshakeAtExactTimesAndMessagesBothWays) {
  Inbox ia, ib;
  ia.attach(*a.host);
  ib.attach(*b.host);

  Result<NodeId> dialed = make_error(Errc::internal, "not called");
  a.host->connect(b.address, {.expected_id = b.id()}, [&](Result<NodeId> r) { dialed = r; });
  w.clock.advance(100ms);
  // SYN at 5 ms, connected at 10 ms; b's hello (sent at accept, 5 ms) and a's
  // auth cross; b verifies a's auth at 15 ms, a verifies b's at 20 ms.
  ASSERT_EQ(eb.connected.size(), 1u);
  ASSERT_EQ(ea.connected.size(), 1u);
  EXPECT_EQ(eb.connected[0].first, 15ms);
  EXPECT_EQ(ea.connected[0].first, 20ms);
  ASSERT_TRUE(dialed) << dialed.error().to_string();
  EXPECT_EQ(*dialed, b.id());

  const PeerInfo& pa = ea.connected[0].second;
  EXPECT_EQ(pa.id, b.id());
  EXPECT_EQ(pa.direction, Direction::outbound);
  EXPECT_EQ(pa.advertised_address, "b:1");
  EXPECT_EQ(pa.protocol_version, 1);
  EXPECT_EQ(eb.connected[0].second.direction, Direction::inbound);
  EXPECT_EQ(eb.connected[0].second.advertised_address, "a:1");

  ASSERT_TRUE(a.host->send(b.id(), kTestType, as_bytes("hello b")));
  ASSERT_TRUE(b.host->send(a.id(), kTestType, as_bytes("hello a")));
  w.clock.advance(5ms);
  ASSERT_EQ(ib.messages.size(), 1u);
  ASSERT_EQ(ia.messages.size(), 1u);
  EXPECT_EQ(ib.messages[0].first, a.id());
  EXPECT_EQ(ib.messages[0].second, Bytes(as_bytes("hello b").begin(), as_bytes("hello b").end()));
  EXPECT_EQ(ia.messages[0].first, b.id());

  // Many frames, in order, including empty and maximum-size payloads.
  auto rng = cairn::test::seeded_rng(7);
  std::vector<Bytes> sent;
  for (size_t i = 0; i < 200; ++i) {
    sent.push_back(cairn::test::random_bytes(rng, i % 7 == 0 ? 0 : (i * 997) % 70000));
  }
  sent.push_back(cairn::test::random_bytes(rng, a.host->settings().max_frame_payload));
  for (const auto& m : sent) {
    // The queue holds 8 MiB; let it drain when it is full.
    Status st;
    while (!(st = a.host->send(b.id(), kTestType, m))) {
      ASSERT_EQ(st.error().code, Errc::busy);
      w.clock.advance(10ms);
    }
  }
  w.clock.advance(1s);
  ASSERT_EQ(ib.messages.size(), 1 + sent.size());
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(ib.messages[i + 1].second, sent[i]) << i;

  // Limits of send().
  EXPECT_EQ(a.host->send(b.id(), MessageType::ping, {}).error().code, Errc::invalid_argument);
  Bytes too_big(a.host->settings().max_frame_payload + 1);
  EXPECT_EQ(a.host->send(b.id(), kTestType, too_big).error().code, Errc::invalid_argument);
  SigningKey stranger = test::key_from_rng(w.rng);
  EXPECT_EQ(a.host->send(stranger.public_key(), kTestType, {}).error().code, Errc::not_found);
  // Unhandled types are counted and ignored; the session stays up.
  ASSERT_TRUE(a.host->send(b.id(), kOtherType, as_bytes("x")));
  w.clock.advance(10ms);
  EXPECT_EQ(b.host->stats().unknown_messages, 1u);
  EXPECT_TRUE(a.host->is_connected(b.id()));
  EXPECT_TRUE(ea.disconnected.empty());
}

TEST_F(HostPair, CompressesLargeCompressibleFrames) {
  Inbox ib;
  ib.attach(*b.host);
  ASSERT_TRUE(w.link(a, b));
  const auto before = a.host->stats().bytes_sent;
  Bytes text;
  for (int i = 0; i < 20000; ++i) text.push_back(static_cast<uint8_t>("cairn storage "[i % 14]));
  ASSERT_TRUE(a.host->send(b.id(), kTestType, text));
  ASSERT_TRUE(a.host->send(b.id(), kTestType, text, {.compress = false}));
  w.clock.advance(100ms);
  ASSERT_EQ(ib.messages.size(), 2u);
  EXPECT_EQ(ib.messages[0].second, text);
  EXPECT_EQ(ib.messages[1].second, text);
  const auto wire = a.host->stats().bytes_sent - before;
  // The compressed copy is small: all but ~1 KiB of the wire bytes are the raw copy.
  EXPECT_LT(wire, text.size() + 1500);
  EXPECT_GT(wire, text.size());
}

// Payloads that do not shrink make their message type skip zstd for a
// growing number of frames (at most 64), so incompressible streams cost
// little CPU; other types are unaffected, and a type that turns
// compressible is compressed again within the window.
TEST_F(HostPair, ZstdBacksOffPerMessageTypeOnIncompressibleFrames) {
  Inbox ib, io;
  ib.attach(*b.host);
  io.attach(*b.host, kOtherType);
  ASSERT_TRUE(w.link(a, b));
  auto rng = cairn::test::seeded_rng(8);
  const Bytes noise = cairn::test::random_bytes(rng, 8192);
  Bytes text;
  for (int i = 0; i < 8192; ++i) text.push_back(static_cast<uint8_t>("cairn storage "[i % 14]));
  auto wire = [&](MessageType t, const Bytes& p) {
    const auto before = a.host->stats().bytes_sent;
    EXPECT_TRUE(a.host->send(b.id(), t, p));
    w.clock.advance(10ms);
    return a.host->stats().bytes_sent - before;
  };
  for (int i = 0; i < 40; ++i) EXPECT_GT(wire(kTestType, noise), noise.size());
  EXPECT_LT(wire(kOtherType, text), 1000u) << "another type still compresses";
  int raw = 0;
  while (raw <= 64 && wire(kTestType, text) > text.size()) ++raw;
  EXPECT_GT(raw, 0) << "the type was backing off";
  EXPECT_LE(raw, 64);
  EXPECT_LT(wire(kTestType, text), 1000u);
  ASSERT_EQ(ib.messages.size(), 40u + static_cast<size_t>(raw) + 2u);
  EXPECT_EQ(ib.messages.back().second, text);
  EXPECT_EQ(ib.messages.front().second, noise);
}

TEST_F(HostPair, KeepalivePingsAtExactIntervalsAndMeasuresRtt) {
  ASSERT_TRUE(w.link(a, b));
  EXPECT_EQ(w.clock.elapsed(), 20ms);
  // a last sent at 10 ms (its auth): first ping at 10.010 s; pong back 10 ms later.
  w.clock.advance(10s - 20ms + 10ms - 1ns + 10ms);
  EXPECT_EQ(a.host->peer(b.id())->rtt, Duration::zero());
  w.clock.advance(1ns);
  EXPECT_EQ(a.host->peer(b.id())->rtt, 10ms);
  const auto frames = b.host->stats().frames_received;
  // Quiet for five minutes: pings keep both sides alive, one per interval.
  w.clock.advance(300s);
  EXPECT_TRUE(a.host->is_connected(b.id()));
  EXPECT_TRUE(b.host->is_connected(a.id()));
  const auto per_side = b.host->stats().frames_received - frames;
  EXPECT_GE(per_side, 29u * 2);  // a's pings and pongs to b's pings
  EXPECT_LE(per_side, 31u * 2);
}

TEST_F(HostPair, SilentPeerIsDroppedAfterExactlyTheIdleTimeout) {
  ASSERT_TRUE(w.link(a, b));
  // Cut the link right away: nothing arrives any more. b last heard a at 15 ms
  // (a's auth), a last heard b at 20 ms (b's auth): idle_timeout is 30 s.
  w.net.partition({{"a"}, {"b"}});
  w.clock.advance(60s);
  ASSERT_EQ(eb.disconnected.size(), 1u);
  ASSERT_EQ(ea.disconnected.size(), 1u);
  EXPECT_EQ(eb.disconnected[0].first, 30s + 15ms);
  EXPECT_EQ(ea.disconnected[0].first, 30s + 20ms);
  EXPECT_EQ(eb.disconnected[0].second.reason, DisconnectReason::idle_timeout);
  EXPECT_FALSE(eb.disconnected[0].second.by_remote);
  EXPECT_EQ(a.host->stats().sessions_open, 0u);
  EXPECT_EQ(b.host->stats().sessions_open, 0u);
}

TEST(HostSim, PausedReadingHoldsFramesAndTheSenderQueueReportsBusy) {
  SimWorld w;
  P2pSettings s = test::sim_settings();
  s.max_queue_bytes = 256 * 1024;
  s.compression = false;
  LinkModel link;
  link.window_bytes = 128 * 1024;
  w.net.set_default_link(link);
  SimNode& a = w.add("a", s);
  SimNode& b = w.add("b", s);
  Inbox ib;
  ib.attach(*b.host);
  ASSERT_TRUE(w.link(a, b));
  b.host->pause_reading(a.id());
  const Bytes frame(16 * 1024, 0x42);
  size_t accepted = 0;
  Status last;
  for (int i = 0; i < 1000; ++i) {
    last = a.host->send(b.id(), kTestType, frame);
    if (!last) break;
    ++accepted;
    w.clock.advance(1ms);
  }
  ASSERT_FALSE(last);
  EXPECT_EQ(last.error().code, Errc::busy);
  EXPECT_EQ(a.host->stats().send_busy, 1u);
  // Read buffer (64 KiB), the stream window (128 KiB) and the queue (256 KiB)
  // hold what was accepted; nothing more.
  EXPECT_GT(accepted, 16u);
  EXPECT_LT(accepted, 40u);
  EXPECT_TRUE(ib.messages.empty());
  // Paused reading also suspends the idle timeout.
  w.clock.advance(45s);
  EXPECT_TRUE(b.host->is_connected(a.id()));
  int ready = 0;
  auto sub = a.host->on_send_ready([&](const NodeId& peer) {
    EXPECT_EQ(peer, b.id());
    ++ready;
    EXPECT_LE(a.host->peer(b.id())->queued_bytes, s.max_queue_bytes / 2);
  });
  b.host->resume_reading(a.id());
  w.clock.advance(1s);
  EXPECT_EQ(ib.messages.size(), accepted);
  EXPECT_EQ(ready, 1) << "one notice per refusal, once the queue is half empty";
  EXPECT_TRUE(a.host->send(b.id(), kTestType, frame));
}

TEST(HostSim, StallingPeerIsTimedOutAndItsResourcesFreed) {
  SimWorld w;
  SimNode& a = w.add("a");
  LogCapture logs;
  auto evil = w.net.make_transport("evil");
  std::unique_ptr<Stream> raw;
  evil->connect(a.address, [&](Result<std::unique_ptr<Stream>> r) { raw = std::move(*r); });
  w.clock.advance(10ms);
  ASSERT_TRUE(raw);
  EXPECT_EQ(a.host->stats().sessions_open, 1u);
  EXPECT_EQ(a.host->stats().handshakes_pending, 1u);
  // A read on our side notices when a closes the connection.
  std::array<uint8_t, 1024> buf{};
  std::optional<std::error_code> ended;
  std::function<void()> drain = [&] {
    raw->async_read_some(buf, [&](std::error_code ec, size_t) {
      if (ec) {
        ended = ec;
        return;
      }
      drain();
    });
  };
  drain();
  // The session was accepted at 5 ms; handshake_timeout is 5 s.
  w.clock.run_until([&] { return a.host->stats().sessions_open == 0; }, 10s);
  EXPECT_EQ(w.clock.elapsed(), 5s + 5ms);
  EXPECT_EQ(a.host->stats().handshakes_pending, 0u);
  EXPECT_EQ(a.host->stats().handshakes_failed, 1u);
  EXPECT_TRUE(logs.contains("handshake_timeout")) << logs.dump();
  w.clock.advance(10ms);
  ASSERT_TRUE(ended);
  EXPECT_EQ(w.net.stats().streams_open, 1u) << "only the attacker's end remains";
}

TEST(HostSim, PersistentDialBacksOffExponentiallyThenConnects) {
  SimWorld w;
  SimNode& a = w.add("a");
  // Nobody listens at b:1 yet: every attempt is refused one round trip later.
  a.host->connect("b:1", ConnectOptions{std::nullopt, true});
  std::vector<Duration> syn_times;
  uint64_t seen = 0;
  while (syn_times.size() < 6) {
    ASSERT_TRUE(w.clock.run_until([&] { return w.net.stats().connects_refused > seen; }, 60s));
    seen = w.net.stats().connects_refused;
    syn_times.push_back(w.clock.elapsed());
  }
  // Each refusal lands 10 ms after its dial; waits are 1, 2, 4, 8, then 16 s (the max).
  EXPECT_EQ(syn_times,
            (std::vector<Duration>{5ms, 1s + 15ms, 3s + 25ms, 7s + 35ms, 15s + 45ms, 31s + 55ms}));
  // b appears; the next attempt (at 47.060 s) succeeds.
  SimNode& b = w.add("b");
  ASSERT_TRUE(w.clock.run_until([&] { return a.host->is_connected(b.id()); }, 60s));
  EXPECT_EQ(w.clock.elapsed(), 47s + 60ms + 20ms);

  // A session shorter than reconnect_max does not reset the backoff: after
  // b drops it, a waits the next step (16 s, the max) from the goodbye.
  Events ea;
  ea.attach(*a.host, w.clock);
  b.host->disconnect(a.id());
  const Duration dropped_at = w.clock.elapsed();
  ASSERT_TRUE(w.clock.run_until([&] { return !a.host->is_connected(b.id()); }, 1s));
  ASSERT_TRUE(w.clock.run_until([&] { return a.host->is_connected(b.id()); }, 60s));
  EXPECT_EQ(w.clock.elapsed(), dropped_at + 5ms + 16s + 20ms);
  ASSERT_EQ(ea.disconnected.size(), 1u);
  EXPECT_EQ(ea.disconnected[0].second.reason, DisconnectReason::requested);
  EXPECT_TRUE(ea.disconnected[0].second.by_remote);
  a.host->forget("b:1");
  b.host->disconnect(a.id());
  w.clock.advance(120s);
  EXPECT_EQ(ea.disconnected.size(), 2u);
  EXPECT_FALSE(a.host->is_connected(b.id()));
}

TEST(HostSim, PersistentConnectJoiningAOneOffDialStillRetries) {
  SimWorld w;
  SimNode& a = w.add("a");
  a.host->connect("b:1");                                      // one-off, will be refused
  a.host->connect("b:1", ConnectOptions{std::nullopt, true});  // joins it, persistent
  ASSERT_TRUE(w.clock.run_until([&] { return w.net.stats().connects_refused == 2; }, 5s));
  EXPECT_EQ(w.clock.elapsed(), 1s + 15ms) << "the first retry waits reconnect_base";
}

TEST(HostSim, ReconnectJitterStaysWithinItsFraction) {
  SimWorld w;
  P2pSettings s = test::sim_settings();
  s.reconnect_jitter = 0.5;
  SimNode& a = w.add("a", s);
  a.host->connect("nobody:1", ConnectOptions{std::nullopt, true});
  uint64_t seen = 0;
  Duration last{};
  std::vector<Duration> gaps;
  while (gaps.size() < 8) {
    ASSERT_TRUE(w.clock.run_until([&] { return w.net.stats().connects_refused > seen; }, 60s));
    seen = w.net.stats().connects_refused;
    if (seen > 1) gaps.push_back(w.clock.elapsed() - last - 10ms);
    last = w.clock.elapsed();
  }
  std::vector<Duration> nominal = {1s, 2s, 4s, 8s, 16s, 16s, 16s, 16s};
  bool any_jitter = false;
  for (size_t i = 0; i < gaps.size(); ++i) {
    EXPECT_GE(gaps[i], nominal[i] / 2) << i;
    EXPECT_LE(gaps[i], nominal[i]) << i;
    any_jitter |= gaps[i] != nominal[i] / 2 && gaps[i] != nominal[i];
  }
  EXPECT_TRUE(any_jitter);
}

TEST_F(HostPair, BansDisconnectRefuseAndExpire) {
  ASSERT_TRUE(w.link(a, b));
  LogCapture logs;
  a.host->ban(b.id(), 60s, "test ban");
  w.clock.advance(10ms);
  EXPECT_FALSE(a.host->is_connected(b.id()));
  ASSERT_EQ(eb.disconnected.size(), 1u);
  EXPECT_EQ(eb.disconnected[0].second.reason, DisconnectReason::banned);
  EXPECT_TRUE(eb.disconnected[0].second.by_remote);
  EXPECT_TRUE(a.host->is_banned(b.id()));
  EXPECT_EQ(a.host->stats().bans_active, 1u);

  // b redials: a refuses it during the handshake; a dialing b is refused locally.
  Result<NodeId> r1 = NodeId{}, r2 = NodeId{};
  b.host->connect(a.address, {}, [&](Result<NodeId> r) { r1 = r; });
  a.host->connect(b.address, {.expected_id = b.id()}, [&](Result<NodeId> r) { r2 = r; });
  w.clock.advance(1s);
  ASSERT_FALSE(r1);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, Errc::conflict);
  EXPECT_TRUE(logs.contains("banned")) << logs.dump();

  // The ban lasts exactly 60 s from when it was set (at 20 ms).
  w.clock.advance(60s + 20ms - w.clock.elapsed() - 1ns);
  EXPECT_TRUE(a.host->is_banned(b.id()));
  w.clock.advance(1ns);
  EXPECT_FALSE(a.host->is_banned(b.id()));
  EXPECT_EQ(a.host->stats().bans_active, 0u);
  EXPECT_TRUE(w.link(b, a));
}

TEST_F(HostPair, ScoresDecayAndALowScoreBans) {
  ASSERT_TRUE(w.link(a, b));
  a.host->adjust_score(b.id(), -60, "invalid gossip");
  EXPECT_DOUBLE_EQ(a.host->score(b.id()), -60);
  w.clock.advance(10min);  // one half-life
  EXPECT_NEAR(a.host->score(b.id()), -30, 1e-9);
  EXPECT_TRUE(a.host->is_connected(b.id()));
  a.host->adjust_score(b.id(), -70, "invalid gossip");  // -100: at the threshold
  EXPECT_TRUE(a.host->is_banned(b.id()));
  w.clock.advance(10ms);
  EXPECT_FALSE(a.host->is_connected(b.id()));
  EXPECT_FALSE(b.host->is_connected(a.id()));
}

TEST(HostSim, PeerCapsRefuseExcessPeers) {
  SimWorld w;
  P2pSettings s = test::sim_settings();
  s.max_inbound_peers = 2;
  s.max_outbound_peers = 1;
  SimNode& hub = w.add("hub", s);
  SimNode& c1 = w.add("c1");
  SimNode& c2 = w.add("c2");
  SimNode& c3 = w.add("c3");
  ASSERT_TRUE(w.link(c1, hub));
  ASSERT_TRUE(w.link(c2, hub));
  Result<NodeId> third = NodeId{};
  c3.host->connect(hub.address, {.expected_id = hub.id()}, [&](Result<NodeId> r) { third = r; });
  w.clock.advance(1s);
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, Errc::busy) << third.error().to_string();
  EXPECT_EQ(hub.host->peer_count(), 2u);

  ASSERT_TRUE(w.link(hub, c3));  // one outbound slot
  Result<NodeId> fourth = NodeId{};
  SimNode& c4 = w.add("c4");
  hub.host->connect(c4.address, {}, [&](Result<NodeId> r) { fourth = r; });
  w.clock.advance(1s);
  ASSERT_FALSE(fourth);
  EXPECT_EQ(fourth.error().code, Errc::busy);
  EXPECT_EQ(hub.host->stats().peers_outbound, 1u);
  EXPECT_EQ(hub.host->stats().peers_inbound, 2u);
}

TEST_F(HostPair, SimultaneousDialsConvergeOnOneSession) {
  a.host->connect(b.address, {.expected_id = b.id()});
  b.host->connect(a.address, {.expected_id = a.id()});
  w.clock.advance(1s);
  EXPECT_TRUE(a.host->is_connected(b.id()));
  EXPECT_TRUE(b.host->is_connected(a.id()));
  EXPECT_EQ(a.host->stats().sessions_open, 1u);
  EXPECT_EQ(b.host->stats().sessions_open, 1u);
  Inbox ib;
  ib.attach(*b.host);
  ASSERT_TRUE(a.host->send(b.id(), kTestType, as_bytes("x")));
  w.clock.advance(1s);
  EXPECT_EQ(ib.messages.size(), 1u);
  // The survivor is the session dialed by the smaller node id, on both sides.
  const bool a_smaller = a.id() < b.id();
  EXPECT_EQ(a.host->peer(b.id())->direction, a_smaller ? Direction::outbound : Direction::inbound);
  EXPECT_EQ(b.host->peer(a.id())->direction, a_smaller ? Direction::inbound : Direction::outbound);
}

TEST(HostSim, HandshakeRefusesWrongPeerSelfAndOtherNetworks) {
  SimWorld w;
  SimNode& a = w.add("a");
  SimNode& b = w.add("b");
  SimNode& c = w.add("c");
  P2pSettings other = test::sim_settings();
  other.network_id[0] = 0x01;
  SimNode& d = w.add("d", other);
  LogCapture logs;
  std::map<std::string, Result<NodeId>> results;
  auto record = [&](std::string k) {
    return [&results, k](Result<NodeId> r) { results.emplace(k, r); };
  };
  a.host->connect(b.address, {.expected_id = c.id()}, record("wrong"));
  a.host->connect(a.address, {}, record("self"));
  a.host->connect(d.address, {}, record("network"));
  w.clock.advance(1s);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results.at("wrong").error().code, Errc::verification_failed);
  EXPECT_NE(results.at("wrong").error().message.find("unexpected_peer_id"), std::string::npos);
  EXPECT_EQ(results.at("self").error().code, Errc::invalid_argument);
  EXPECT_EQ(results.at("network").error().code, Errc::unsupported);
  EXPECT_TRUE(logs.contains("unexpected_peer_id: dialed " + short_id(c.id()) + " but reached " +
                            short_id(b.id())))
      << logs.dump();
  EXPECT_TRUE(logs.contains("network_mismatch")) << logs.dump();
  EXPECT_EQ(a.host->peer_count(), 0u);
  EXPECT_EQ(b.host->peer_count(), 0u);
}

TEST(HostSim, ShutdownSaysGoodbyeAndJoinsEverySession) {
  SimWorld w;
  SimNode& a = w.add("a");
  SimNode& b = w.add("b");
  SimNode& c = w.add("c");
  Events eb;
  eb.attach(*b.host, w.clock);
  ASSERT_TRUE(w.link(a, b));
  ASSERT_TRUE(w.link(c, a));
  Inbox ia;
  ia.attach(*a.host);
  bool joined = false;
  int late_callbacks = 0;
  auto sub = a.host->on_disconnected([&](const DisconnectInfo&) { ++late_callbacks; });
  a.host->shutdown([&] { joined = true; });
  ASSERT_TRUE(b.host->send(a.id(), kTestType, as_bytes("too late")).has_value() || true);
  w.clock.advance(100ms);
  EXPECT_TRUE(joined);
  EXPECT_EQ(a.host->stats().sessions_open, 0u);
  EXPECT_EQ(late_callbacks, 0);
  EXPECT_TRUE(ia.messages.empty());
  ASSERT_EQ(eb.disconnected.size(), 1u);
  EXPECT_EQ(eb.disconnected[0].second.reason, DisconnectReason::shutdown);
  EXPECT_TRUE(eb.disconnected[0].second.by_remote);
  EXPECT_FALSE(c.host->is_connected(a.id()));
  EXPECT_FALSE(a.host->listen("a:2"));
}

}  // namespace
}  // namespace cairn::p2p
