// Duplicate connections: two nodes that dial each other at once (or a peer
// that redials while its old session lingers) end up with one session, and
// the swap loses nothing. Every frame either side sent before it learned its
// session lost arrives exactly once, in the order it was sent, and request/
// response keeps working across the swap (docs/wire-protocol.md section 7,
// "Duplicate connections").

#include <gtest/gtest.h>

#include <numeric>

#include "cairn/p2p/identity.hpp"
#include "cairn/p2p/request.hpp"
#include "p2p_test_util.hpp"
#include "raw_peer.hpp"

using namespace std::chrono_literals;

namespace cairn::p2p {
namespace {

using test::RawPeer;
using test::SimNode;
using test::SimWorld;

constexpr auto kSeqType = static_cast<MessageType>(0xf010);
constexpr uint8_t kDuplicate = static_cast<uint8_t>(DisconnectReason::duplicate_connection);

// A numbered frame: u64 sequence number, then `size - 8` filler bytes: for
// even numbers one repeated byte (compressed on the wire), for odd ones
// noise (sent raw), so frames of both kinds move between sessions.
Bytes numbered(uint64_t seq, size_t size = 8) {
  Bytes b(std::max<size_t>(size, 8), static_cast<uint8_t>(seq));
  put_be<uint64_t>(b.data(), seq);
  uint64_t x = seq * 0x9e3779b97f4a7c15ULL + 1;
  for (size_t i = 8; i < b.size() && seq % 2 == 1; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b[i] = static_cast<uint8_t>(x);
  }
  return b;
}

std::vector<uint64_t> iota(uint64_t n) {
  std::vector<uint64_t> v(n);
  std::iota(v.begin(), v.end(), uint64_t{0});
  return v;
}

// What one node received from one peer, in delivery order, with times.
struct Received {
  std::vector<uint64_t> seqs;
  std::vector<Duration> at;
  Subscription sub;
  void attach(Host& h, const NodeId& from, ManualClock& clock) {
    sub = std::move(*h.on_message(kSeqType, [this, from, &clock](const NodeId& peer, ByteSpan p) {
      EXPECT_EQ(peer, from);
      ASSERT_GE(p.size(), 8u);
      seqs.push_back(get_be<uint64_t>(p.data()));
      at.push_back(clock.elapsed());
    }));
  }
};

struct Counts {
  int connected = 0;
  std::vector<DisconnectInfo> disconnected;
  std::vector<Duration> disconnected_at;
  Subscription a, b;
  void attach(Host& h, ManualClock& clock) {
    a = h.on_connected([this](const PeerInfo&) { ++connected; });
    b = h.on_disconnected([this, &clock](const DisconnectInfo& d) {
      disconnected.push_back(d);
      disconnected_at.push_back(clock.elapsed());
    });
  }
};

struct LinkCase {
  const char* name;
  LinkModel ab, ba;  // a -> b and b -> a
};

LinkModel link(Duration latency, Duration jitter = {}, double bandwidth = 0, double drop = 0,
               size_t window = 4u << 20) {
  LinkModel l;
  l.latency = latency;
  l.jitter = jitter;
  l.bandwidth_bytes_per_second = bandwidth;
  l.drop_probability = drop;
  l.window_bytes = window;
  return l;
}

void PrintTo(const LinkCase& c, std::ostream* os) { *os << c.name; }

class SimultaneousDial : public ::testing::TestWithParam<LinkCase> {};

// Both nodes dial each other at t = 0 and, from the moment each considers
// the other connected, send numbered frames (32 at once, then 4 every
// millisecond for 300 ms): frames are queued, in flight and being read on
// whichever session each side uses while the duplicate is resolved
// underneath.
TEST_P(SimultaneousDial, EveryFrameSentAroundTheSwapArrivesOnceInOrder) {
  const LinkCase& lc = GetParam();
  for (uint64_t salt = 0; salt < 6; ++salt) {
    SCOPED_TRACE("salt " + std::to_string(salt));
    SimWorld w(salt);
    w.net.set_link("a", "b", lc.ab);
    w.net.set_link("b", "a", lc.ba);
    SimNode& a = w.add("a");
    SimNode& b = w.add("b");
    Received at_a, at_b;
    at_a.attach(*a.host, b.id(), w.clock);
    at_b.attach(*b.host, a.id(), w.clock);
    Counts ca, cb;
    ca.attach(*a.host, w.clock);
    cb.attach(*b.host, w.clock);
    int dialed = 0;
    auto ok = [&](Result<NodeId> r) {
      EXPECT_TRUE(r) << r.error().to_string();
      ++dialed;
    };
    a.host->connect(b.address, {.expected_id = b.id()}, ok);
    b.host->connect(a.address, {.expected_id = a.id()}, ok);
    uint64_t sent_ab = 0, sent_ba = 0;
    auto burst = [](SimNode& from, SimNode& to, uint64_t& sent, int frames) {
      for (int i = 0; i < frames && from.host->is_connected(to.id()); ++i) {
        if (!from.host->send(to.id(), kSeqType, numbered(sent, 1500))) return;
        ++sent;
      }
    };
    // A larger burst the moment a node sees the other connected, so frames
    // are still queued on the first session when the duplicate resolves.
    auto sub_a = a.host->on_connected([&](const PeerInfo&) { burst(a, b, sent_ab, 32); });
    auto sub_b = b.host->on_connected([&](const PeerInfo&) { burst(b, a, sent_ba, 32); });
    for (int t = 0; t < 300; ++t) {
      burst(a, b, sent_ab, 4);
      burst(b, a, sent_ba, 4);
      w.clock.advance(1ms);
    }
    w.clock.advance(10s);
    EXPECT_EQ(dialed, 2);
    EXPECT_GT(sent_ab, 100u);
    EXPECT_GT(sent_ba, 100u);
    EXPECT_EQ(at_b.seqs, iota(sent_ab)) << "a -> b: " << at_b.seqs.size() << " of " << sent_ab;
    EXPECT_EQ(at_a.seqs, iota(sent_ba)) << "b -> a: " << at_a.seqs.size() << " of " << sent_ba;
    // One session survives, the same on both ends, and the swap was invisible.
    EXPECT_EQ(ca.connected, 1);
    EXPECT_EQ(cb.connected, 1);
    EXPECT_TRUE(ca.disconnected.empty());
    EXPECT_TRUE(cb.disconnected.empty());
    EXPECT_EQ(a.host->stats().sessions_open, 1u);
    EXPECT_EQ(b.host->stats().sessions_open, 1u);
    EXPECT_EQ(a.host->stats().disconnects, 1u) << "the duplicate session closed";
    EXPECT_EQ(b.host->stats().disconnects, 1u);
    EXPECT_EQ(a.host->stats().duplicates_retired, 1u);
    EXPECT_EQ(b.host->stats().duplicates_retired, 1u);
    ASSERT_TRUE(a.host->peer(b.id()) && b.host->peer(a.id()));
    EXPECT_NE(a.host->peer(b.id())->direction, b.host->peer(a.id())->direction);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Links, SimultaneousDial,
    ::testing::Values(LinkCase{"symmetric", link(5ms), link(5ms)},
                      LinkCase{"asymmetric", link(1ms), link(9ms)},
                      LinkCase{"jitter", link(3ms, 6ms), link(3ms, 6ms)},
                      // A small window: writers block and frames queue up
                      // unwritten, so the swap moves them to the new session.
                      LinkCase{"slow_link", link(5ms, 1ms, 2.0e6, 0, 24 * 1024),
                               link(5ms, 1ms, 2.0e6, 0, 24 * 1024)},
                      LinkCase{"lossy", link(5ms, 2ms, 0, 0.05), link(5ms, 2ms, 0, 0.05)}),
    [](const ::testing::TestParamInfo<LinkCase>& p) { return std::string(p.param.name); });

// Requests issued by both sides while the duplicate is resolved are all
// answered, each exactly once: none is lost with the retired session, none
// times out, and no response reaches the wrong request.
TEST(DuplicateSession, RequestsAroundTheSwapAreAllAnswered) {
  constexpr MessageType kEcho = MessageType::fragments_request;
  for (uint64_t salt = 0; salt < 6; ++salt) {
    SCOPED_TRACE("salt " + std::to_string(salt));
    SimWorld w(salt, link(4ms, 3ms));
    SimNode& a = w.add("a");
    SimNode& b = w.add("b");
    RequestResponse rra(*a.host), rrb(*b.host);
    auto echo = [](const NodeId&, ByteSpan p, Responder r) {
      Bytes out(p.rbegin(), p.rend());
      EXPECT_TRUE(r.respond(out));
    };
    ASSERT_TRUE(rra.handle(kEcho, echo));
    ASSERT_TRUE(rrb.handle(kEcho, echo));
    a.host->connect(b.address, {.expected_id = b.id()});
    b.host->connect(a.address, {.expected_id = a.id()});
    uint64_t issued = 0, answered = 0;
    auto ask = [&](RequestResponse& rr, SimNode& to) {
      if (!to.host) return;
      const Bytes body = numbered(issued, 64);
      Bytes expected(body.rbegin(), body.rend());
      auto id = rr.request(to.id(), kEcho, body, [&answered, expected](Result<Bytes> r) {
        ASSERT_TRUE(r) << r.error().to_string();
        EXPECT_EQ(*r, expected);
        ++answered;
      });
      if (id) ++issued;
    };
    for (int t = 0; t < 200; ++t) {
      if (a.host->is_connected(b.id())) ask(rra, b);
      if (b.host->is_connected(a.id())) ask(rrb, a);
      w.clock.advance(1ms);
    }
    w.clock.advance(3s);
    EXPECT_GT(issued, 300u);
    EXPECT_EQ(answered, issued);
    EXPECT_EQ(a.host->stats().disconnects, 1u) << "the duplicate session closed";
  }
}

// A node `a` and a scripted peer that holds the identity `key` and opens two
// sessions to it, so a test controls every frame of the swap.
struct ScriptedDuplicate {
  explicit ScriptedDuplicate(P2pSettings s = test::sim_settings()) : a(w.add("a", s)) {
    at_a.attach(*a.host, key.public_key(), w.clock);
    counts.attach(*a.host, w.clock);
  }
  SimWorld w;
  SimNode& a;
  SigningKey key = test::key_from_rng(w.rng);
  RawPeer first{w, "p1"}, second{w, "p2"};
  Received at_a;
  Counts counts;
  const NodeId& peer() const { return key.public_key(); }
  void send(RawPeer& on, uint64_t seq) { on.write(on.sealed(kSeqType, numbered(seq))); }
  void goodbye(RawPeer& on) { on.write(on.sealed(MessageType::goodbye, ByteSpan(&kDuplicate, 1))); }
  // The next frame the host sent on `on` (its type and payload).
  std::optional<std::pair<MessageType, Bytes>> next(RawPeer& on) {
    auto rec = on.read_record();
    if (!rec) return std::nullopt;
    return on.open(std::move(*rec));
  }
};

// The host retires the older session when the peer completes a second one
// (a redial: the newer session wins). It keeps reading the retired session
// until the peer's goodbye: a frame the peer sent there before it saw the
// host's goodbye is delivered, and frames on the new session wait behind it.
TEST(DuplicateSession, RetiredSessionIsReadUntilThePeersGoodbye) {
  ScriptedDuplicate t;
  ASSERT_TRUE(t.first.connect(t.a.address));
  ASSERT_TRUE(t.first.handshake(t.peer(), t.key));
  t.send(t.first, 0);
  t.w.clock.advance(20ms);
  ASSERT_EQ(t.at_a.seqs, iota(1));
  ASSERT_TRUE(t.second.connect(t.a.address));
  ASSERT_TRUE(t.second.handshake(t.peer(), t.key));
  // Both in flight at once: the host retires the first session when the
  // second's auth arrives, and must still deliver 1 before 2.
  t.send(t.second, 2);
  t.send(t.first, 1);
  auto bye = t.next(t.first);
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->first, MessageType::goodbye);
  EXPECT_EQ(bye->second, Bytes{kDuplicate});
  t.w.clock.advance(50ms);
  EXPECT_EQ(t.at_a.seqs, iota(2)) << "2 waits until the retired session is drained";
  t.goodbye(t.first);
  t.w.clock.advance(20ms);
  EXPECT_EQ(t.at_a.seqs, iota(3));
  EXPECT_TRUE(t.first.wait_closed());
  EXPECT_EQ(t.counts.connected, 1);
  EXPECT_TRUE(t.counts.disconnected.empty());
  EXPECT_EQ(t.a.host->stats().sessions_open, 1u);
  // The new session carries on both ways.
  ASSERT_TRUE(t.a.host->send(t.peer(), kSeqType, numbered(7)));
  auto f = t.next(t.second);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->first, kSeqType);
}

// The peer used a session the host has only half set up (its Hello arrived,
// its Auth is late) before it switched to the session the host already
// uses: the frame on the current session waits until the late session is
// established, retired and drained, so the peer's order is kept.
TEST(DuplicateSession, FramesWaitBehindADuplicateStillInItsHandshake) {
  SimWorld w;
  SimNode& a = w.add("a");
  // The session a dials must win: simultaneous sessions are decided by the
  // smaller initiator id.
  SigningKey key = test::key_from_rng(w.rng);
  while (!(a.id() < key.public_key())) key = test::key_from_rng(w.rng);
  Received at_a;
  at_a.attach(*a.host, key.public_key(), w.clock);
  RawPeer dialed(w, "p"), dialing(w, "p2");
  ASSERT_TRUE(dialed.listen("p:1"));
  a.host->connect("p:1", {.expected_id = key.public_key()});
  ASSERT_TRUE(dialed.accept_handshake(key.public_key(), key));
  w.clock.advance(20ms);
  ASSERT_TRUE(a.host->is_connected(key.public_key()));
  ASSERT_TRUE(dialing.connect(a.address));
  ASSERT_TRUE(dialing.begin_handshake(key.public_key()));
  dialed.write(dialed.sealed(kSeqType, numbered(1)));
  w.clock.advance(50ms);
  EXPECT_TRUE(at_a.seqs.empty()) << "1 must wait for the session still in its handshake";
  ASSERT_TRUE(dialing.finish_handshake(key));
  dialing.write(dialing.sealed(kSeqType, numbered(0)));
  dialing.write(dialing.sealed(MessageType::goodbye, ByteSpan(&kDuplicate, 1)));
  w.clock.advance(50ms);
  EXPECT_EQ(at_a.seqs, iota(2));
  EXPECT_TRUE(dialing.wait_closed());
  EXPECT_EQ(a.host->stats().sessions_open, 1u);
}

// A Hello that claims a connected peer's id but never completes (anyone can
// send one) holds that peer's frames for at most duplicate_drain_timeout.
TEST(DuplicateSession, AForgedHelloHoldsFramesOnlyForTheDrainTimeout) {
  SimWorld w;
  P2pSettings s = test::sim_settings();
  s.duplicate_drain_timeout = 1s;
  SimNode& a = w.add("a", s);
  SigningKey key = test::key_from_rng(w.rng);
  while (!(a.id() < key.public_key())) key = test::key_from_rng(w.rng);
  Received at_a;
  at_a.attach(*a.host, key.public_key(), w.clock);
  RawPeer dialed(w, "p"), forger(w, "evil");
  ASSERT_TRUE(dialed.listen("p:1"));
  a.host->connect("p:1", {.expected_id = key.public_key()});
  ASSERT_TRUE(dialed.accept_handshake(key.public_key(), key));
  ASSERT_TRUE(forger.connect(a.address));
  ASSERT_TRUE(forger.begin_handshake(key.public_key()));
  // The forged Hello reached a one link latency before its answer came back.
  const Duration hello_at = w.clock.elapsed() - 5ms;
  dialed.write(dialed.sealed(kSeqType, numbered(0)));
  w.clock.advance(3s);
  ASSERT_EQ(at_a.seqs, iota(1));
  EXPECT_EQ(at_a.at[0], hello_at + 1s);
}

// A peer that never says goodbye on the retired session cannot keep it (or
// the hold on the new session) open: it is cut after duplicate_drain_timeout.
TEST(DuplicateSession, SilentRetiredSessionIsCutAfterTheDrainTimeout) {
  P2pSettings s = test::sim_settings();
  s.duplicate_drain_timeout = 1500ms;
  ScriptedDuplicate t(s);
  ASSERT_TRUE(t.first.connect(t.a.address));
  ASSERT_TRUE(t.first.handshake(t.peer(), t.key));
  ASSERT_TRUE(t.second.connect(t.a.address));
  ASSERT_TRUE(t.second.handshake(t.peer(), t.key));
  t.send(t.second, 0);
  auto bye = t.next(t.first);
  ASSERT_TRUE(bye);
  ASSERT_EQ(bye->first, MessageType::goodbye);
  // The goodbye left the host one link latency (5 ms) ago, when it retired
  // the first session.
  const Duration retired = t.w.clock.elapsed() - 5ms;
  EXPECT_TRUE(t.first.wait_closed(3s));
  EXPECT_EQ(t.w.clock.elapsed(), retired + 1500ms + 5ms);
  ASSERT_EQ(t.at_a.seqs, iota(1));
  EXPECT_EQ(t.at_a.at[0], retired + 1500ms);
  EXPECT_TRUE(t.counts.disconnected.empty());
  EXPECT_TRUE(t.a.host->is_connected(t.peer()));
  EXPECT_EQ(t.a.host->stats().sessions_open, 1u);
}

// The peer retires the session the host is using while the host's side of
// the new session is still in its handshake: the host answers goodbye, keeps
// the peer connected, and everything sent meanwhile goes out on the new
// session once it is up, in order.
TEST(DuplicateSession, PeerRetiringTheCurrentSessionHandsFramesToTheNewOne) {
  ScriptedDuplicate t;
  ASSERT_TRUE(t.first.connect(t.a.address));
  ASSERT_TRUE(t.first.handshake(t.peer(), t.key));
  t.w.clock.advance(20ms);
  ASSERT_TRUE(t.a.host->is_connected(t.peer()));
  ASSERT_TRUE(t.second.connect(t.a.address));
  ASSERT_TRUE(t.second.begin_handshake(t.peer()));
  // The host's send queue on the first session is never written past this.
  t.goodbye(t.first);
  t.w.clock.advance(20ms);
  auto bye = t.next(t.first);
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->first, MessageType::goodbye);
  EXPECT_EQ(bye->second, Bytes{kDuplicate});
  EXPECT_TRUE(t.a.host->is_connected(t.peer()));
  for (uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(t.a.host->send(t.peer(), kSeqType, numbered(i, 3000)));
  }
  t.w.clock.advance(100ms);
  EXPECT_FALSE(t.first.read_record(10ms)) << "nothing after the goodbye";
  ASSERT_TRUE(t.second.finish_handshake(t.key));
  for (uint64_t i = 0; i < 5; ++i) {
    auto f = t.next(t.second);
    ASSERT_TRUE(f) << i;
    EXPECT_EQ(f->first, kSeqType);
    EXPECT_EQ(get_be<uint64_t>(f->second.data()), i);
  }
  EXPECT_EQ(t.counts.connected, 1);
  EXPECT_TRUE(t.counts.disconnected.empty());
  EXPECT_EQ(t.a.host->stats().sessions_open, 1u);
}

