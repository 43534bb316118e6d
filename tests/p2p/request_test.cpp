// Request/response over simulated hosts: round trips at exact virtual times,
// deferred answers, timeouts, cancellation, in-flight caps on both sides,
// unknown kinds, failures and disconnects.

#include <gtest/gtest.h>

#include <asio/post.hpp>

#include "cairn/p2p/request.hpp"
#include "p2p_test_util.hpp"

using namespace std::chrono_literals;

namespace cairn::p2p {
namespace {

using test::SimNode;
using test::SimWorld;

constexpr MessageType kEcho = MessageType::fragments_request;
constexpr MessageType kSlow = MessageType::shard_range_request;

struct Pair {
  explicit Pair(P2pSettings sa = test::sim_settings(), P2pSettings sb = test::sim_settings())
      : a(w.add("a", sa)), b(w.add("b", sb)), rra(*a.host), rrb(*b.host) {
    EXPECT_TRUE(w.link(a, b));
    // Echo answers at once with the payload reversed.
    EXPECT_TRUE(rrb.handle(kEcho, [](const NodeId&, ByteSpan p, Responder r) {
      Bytes out(p.rbegin(), p.rend());
      EXPECT_TRUE(r.respond(out));
    }));
    // Slow keeps the responder; the test answers (or not) later.
    EXPECT_TRUE(rrb.handle(
        kSlow, [this](const NodeId&, ByteSpan, Responder r) { parked.push_back(std::move(r)); }));
  }
  SimWorld w;
  SimNode& a;
  SimNode& b;
  RequestResponse rra, rrb;
  std::vector<Responder> parked;
};

struct Outcome {
  std::optional<Result<Bytes>> result;
  Duration at{};
};

ResponseCallback record(Outcome& o, ManualClock& clock) {
  return [&o, &clock](Result<Bytes> r) {
    EXPECT_FALSE(o.result) << "callback ran twice";
    o.result = std::move(r);
    o.at = clock.elapsed();
  };
}

TEST(RequestResponse, RoundTripTakesOneRoundTripOfVirtualTime) {
  Pair p;
  Outcome o;
  const Duration start = p.w.clock.elapsed();
  auto id = p.rra.request(p.b.id(), kEcho, as_bytes("abc"), record(o, p.w.clock));
  ASSERT_TRUE(id);
  EXPECT_EQ(p.rra.in_flight(p.b.id()), 1u);
  p.w.clock.advance(1s);
  ASSERT_TRUE(o.result);
  ASSERT_TRUE(*o.result) << o.result->error().to_string();
  EXPECT_EQ(**o.result, Bytes(as_bytes("cba").begin(), as_bytes("cba").end()));
  EXPECT_EQ(o.at - start, 10ms);
  EXPECT_EQ(p.rra.in_flight(p.b.id()), 0u);
  EXPECT_EQ(p.rrb.inbound_in_flight(p.a.id()), 0u);
}

TEST(RequestResponse, DeferredAnswerArrivesWhenGiven) {
  Pair p;
  Outcome o;
  ASSERT_TRUE(p.rra.request(p.b.id(), kSlow, as_bytes("range 0-9"), record(o, p.w.clock)));
  p.w.clock.advance(500ms);
  ASSERT_EQ(p.parked.size(), 1u);
  EXPECT_FALSE(o.result);
  EXPECT_EQ(p.rrb.inbound_in_flight(p.a.id()), 1u);
  const Duration answered = p.w.clock.elapsed();
  ASSERT_TRUE(p.parked[0].respond(as_bytes("ten blobs")));
  EXPECT_FALSE(p.parked[0].respond(as_bytes("again"))) << "a request is answered once";
  p.w.clock.advance(1s);
  ASSERT_TRUE(o.result && *o.result);
  EXPECT_EQ(o.at, answered + 5ms);
}

TEST(RequestResponse, TimeoutFiresAtTheDeadlineAndTellsTheResponder) {
  Pair p;
  Outcome o;
  const Duration start = p.w.clock.elapsed();
  ASSERT_TRUE(p.rra.request(p.b.id(), kSlow, {}, record(o, p.w.clock), {.timeout = 750ms}));
  p.w.clock.advance(2s);
  ASSERT_TRUE(o.result);
  ASSERT_FALSE(*o.result);
  EXPECT_EQ(o.result->error().code, Errc::timeout);
  EXPECT_EQ(o.at - start, 750ms);
  EXPECT_EQ(p.rra.in_flight(p.b.id()), 0u);
  // The cancel reached b: its handler may stop, and a late answer goes nowhere.
  ASSERT_EQ(p.parked.size(), 1u);
  EXPECT_TRUE(p.parked[0].cancelled());
  EXPECT_EQ(p.rrb.inbound_in_flight(p.a.id()), 1u) << "the handler still holds it";
  auto late = p.parked[0].respond(as_bytes("late"));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::cancelled);
  EXPECT_EQ(p.rrb.inbound_in_flight(p.a.id()), 0u) << "answering frees the slot";
  // The default timeout comes from the settings (2 s in these tests).
  Outcome o2;
  const Duration start2 = p.w.clock.elapsed();
  ASSERT_TRUE(p.rra.request(p.b.id(), kSlow, {}, record(o2, p.w.clock)));
  p.w.clock.advance(5s);
  ASSERT_TRUE(o2.result);
  EXPECT_EQ(o2.at - start2, 2s);
}

TEST(RequestResponse, CancellationCallsBackOnceAndFreesBothSides) {
  Pair p;
  Outcome o;
  auto id = p.rra.request(p.b.id(), kSlow, {}, record(o, p.w.clock));
  ASSERT_TRUE(id);
  p.w.clock.advance(20ms);
  EXPECT_EQ(p.rrb.inbound_in_flight(p.a.id()), 1u);
  EXPECT_TRUE(p.rra.cancel(*id));
  EXPECT_FALSE(p.rra.cancel(*id));
  EXPECT_FALSE(o.result) << "the callback is posted, never run inside cancel()";
  p.w.clock.advance(20ms);
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.result->error().code, Errc::cancelled);
  EXPECT_TRUE(p.parked.at(0).cancelled());
  // The handler still holds the request: it keeps its slot until it lets go.
  EXPECT_EQ(p.rrb.inbound_in_flight(p.a.id()), 1u);
  p.parked.clear();
  EXPECT_EQ(p.rrb.inbound_in_flight(p.a.id()), 0u);
  p.w.clock.advance(5s);  // the timeout timer is gone too
}

