// Hosts over real TCP on 127.0.0.1: handshake and traffic both ways, large
// and compressed frames, request/response, and attacks from raw sockets and a
// tampering relay. Real time, bounded by short timeouts.

#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/connect.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "cairn/p2p/host.hpp"
#include "cairn/p2p/request.hpp"
#include "cairn/p2p/transport.hpp"
#include "handshake.hpp"
#include "p2p_test_util.hpp"

using namespace std::chrono_literals;
using asio::ip::tcp;

namespace cairn::p2p {
namespace {

using test::kTestType;
using test::LogCapture;

bool run_until(asio::io_context& ctx, const std::function<bool()>& done, Duration limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    ctx.restart();
    if (ctx.run_for(5ms) == 0) std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::string loopback() { return "127.0.0.1:" + std::to_string(cairn::test::free_port()); }

struct TcpNode {
  TcpNode(asio::io_context& ctx, std::mt19937_64& rng, P2pSettings s = {})
      : key(test::key_from_rng(rng)),
        transport(make_tcp_transport(ctx.get_executor())),
        host(std::make_unique<Host>(ctx.get_executor(), *transport, real_clock(), key, s, rng())) {
    auto a = host->listen(loopback());
    EXPECT_TRUE(a) << a.error().to_string();
    if (a) address = *a;
    sub = std::move(*host->on_message(kTestType, [this](const NodeId& from, ByteSpan p) {
      received.emplace_back(from, Bytes(p.begin(), p.end()));
    }));
  }
  ~TcpNode() { host->shutdown(); }
  SigningKey key;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Host> host;
  std::string address;
  std::vector<std::pair<NodeId, Bytes>> received;
  Subscription sub;
};

class Tcp : public ::testing::Test {
 protected:
  void TearDown() override {
    a.reset();
    b.reset();
    run_until(
        ctx, [] { return false; }, 50ms);
  }
  std::mt19937_64 rng = cairn::test::seeded_rng(21);
  asio::io_context ctx;
  std::unique_ptr<TcpNode> a, b;
};

TEST_F(Tcp, HandshakeAndMessagesFlowBothWays) {
  a = std::make_unique<TcpNode>(ctx, rng);
  b = std::make_unique<TcpNode>(ctx, rng);
  Result<NodeId> dialed = make_error(Errc::internal, "pending");
  a->host->connect(b->address, {.expected_id = b->key.public_key()},
                   [&](Result<NodeId> r) { dialed = r; });
  ASSERT_TRUE(
      run_until(ctx, [&] { return dialed.has_value() || dialed.error().code != Errc::internal; }));
  ASSERT_TRUE(dialed) << dialed.error().to_string();
  ASSERT_TRUE(run_until(ctx, [&] { return b->host->is_connected(a->key.public_key()); }));
  EXPECT_EQ(a->host->peer(b->key.public_key())->advertised_address, b->address);
  EXPECT_EQ(b->host->peer(a->key.public_key())->advertised_address, a->address);

  std::vector<Bytes> to_b, to_a;
  // First, before random payloads of the same type make zstd back off.
  to_a.push_back(Bytes(1u << 20, 0x61));  // compresses
  for (size_t i = 0; i < 300; ++i) {
    to_b.push_back(cairn::test::random_bytes(rng, (i * 7919) % 262144));
    to_a.push_back(cairn::test::random_bytes(rng, (i * 104729) % 65536));
  }
  to_b.push_back(cairn::test::random_bytes(rng, a->host->settings().max_frame_payload));
  size_t ib = 0, ia = 0;
  ASSERT_TRUE(run_until(
      ctx,
      [&] {
        while (ib < to_b.size() && a->host->send(b->key.public_key(), kTestType, to_b[ib])) ++ib;
        while (ia < to_a.size() && b->host->send(a->key.public_key(), kTestType, to_a[ia])) ++ia;
        return b->received.size() == to_b.size() && a->received.size() == to_a.size();
      },
      30s));
  for (size_t i = 0; i < to_b.size(); ++i) ASSERT_EQ(b->received[i].second, to_b[i]) << i;
  for (size_t i = 0; i < to_a.size(); ++i) ASSERT_EQ(a->received[i].second, to_a[i]) << i;
  EXPECT_EQ(b->received[0].first, a->key.public_key());
  // The 1 MiB run of 'a' went compressed: b put fewer bytes on the wire than
  // it sent in payloads, although the random payloads cannot shrink.
  size_t payload_to_a = 0;
  for (const auto& m : to_a) payload_to_a += m.size();
  EXPECT_LT(b->host->stats().bytes_sent, payload_to_a);
}

TEST_F(Tcp, RequestResponseRoundTrip) {
  a = std::make_unique<TcpNode>(ctx, rng);
  b = std::make_unique<TcpNode>(ctx, rng);
  RequestResponse rra(*a->host), rrb(*b->host);
  ASSERT_TRUE(
      rrb.handle(MessageType::fragments_request, [](const NodeId&, ByteSpan p, Responder r) {
        Bytes out(p.begin(), p.end());
        out.push_back('!');
        EXPECT_TRUE(r.respond(out));
      }));
  a->host->connect(b->address, {.expected_id = b->key.public_key()});
  ASSERT_TRUE(run_until(ctx, [&] { return a->host->is_connected(b->key.public_key()); }));
  std::optional<Result<Bytes>> got;
  ASSERT_TRUE(rra.request(b->key.public_key(), MessageType::fragments_request, as_bytes("blob 7"),
                          [&](Result<Bytes> r) { got = std::move(r); }));
  ASSERT_TRUE(run_until(ctx, [&] { return got.has_value(); }));
  ASSERT_TRUE(*got) << got->error().to_string();
  EXPECT_EQ(std::string(got->value().begin(), got->value().end()), "blob 7!");
}

// A raw socket to the host, driven synchronously from the test.
struct RawSocket {
  RawSocket(asio::io_context& ctx, const std::string& address) : socket(ctx) {
    const auto colon = address.rfind(':');
    socket.connect(tcp::endpoint(asio::ip::make_address(address.substr(0, colon)),
                                 static_cast<uint16_t>(std::stoi(address.substr(colon + 1)))));
    socket.non_blocking(true);
  }
  // Drains what arrived; true once the host closed the connection.
  bool closed() {
    std::array<uint8_t, 4096> buf{};
    for (;;) {
      std::error_code ec;
      const size_t n = socket.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block) return false;
      if (ec) return true;
      received += n;
    }
  }
  void send(ByteSpan b) {
    std::error_code ec;
    socket.non_blocking(false);
    asio::write(socket, asio::buffer(b.data(), b.size()), ec);
    socket.non_blocking(true);
  }
  tcp::socket socket;
  size_t received = 0;
};

TEST_F(Tcp, RandomBytesAreRefused) {
  a = std::make_unique<TcpNode>(ctx, rng);
  LogCapture logs;
  for (int i = 0; i < 5; ++i) {
    RawSocket raw(ctx, a->address);
    raw.send(cairn::test::random_bytes(rng, 2048));
    ASSERT_TRUE(run_until(
        ctx, [&] { return raw.closed(); }, 5s))
        << i;
  }
  ASSERT_TRUE(run_until(
      ctx, [&] { return a->host->stats().sessions_open == 0; }, 5s));
  EXPECT_EQ(a->host->stats().handshakes_failed, 5u);
  EXPECT_EQ(a->host->peer_count(), 0u);
}

TEST_F(Tcp, OversizeLengthPrefixIsRefused) {
  a = std::make_unique<TcpNode>(ctx, rng);
  LogCapture logs;
  RawSocket raw(ctx, a->address);
  const uint8_t huge[4] = {0x7f, 0xff, 0xff, 0xff};
  raw.send(ByteSpan(huge, 4));
  ASSERT_TRUE(run_until(
      ctx, [&] { return raw.closed(); }, 5s));
  EXPECT_TRUE(logs.contains("frame_too_large")) << logs.dump();
  ASSERT_TRUE(run_until(
      ctx, [&] { return a->host->stats().sessions_open == 0; }, 5s));
}

TEST_F(Tcp, StallingPeerIsTimedOutAndFreed) {
  P2pSettings s;
  s.handshake_timeout = 300ms;
  a = std::make_unique<TcpNode>(ctx, rng, s);
  LogCapture logs;
  RawSocket silent(ctx, a->address);
  RawSocket half(ctx, a->address);
  Bytes partial = {0, 0, 0, 200, 'c', 'a', 'i', 'r'};  // promises 200 bytes, sends 4
  half.send(partial);
  ASSERT_TRUE(run_until(
      ctx, [&] { return a->host->stats().sessions_open == 2; }, 2s));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until(
      ctx, [&] { return silent.closed() && half.closed(); }, 5s));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
  ASSERT_TRUE(run_until(
      ctx, [&] { return a->host->stats().sessions_open == 0; }, 2s));
  EXPECT_TRUE(logs.contains("handshake_timeout")) << logs.dump();
}

// Relays a -> b over TCP and flips one byte of the a -> b stream at `offset`.
class TamperingRelay {
 public:
  TamperingRelay(asio::io_context& ctx, const std::string& target, size_t offset)
      : acceptor_(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        target_(target),
        offset_(offset),
        in_(ctx),
        out_(ctx) {
    acceptor_.async_accept(in_, [this](std::error_code ec) {
      if (ec) return;
      const auto colon = target_.rfind(':');
      out_.connect(tcp::endpoint(asio::ip::make_address(target_.substr(0, colon)),
                                 static_cast<uint16_t>(std::stoi(target_.substr(colon + 1)))));
      pump(in_, out_, up_, true);
      pump(out_, in_, down_, false);
    });
  }
  std::string address() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }

 private:
  void pump(tcp::socket& from, tcp::socket& to, std::array<uint8_t, 8192>& buf, bool upstream) {
    from.async_read_some(
        asio::buffer(buf), [this, &from, &to, &buf, upstream](std::error_code ec, size_t n) {
          if (ec) {
            std::error_code ignored;
            to.shutdown(tcp::socket::shutdown_send, ignored);
            return;
          }
          if (upstream && seen_ <= offset_ && offset_ < seen_ + n) buf[offset_ - seen_] ^= 0x40;
          if (upstream) seen_ += n;
          asio::async_write(to, asio::buffer(buf.data(), n),
                            [this, &from, &to, &buf, upstream](std::error_code wec, size_t) {
                              if (!wec) pump(from, to, buf, upstream);
                            });
        });
  }
  tcp::acceptor acceptor_;
  std::string target_;
  size_t offset_;
  size_t seen_ = 0;
  tcp::socket in_, out_;
  std::array<uint8_t, 8192> up_{}, down_{};
};

TEST_F(Tcp, TamperedCiphertextOnTheWireClosesTheSession) {
  a = std::make_unique<TcpNode>(ctx, rng);
  b = std::make_unique<TcpNode>(ctx, rng);
  // a's bytes: hello record (4 + 146 + its address), auth record (4 + 88),
  // then the first frame's record; flip a byte 20 bytes into that ciphertext.
  const size_t offset = 4 + kHelloFixedBytes + a->address.size() + 4 + kAuthBytes + 4 + 20;
  TamperingRelay relay(ctx, b->address, offset);
  LogCapture logs;
  a->host->connect(relay.address(), {.expected_id = b->key.public_key()});
  ASSERT_TRUE(run_until(ctx, [&] { return b->host->is_connected(a->key.public_key()); }));
  ASSERT_TRUE(a->host->send(b->key.public_key(), kTestType, Bytes(100, 0x11)));
  ASSERT_TRUE(run_until(
      ctx, [&] { return !b->host->is_connected(a->key.public_key()); }, 5s));
  EXPECT_TRUE(b->received.empty());
  EXPECT_TRUE(logs.contains("decrypt_failed")) << logs.dump();
}

}  // namespace
}  // namespace cairn::p2p

