// `cairn bench gossip`: 30 GossipNodes on real loopback TCP in one process,
// one subnet. After the meshes form, 1,000 messages of 1 KiB are published
// from varying publishers, one every kPublishGap; every delivery is timed.
//
// Reported: delivery ratio (must be 1.0, else the workload fails), p50 / p99
// propagation latency (publish -> delivery at a subscriber, over all
// message x subscriber pairs), p50 / p99 time until a message reached every
// subscriber, p50 / p99 of the deliveries that came straight from the
// publisher (one encrypted hop under the same load), and the duplicate
// factor (copies received per first copy).
// Baseline, same run: one-hop latency of a 1 KiB message between two plain
// loopback TCP sockets (ping-pong, half the round trip), so the gossip
// figures read as "this many raw hops".
//
// All 30 nodes share one io_context thread, so a propagation includes every
// node's decrypt / validate / re-encrypt on that thread: the latency is a
// property of the whole simulated network on one core, not of one node.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "cairn/core/log.hpp"
#include "cairn/p2p/gossip_node.hpp"
#include "cairn/p2p/host.hpp"

namespace cairn::bench {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr size_t kNodes = 30;
constexpr size_t kMessages = 1000;
constexpr size_t kMessageBytes = 1024;
// One publish every 10 ms: 100 messages/s into a 30-node mesh is ~20,000
// encrypted frames received per second on the one thread that runs all 30
// nodes. At 2 ms (500/s) that thread saturates and the figures measure its
// backlog (p50 ~1 s), not propagation.
constexpr auto kPublishGap = 10ms;
constexpr auto kMeshTimeout = 60s;
constexpr auto kDeliveryTimeout = 30s;
const ShardId kShard{0};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// One-way latency of `samples` 1 KiB messages between two plain loopback TCP
// sockets: an echo thread answers each message, the sender times the round
// trip and halves it. Milliseconds per sample.
Result<std::vector<double>> raw_tcp_one_hop(size_t samples, size_t bytes) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) return make_error(Errc::io_error, "bench gossip baseline: socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listener);
    return make_error(Errc::io_error, "bench gossip baseline: cannot listen on 127.0.0.1");
  }
  // Moves exactly n bytes through `io` (::read or ::write); false on EOF/error.
  auto all = [](auto io, int fd, auto* p, size_t n) {
    while (n > 0) {
      const ssize_t r = io(fd, p, n);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  };
  auto read_all = [&](int fd, uint8_t* p, size_t n) { return all(::read, fd, p, n); };
  auto write_all = [&](int fd, const uint8_t* p, size_t n) { return all(::write, fd, p, n); };
  std::thread echo([&] {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Bytes buf(bytes);
    while (read_all(fd, buf.data(), buf.size()) && write_all(fd, buf.data(), buf.size())) {
    }
    ::close(fd);
  });
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  std::vector<double> out;
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Bytes msg(bytes, 0x5a), back(bytes);
    for (size_t i = 0; i < samples; ++i) {
      const auto t0 = Clock::now();
      if (!write_all(fd, msg.data(), msg.size()) || !read_all(fd, back.data(), back.size())) break;
      out.push_back(ms_between(t0, Clock::now()) / 2);
    }
  }
  if (fd >= 0) ::close(fd);
  echo.join();
  ::close(listener);
  if (out.size() != samples) return make_error(Errc::io_error, "bench gossip baseline: loopback echo failed");
  return out;
}

struct Run {
  std::vector<Clock::time_point> published;               // per message
  std::vector<std::vector<Clock::time_point>> delivered;  // per message, per delivery
  std::vector<double> first_hop;                          // ms, deliveries straight from the publisher
  std::vector<NodeId> publisher;                          // per message
  std::map<p2p::MessageId, size_t> index;                 // message id -> message number
  double mesh_ms = 0;
  double duplicate_factor = 0;
  double mean_mesh_degree = 0;
  uint64_t send_dropped = 0;
};

