// The simulated network's link model, byte for byte and nanosecond for
// nanosecond: latency, bandwidth, loss repaired by retransmission, windows,
// partitions, crashes, refused connects. Also TCP address parsing.

#include <gtest/gtest.h>

#include <asio/error.hpp>

#include <deque>

#include "cairn/p2p/tcp_address.hpp"
#include "p2p_test_util.hpp"

using namespace std::chrono_literals;

namespace cairn::p2p {
namespace {

struct Net {
  explicit Net(LinkModel link = {}) : clock(ctx), net(ctx.get_executor(), clock, 99, link) {
    ta = net.make_transport("a");
    tb = net.make_transport("b");
    EXPECT_TRUE(tb->listen("b:7", [this](std::unique_ptr<Stream> s) { server = std::move(s); }));
  }
  void connect() {
    ta->connect("b:7", [this](Result<std::unique_ptr<Stream>> r) {
      ASSERT_TRUE(r) << r.error().to_string();
      client = std::move(*r);
    });
    clock.run_until([&] { return client && server; }, 1s);
  }
  // Reads continuously on `s`, recording arrival times and bytes.
  void reader(Stream& s) {
    s.async_read_some(buf, [this, &s](std::error_code ec, size_t n) {
      if (ec) {
        error = ec;
        return;
      }
      arrivals.emplace_back(clock.elapsed(), n);
      got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(n));
      reader(s);
    });
  }
  void write(Stream& s, Bytes b) {
    pending.push_back(std::move(b));
    spans.emplace_back(pending.back());
    s.async_write(std::span<const ByteSpan>(&spans.back(), 1),
                  [this](std::error_code ec, size_t n) {
                    writes_done.emplace_back(clock.elapsed(), ec ? 0 : n);
                  });
  }