// The same, but the new session never completes: the peer is disconnected
// once duplicate_drain_timeout has passed, with the peer's reason.
TEST(DuplicateSession, HandOverToASessionThatNeverCompletesDisconnects) {
  P2pSettings s = test::sim_settings();
  s.duplicate_drain_timeout = 2s;
  ScriptedDuplicate t(s);
  ASSERT_TRUE(t.first.connect(t.a.address));
  ASSERT_TRUE(t.first.handshake(t.peer(), t.key));
  ASSERT_TRUE(t.second.connect(t.a.address));
  ASSERT_TRUE(t.second.begin_handshake(t.peer()));
  t.goodbye(t.first);
  const Duration said = t.w.clock.elapsed();
  t.w.clock.advance(3s);
  ASSERT_EQ(t.counts.disconnected.size(), 1u);
  EXPECT_EQ(t.counts.disconnected[0].reason, DisconnectReason::duplicate_connection);
  EXPECT_TRUE(t.counts.disconnected[0].by_remote);
  // The goodbye took one link latency; the wait for the successor 2 s.
  EXPECT_EQ(t.counts.disconnected_at[0], said + 5ms + 2s);
  EXPECT_FALSE(t.a.host->is_connected(t.peer()));
}

// ... or when the new session fails its handshake: disconnected at once.
TEST(DuplicateSession, HandOverToASessionThatFailsDisconnectsAtOnce) {
  ScriptedDuplicate t;
  ASSERT_TRUE(t.first.connect(t.a.address));
  ASSERT_TRUE(t.first.handshake(t.peer(), t.key));
  ASSERT_TRUE(t.second.connect(t.a.address));
  ASSERT_TRUE(t.second.begin_handshake(t.peer()));
  t.goodbye(t.first);
  t.w.clock.advance(20ms);
  ASSERT_TRUE(t.a.host->is_connected(t.peer()));
  // Signed with the wrong key: the host refuses the second session.
  ASSERT_TRUE(t.second.finish_handshake(test::key_from_rng(t.w.rng)));
  const Duration sent = t.w.clock.elapsed();
  t.w.clock.advance(1s);
  ASSERT_EQ(t.counts.disconnected.size(), 1u);
  EXPECT_EQ(t.counts.disconnected[0].reason, DisconnectReason::duplicate_connection);
  EXPECT_EQ(t.counts.disconnected_at[0], sent + 5ms);
  EXPECT_FALSE(t.a.host->is_connected(t.peer()));
  EXPECT_EQ(t.a.host->stats().sessions_open, 0u);
}