TEST(RequestResponse, InFlightCapsAreEnforcedOnBothSides) {
  P2pSettings sa = test::sim_settings();
  sa.max_requests_in_flight = 4;
  P2pSettings sb = test::sim_settings();
  sb.max_inbound_requests = 2;
  {
    Pair p(sa, test::sim_settings());
    std::vector<Outcome> out(5);
    for (size_t i = 0; i < 4; ++i) {
      ASSERT_TRUE(p.rra.request(p.b.id(), kSlow, {}, record(out[i], p.w.clock)));
    }
    auto fifth = p.rra.request(p.b.id(), kSlow, {}, record(out[4], p.w.clock));
    ASSERT_FALSE(fifth);
    EXPECT_EQ(fifth.error().code, Errc::busy);
    p.w.clock.advance(20ms);
    ASSERT_TRUE(p.parked[0].respond({}));
    p.w.clock.advance(20ms);
    EXPECT_TRUE(p.rra.request(p.b.id(), kSlow, {}, record(out[4], p.w.clock)));
  }
  {
    Pair p(test::sim_settings(), sb);
    std::vector<Outcome> out(3);
    for (auto& o : out) ASSERT_TRUE(p.rra.request(p.b.id(), kSlow, {}, record(o, p.w.clock)));
    p.w.clock.advance(50ms);
    EXPECT_EQ(p.parked.size(), 2u) << "the third never reached the handler";
    ASSERT_TRUE(out[2].result);
    EXPECT_EQ(out[2].result->error().code, Errc::busy);
    EXPECT_FALSE(out[0].result);
  }
}