namespace cairn::p2p {
namespace {

// Two hosts, each on its own strand of one io_context run by two threads:
// every callback runs on its host's strand, and traffic flows both ways.
TEST(TcpStrands, HostsOnStrandsOfAMultiThreadedContext) {
  auto rng = cairn::test::seeded_rng(41);
  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  asio::any_io_executor sa = asio::make_strand(ctx), sb = asio::make_strand(ctx);
  SigningKey ka = test::key_from_rng(rng), kb = test::key_from_rng(rng);
  auto ta = make_tcp_transport(sa), tb = make_tcp_transport(sb);
  Host a(sa, *ta, real_clock(), ka, {}, rng());
  Host b(sb, *tb, real_clock(), kb, {}, rng());
  std::atomic<int> off_strand{0}, got_a{0}, got_b{0};
  std::promise<std::string> bound;
  std::promise<void> connected;
  std::vector<Subscription> subs;
  auto on = [](const asio::any_io_executor& ex, auto f) { asio::post(ex, std::move(f)); };
  on(sb, [&] {
    subs.push_back(std::move(*b.on_message(kTestType, [&](const NodeId&, ByteSpan) {
      if (!sb.target<asio::strand<asio::io_context::executor_type>>()->running_in_this_thread()) {
        ++off_strand;
      }
      ++got_b;
    })));
    bound.set_value(*b.listen(loopback()));
  });
  std::thread t1([&] { ctx.run(); }), t2([&] { ctx.run(); });
  const std::string addr = bound.get_future().get();
  on(sa, [&] {
    subs.push_back(std::move(*a.on_message(kTestType, [&](const NodeId&, ByteSpan) {
      if (!sa.target<asio::strand<asio::io_context::executor_type>>()->running_in_this_thread()) {
        ++off_strand;
      }
      ++got_a;
    })));
    a.connect(addr, {.expected_id = kb.public_key()}, [&](Result<NodeId> r) {
      EXPECT_TRUE(r);
      connected.set_value();
    });
  });
  connected.get_future().get();
  // Wait until b sees a too, then send 200 frames each way from the strands.
  std::promise<void> sent;
  std::function<void()> send_b;
  on(sb, [&] {
    send_b = [&] {
      if (!b.is_connected(ka.public_key())) {
        asio::post(sb, send_b);
        return;
      }
      for (int i = 0; i < 200; ++i) ASSERT_TRUE(b.send(ka.public_key(), kTestType, Bytes(1000, 1)));
      sent.set_value();
    };
    send_b();
  });
  on(sa, [&] {
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(a.send(kb.public_key(), kTestType, Bytes(1000, 2)));
  });
  sent.get_future().get();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((got_a < 200 || got_b < 200) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(got_a.load(), 200);
  EXPECT_EQ(got_b.load(), 200);
  EXPECT_EQ(off_strand.load(), 0);
  std::promise<void> da, db;
  on(sa, [&] { a.shutdown([&] { da.set_value(); }); });
  on(sb, [&] { b.shutdown([&] { db.set_value(); }); });
  da.get_future().get();
  db.get_future().get();
  guard.reset();
  ctx.stop();
  t1.join();
  t2.join();
}

}  // namespace
}  // namespace cairn::p2p