// pause_reading() holds a peer's frames across a swap: on the retired
// session and on the one that replaced it, until resume_reading().
TEST(DuplicateSession, PausedReadingCoversBothSessionsOfASwap) {
  ScriptedDuplicate t;
  ASSERT_TRUE(t.first.connect(t.a.address));
  ASSERT_TRUE(t.first.handshake(t.peer(), t.key));
  t.w.clock.advance(20ms);
  t.a.host->pause_reading(t.peer());
  t.send(t.first, 0);
  ASSERT_TRUE(t.second.connect(t.a.address));
  ASSERT_TRUE(t.second.handshake(t.peer(), t.key));
  t.send(t.first, 1);
  t.send(t.second, 2);
  t.goodbye(t.first);
  t.w.clock.advance(10s);  // longer than the drain timeout: paused is not silent
  EXPECT_TRUE(t.at_a.seqs.empty());
  t.a.host->resume_reading(t.peer());
  t.w.clock.advance(50ms);
  EXPECT_EQ(t.at_a.seqs, iota(3));
  EXPECT_TRUE(t.counts.disconnected.empty());
  EXPECT_EQ(t.a.host->stats().sessions_open, 1u);
}

// Without another session to hand over to, a goodbye(duplicate_connection)
// is an ordinary disconnect.
TEST(DuplicateSession, DuplicateGoodbyeWithoutASuccessorDisconnects) {
  ScriptedDuplicate t;
  ASSERT_TRUE(t.first.connect(t.a.address));
  ASSERT_TRUE(t.first.handshake(t.peer(), t.key));
  t.w.clock.advance(20ms);
  t.goodbye(t.first);
  t.w.clock.advance(20ms);
  ASSERT_EQ(t.counts.disconnected.size(), 1u);
  EXPECT_EQ(t.counts.disconnected[0].reason, DisconnectReason::duplicate_connection);
  EXPECT_FALSE(t.a.host->is_connected(t.peer()));
}

}  // namespace
}  // namespace cairn::p2p
