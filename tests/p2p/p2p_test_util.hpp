#pragma once
// Helpers for p2p tests: deterministic keys, a simulated network of Hosts on
// one io_context under a ManualClock, and a log capture.

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cairn/core/log.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/p2p/sim_transport.hpp"
#include "support/test_util.hpp"

namespace cairn::p2p::test {

// The message type the host tests exchange (outside the protocol's types).
inline constexpr auto kTestType = static_cast<MessageType>(0xf001);

inline SigningKey key_from_rng(std::mt19937_64& rng) {
  std::array<uint8_t, 32> seed{};
  for (size_t i = 0; i < seed.size(); i += 8) put_be<uint64_t>(seed.data() + i, rng());
  return SigningKey::from_seed(seed);
}

// Settings for simulations: short, round numbers so assertions on exact
// virtual times read easily.
inline P2pSettings sim_settings() {
  P2pSettings s;
  s.handshake_timeout = std::chrono::seconds(5);
  s.connect_timeout = std::chrono::seconds(3);
  s.ping_interval = std::chrono::seconds(10);
  s.idle_timeout = std::chrono::seconds(30);
  s.reconnect_base = std::chrono::seconds(1);
  s.reconnect_max = std::chrono::seconds(16);
  s.reconnect_jitter = 0;
  s.request_timeout = std::chrono::seconds(2);
  return s;
}

struct SimNode {
  std::string name;
  std::unique_ptr<SigningKey> key;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Host> host;
  std::string address;
  const NodeId& id() const { return key->public_key(); }
};

class SimWorld {
 public:
  explicit SimWorld(uint64_t salt = 0, LinkModel link = {})
      : rng(cairn::test::seeded_rng(salt)),
        clock(ctx),
        net(ctx.get_executor(), clock, rng(), link) {}

  ~SimWorld() {
    for (auto& n : nodes) {
      if (n->host) n->host->shutdown();
    }
    clock.advance(std::chrono::seconds(5));
    nodes.clear();
    clock.settle();
  }

  SimNode& add(const std::string& name, P2pSettings s = sim_settings(), bool listen = true) {
    auto n = std::make_unique<SimNode>();
    n->name = name;
    n->key = std::make_unique<SigningKey>(key_from_rng(rng));
    n->transport = net.make_transport(name);
    n->host = std::make_unique<Host>(ctx.get_executor(), *n->transport, clock, *n->key, s, rng());
    if (listen) {
      auto a = n->host->listen(name + ":1");
      if (a) n->address = *a;
    }
    nodes.push_back(std::move(n));
    return *nodes.back();
  }

  // Dials b from a (expecting b's id) and runs the clock until both see it.
  bool link(SimNode& a, SimNode& b, ConnectOptions o = {}) {
    if (!o.expected_id) o.expected_id = b.id();
    a.host->connect(b.address, o);
    return clock.run_until(
        [&] { return a.host->is_connected(b.id()) && b.host->is_connected(a.id()); },
        std::chrono::seconds(10));
  }

  std::mt19937_64 rng;
  asio::io_context ctx;
  ManualClock clock;
  SimNetwork net;
  std::vector<std::unique_ptr<SimNode>> nodes;
};

// Captures log lines while alive.
class LogCapture {
 public:
  LogCapture() {
    previous_level_ = log::threshold();
    log::set_threshold(log::Level::debug);
    previous_ = log::set_sink([this](log::Level, std::string_view module, std::string_view msg) {
      std::lock_guard lock(mu_);
      lines_.push_back(std::string(module) + ": " + std::string(msg));
    });
  }
  ~LogCapture() {
    log::set_sink(std::move(previous_));
    log::set_threshold(previous_level_);
  }
  bool contains(std::string_view needle) const {
    std::lock_guard lock(mu_);
    for (const auto& l : lines_) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  std::string dump() const {
    std::lock_guard lock(mu_);
    std::string s;
    for (const auto& l : lines_) s += l + "\n";
    return s;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  log::Sink previous_;
  log::Level previous_level_;
};

inline std::chrono::milliseconds ms(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

}  // namespace cairn::p2p::test