Result<Run> run_gossip(const Options& opts) {
  const auto previous_level = log::threshold();
  log::set_threshold(log::Level::error);
  struct RestoreLog {
    log::Level level;
    ~RestoreLog() { log::set_threshold(level); }
  } restore{previous_level};

  asio::io_context ctx;
  const asio::any_io_executor ex = ctx.get_executor();
  std::mt19937_64 rng(opts.seed);
  Run run;
  run.published.resize(kMessages);
  run.delivered.resize(kMessages);
  run.publisher.resize(kMessages);

  std::vector<std::unique_ptr<p2p::GossipNode>> nodes;
  std::string bootstrap;
  for (size_t i = 0; i < kNodes; ++i) {
    p2p::GossipNodeSettings s;
    s.listen_address = "127.0.0.1:0";
    s.shards = {kShard};
    if (i > 0) s.discovery.bootstrap = {bootstrap};
    std::array<uint8_t, 32> seed{};
    for (size_t b = 0; b < seed.size(); b += 8) put_be<uint64_t>(seed.data() + b, rng());
    auto node = std::make_unique<p2p::GossipNode>(ex, p2p::make_tcp_transport(ex), p2p::real_clock(),
                                                  SigningKey::from_seed(seed), s, rng());
    node->set_handler([&run](const p2p::GossipDeliver& d) {
      auto it = run.index.find(d.id);
      if (it == run.index.end()) return;
      const auto now = Clock::now();
      run.delivered[it->second].push_back(now);
      if (d.from == run.publisher[it->second]) {
        run.first_hop.push_back(ms_between(run.published[it->second], now));
      }
    });
    auto bound = node->start();
    if (!bound)
      return make_error(bound.error().code, "bench gossip: node " + std::to_string(i) + ": " + bound.error().message);
    if (i == 0) bootstrap = *bound;
    nodes.push_back(std::move(node));
  }

  auto run_until = [&](const std::function<bool()>& done, Clock::duration limit) {
    const auto end = Clock::now() + limit;
    while (!done() && Clock::now() < end) ctx.run_for(5ms);
    return done();
  };
  auto meshes_ready = [&] {
    for (const auto& n : nodes) {
      const size_t d = n->router().mesh(kShard).size();
      if (d < n->router().settings().mesh_degree_low || d > n->router().settings().mesh_degree_high) {
        return false;
      }
    }
    return true;
  };
  const auto t_mesh = Clock::now();
  if (!run_until(meshes_ready, kMeshTimeout)) {
    return make_error(Errc::timeout, "bench gossip: meshes did not form within 60 s");
  }
  run.mesh_ms = ms_between(t_mesh, Clock::now());
  // Settle: let the heartbeat that formed the meshes finish its grafts.
  run_until([] { return false; }, 2s);

  for (size_t m = 0; m < kMessages; ++m) {
    Bytes data(kMessageBytes);
    for (size_t b = 0; b < data.size(); b += 8) put_be<uint64_t>(data.data() + b, rng());
    put_be<uint64_t>(data.data(), m);  // distinct even if the rng repeated
    const size_t from = static_cast<size_t>(rng() % kNodes);
    const auto id = p2p::gossip_message_id(kShard, data);
    run.index[id] = m;
    run.publisher[m] = nodes[from]->id();
    run.published[m] = Clock::now();
    auto r = nodes[from]->publish(kShard, std::move(data));
    if (!r) return make_error(r.error().code, "bench gossip: publish: " + r.error().message);
    const auto next = run.published[m] + kPublishGap;
    while (Clock::now() < next) ctx.run_for(next - Clock::now());
  }
  auto all_delivered = [&] {
    for (const auto& d : run.delivered) {
      if (d.size() < kNodes - 1) return false;
    }
    return true;
  };
  run_until(all_delivered, kDeliveryTimeout);
  run_until([] { return false; }, 500ms);  // late duplicates, for the factor

  uint64_t copies = 0, first = 0;
  size_t degrees = 0;
  for (const auto& n : nodes) {
    copies += n->router().stats().received;
    first += n->router().stats().first_received;
    degrees += n->router().mesh(kShard).size();
    run.send_dropped += n->stats().send_dropped;
  }
  run.duplicate_factor = first == 0 ? 0 : static_cast<double>(copies) / static_cast<double>(first);
  run.mean_mesh_degree = static_cast<double>(degrees) / static_cast<double>(kNodes);

  size_t stopped = 0;
  for (auto& n : nodes) n->stop([&stopped] { ++stopped; });
  run_until([&] { return stopped == nodes.size(); }, 5s);
  nodes.clear();
  ctx.poll();
  return run;
}

Result<nlohmann::json> run_workload(const Options& opts) {
  auto run = run_gossip(opts);
  if (!run) return tl::unexpected(run.error());
  auto baseline = raw_tcp_one_hop(kMessages, kMessageBytes);
  if (!baseline) return tl::unexpected(baseline.error());

  std::vector<double> latency, full;
  size_t deliveries = 0;
  for (size_t m = 0; m < kMessages; ++m) {
    deliveries += run->delivered[m].size();
    Clock::time_point last = run->published[m];
    for (const auto& t : run->delivered[m]) {
      latency.push_back(ms_between(run->published[m], t));
      last = std::max(last, t);
    }
    if (run->delivered[m].size() == kNodes - 1) full.push_back(ms_between(run->published[m], last));
  }
  const double ratio = static_cast<double>(deliveries) / static_cast<double>(kMessages * (kNodes - 1));
  const double base_p50 = percentile(*baseline, 0.5);
  const double ours_p50 = percentile(latency, 0.5);
  nlohmann::json out{
      {"workload", "gossip"},
      {"unit", "ms"},
      {"nodes", kNodes},
      {"messages", kMessages},
      {"message_bytes", kMessageBytes},
      {"publish_gap_ms", std::chrono::duration<double, std::milli>(kPublishGap).count()},
      {"delivery_ratio", ratio},
      {"duplicate_factor", run->duplicate_factor},
      {"mean_mesh_degree", run->mean_mesh_degree},
      {"mesh_formed_ms", run->mesh_ms},
      {"send_dropped", run->send_dropped},
      {"ours",
       {{"name", "gossip propagation, publish -> each subscriber (30 nodes, loopback TCP, 1 thread)"},
        {"p50", ours_p50},
        {"p99", percentile(latency, 0.99)},
        {"all_subscribers_p50", percentile(full, 0.5)},
        {"all_subscribers_p99", percentile(full, 0.99)},
        {"first_hop_p50", percentile(run->first_hop, 0.5)},
        {"first_hop_p99", percentile(run->first_hop, 0.99)}}},
      {"baseline",
       {{"name", "raw loopback TCP one hop, 1 KiB (half a ping-pong)"},
        {"p50", base_p50},
        {"p99", percentile(*baseline, 0.99)}}},
      {"ratio", base_p50 > 0 ? ours_p50 / base_p50 : 0.0},
  };
  if (ratio < 1.0) {
    return make_error(Errc::internal,
                      "bench gossip: delivery ratio " + std::to_string(ratio) + " < 1.0: " + out.dump());
  }
  return out;
}

}  // namespace

Workload gossip_workload() {
  return Workload{"gossip",
                  "30 nodes, one subnet, loopback TCP: 1,000 x 1 KiB gossip messages; delivery, "
                  "latency p50/p99, duplicates vs raw one-hop TCP",
                  run_workload};
}

}  // namespace cairn::bench