  asio::io_context ctx;
  ManualClock clock;
  SimNetwork net;
  std::unique_ptr<Transport> ta, tb;
  std::unique_ptr<Stream> client, server;
  std::array<uint8_t, 1 << 16> buf{};
  std::vector<std::pair<Duration, size_t>> arrivals, writes_done;
  Bytes got;
  std::optional<std::error_code> error;
  std::deque<Bytes> pending;
  std::deque<ByteSpan> spans;
};

TEST(SimNetwork, ConnectAndDeliveryFollowTheLatency) {
  Net n;
  n.connect();
  EXPECT_EQ(n.clock.elapsed(), 10ms);  // SYN 5 ms, answer 5 ms
  EXPECT_EQ(n.client->remote_address(), "b:7");
  EXPECT_EQ(n.server->local_address(), "b:7");
  n.reader(*n.server);
  n.write(*n.client, Bytes(100, 1));
  n.clock.advance(1s);
  ASSERT_EQ(n.arrivals.size(), 1u);
  EXPECT_EQ(n.arrivals[0], (std::pair<Duration, size_t>{15ms, 100}));
  n.client->close();
  n.clock.advance(1s);
  ASSERT_TRUE(n.error);
  EXPECT_EQ(*n.error, asio::error::eof);
}

TEST(SimNetwork, BandwidthSerialisesSegmentsOnALink) {
  LinkModel link;
  link.bandwidth_bytes_per_second = 1e6;  // 10 000 bytes take 10 ms
  Net n(link);
  n.connect();
  n.reader(*n.server);
  const Duration t0 = n.clock.elapsed();
  n.write(*n.client, Bytes(10000, 1));
  n.clock.settle();
  n.write(*n.client, Bytes(10000, 2));
  n.clock.advance(1s);
  ASSERT_EQ(n.arrivals.size(), 2u);
  EXPECT_EQ(n.arrivals[0].first, t0 + 10ms + 5ms);
  EXPECT_EQ(n.arrivals[1].first, t0 + 20ms + 5ms);
}

TEST(SimNetwork, LossIsRepairedInOrderByRetransmission) {
  LinkModel link;
  link.drop_probability = 0.3;
  Net n(link);
  n.connect();
  n.reader(*n.server);
  Bytes expected;
  for (uint8_t i = 0; i < 50; ++i) {
    n.write(*n.client, Bytes(10, i));
    expected.insert(expected.end(), 10, i);
    n.clock.advance(1ms);
  }
  n.clock.advance(30s);
  EXPECT_EQ(n.got, expected) << "bytes arrive complete and in order";
  EXPECT_GT(n.net.stats().segments_dropped, 5u);
  // Each loss costs one retransmit timeout, so late segments exist.
  Duration latest{};
  for (auto& [t, sz] : n.arrivals) latest = std::max(latest, t);
  EXPECT_GE(latest, 10ms + 49ms + 5ms + 200ms);
}

TEST(SimNetwork, WindowBlocksTheWriterUntilTheReaderReads) {
  LinkModel link;
  link.window_bytes = 1000;
  Net n(link);
  n.connect();
  n.write(*n.client, Bytes(800, 1));
  n.clock.settle();
  n.write(*n.client, Bytes(800, 2));  // would exceed the window
  n.clock.advance(1s);
  ASSERT_EQ(n.writes_done.size(), 1u) << "the second write waits for the reader";
  n.reader(*n.server);
  n.clock.advance(1s);
  EXPECT_EQ(n.writes_done.size(), 2u);
  EXPECT_EQ(n.got.size(), 1600u);
}

TEST(SimNetwork, PartitionHoldsBytesAndConnectsUntilHealed) {
  Net n;
  n.connect();
  n.reader(*n.server);
  n.net.partition({{"a"}, {"b"}});
  n.write(*n.client, Bytes(10, 1));
  std::unique_ptr<Stream> late;
  n.ta->connect("b:7", [&](Result<std::unique_ptr<Stream>> r) { late = std::move(*r); });
  n.clock.advance(10s);
  EXPECT_TRUE(n.arrivals.empty());
  EXPECT_FALSE(late);
  const Duration healed = n.clock.elapsed();
  n.net.heal();
  n.clock.advance(1s);
  ASSERT_EQ(n.arrivals.size(), 1u);
  EXPECT_EQ(n.arrivals[0].first, healed + 5ms);
  EXPECT_TRUE(late);
}

TEST(SimNetwork, CrashesResetOrSilenceTheSurvivors) {
  {
    Net n;
    n.connect();
    n.reader(*n.client);
    const Duration at = n.clock.elapsed();
    n.net.crash("b", true);
    n.clock.run_until([&] { return n.error.has_value(); }, 1s);
    ASSERT_TRUE(n.error);
    EXPECT_EQ(*n.error, asio::error::connection_reset);
    EXPECT_EQ(n.clock.elapsed(), at + 5ms) << "the reset takes one link latency";
    std::optional<Result<std::unique_ptr<Stream>>> again;
    n.ta->connect("b:7", [&](Result<std::unique_ptr<Stream>> r) { again = std::move(r); });
    n.clock.advance(1s);
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again);
  }
  {
    Net n;
    n.connect();
    n.reader(*n.client);
    n.net.crash("b", false);
    n.write(*n.client, Bytes(10, 1));
    n.clock.advance(60s);
    EXPECT_FALSE(n.error) << "a silent crash shows nothing";
    EXPECT_TRUE(n.arrivals.empty());
  }
}

TEST(SimNetwork, ConnectToNobodyIsRefusedAfterOneRoundTrip) {
  Net n;
  std::optional<Result<std::unique_ptr<Stream>>> r;
  n.ta->connect("c:1", [&](Result<std::unique_ptr<Stream>> x) { r = std::move(x); });
  n.clock.run_until([&] { return r.has_value(); }, 1s);
  EXPECT_EQ(n.clock.elapsed(), 10ms);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code, Errc::io_error);
  EXPECT_EQ(n.net.stats().connects_refused, 1u);
  EXPECT_FALSE(n.ta->listen("b:9", [](std::unique_ptr<Stream>) {})) << "a may only listen as a";
}

TEST(TcpAddress, ParsesHostPortForms) {
  auto v4 = parse_tcp_address("127.0.0.1:4100");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 4100);
  auto v6 = parse_tcp_address("[::1]:9");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  auto dns = parse_tcp_address("node-3.example:65535");
  ASSERT_TRUE(dns);
  EXPECT_EQ(dns->port, 65535);
  EXPECT_FALSE(parse_tcp_address("127.0.0.1"));
  EXPECT_FALSE(parse_tcp_address("127.0.0.1:"));
  EXPECT_FALSE(parse_tcp_address(":80"));
  EXPECT_FALSE(parse_tcp_address("host:65536"));
  EXPECT_FALSE(parse_tcp_address("host:8o"));
}

}  // namespace
}  // namespace cairn::p2p