TEST(RequestResponse, FailuresMapToErrorCodes) {
  Pair p;
  ASSERT_TRUE(p.rrb.handle(
      MessageType::challenge_response_request, [](const NodeId&, ByteSpan, Responder r) {
        EXPECT_TRUE(r.fail(ResponseStatus::not_found, "no response for epoch 7"));
      }));
  Outcome nf, unknown, dropped;
  ASSERT_TRUE(
      p.rra.request(p.b.id(), MessageType::challenge_response_request, {}, record(nf, p.w.clock)));
  ASSERT_TRUE(
      p.rra.request(p.b.id(), static_cast<MessageType>(0x01ff), {}, record(unknown, p.w.clock)));
  ASSERT_TRUE(p.rra.request(p.b.id(), kSlow, {}, record(dropped, p.w.clock)));
  p.w.clock.advance(20ms);
  p.parked.clear();  // drops the responder unanswered
  p.w.clock.advance(20ms);
  ASSERT_TRUE(nf.result && unknown.result && dropped.result);
  EXPECT_EQ(nf.result->error().code, Errc::not_found);
  EXPECT_NE(nf.result->error().message.find("no response for epoch 7"), std::string::npos);
  EXPECT_EQ(unknown.result->error().code, Errc::unsupported);
  EXPECT_EQ(dropped.result->error().code, Errc::internal);

  EXPECT_EQ(p.rra.request(p.b.id(), MessageType::response, {}, {}).error().code,
            Errc::invalid_argument);
  SigningKey stranger = test::key_from_rng(p.w.rng);
  EXPECT_EQ(p.rra.request(stranger.public_key(), kEcho, {}, {}).error().code, Errc::not_found);
  EXPECT_EQ(p.rrb.handle(kEcho, {}).error().code, Errc::conflict);
  EXPECT_EQ(p.rrb.handle(MessageType::ping, {}).error().code, Errc::invalid_argument);
}

TEST(RequestResponse, DestructionDropsPendingRequestsSilentlyAndTellsThePeer) {
  SimWorld w;
  SimNode& a = w.add("a");
  SimNode& b = w.add("b");
  ASSERT_TRUE(w.link(a, b));
  RequestResponse rrb(*b.host);
  std::vector<Responder> parked;
  ASSERT_TRUE(rrb.handle(
      kSlow, [&](const NodeId&, ByteSpan, Responder r) { parked.push_back(std::move(r)); }));
  bool called = false;
  {
    RequestResponse temp(*a.host);
    EXPECT_THROW(RequestResponse(*a.host), std::logic_error) << "one per host";
    ASSERT_TRUE(temp.request(b.id(), kSlow, {}, [&](Result<Bytes>) { called = true; }));
    w.clock.advance(20ms);
    ASSERT_EQ(parked.size(), 1u);
    // `temp` goes away: its owner would go with it, so nothing calls back.
  }
  w.clock.advance(5s);
  EXPECT_FALSE(called);
  EXPECT_TRUE(parked[0].cancelled());
  EXPECT_EQ(rrb.inbound_in_flight(a.id()), 1u) << "the handler still holds it";
  parked.clear();
  EXPECT_EQ(rrb.inbound_in_flight(a.id()), 0u) << "dropping the responder frees the slot";
  // The host is free for a new instance.
  RequestResponse again(*a.host);
}

TEST(RequestResponse, DisconnectFailsPendingRequests) {
  Pair p;
  Outcome o;
  ASSERT_TRUE(p.rra.request(p.b.id(), kSlow, {}, record(o, p.w.clock)));
  p.w.clock.advance(20ms);
  p.b.host->disconnect(p.a.id());
  p.w.clock.advance(20ms);
  ASSERT_TRUE(o.result);
  EXPECT_EQ(o.result->error().code, Errc::io_error);
  EXPECT_EQ(p.rra.in_flight(p.b.id()), 0u);
  EXPECT_TRUE(p.parked.at(0).cancelled());
  EXPECT_EQ(p.rrb.inbound_in_flight(p.a.id()), 0u);
}

}  // namespace
}  // namespace cairn::p2p
