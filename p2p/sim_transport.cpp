// In-memory transport with a link model (see sim_transport.hpp).

#include "cairn/p2p/sim_transport.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <unordered_map>

#include "cairn/p2p/tcp_address.hpp"

namespace cairn::p2p {
namespace {

struct EndState;

struct Segment {
  Bytes data;
  bool fin = false;
  bool scheduled = false;  // false: held back by a partition or a silent crash
  TimePoint deliver_at{};
};

// One direction of a connection: bytes written at `writer` travel to `reader`.
struct Pipe {
  std::string from, to;  // node names
  std::weak_ptr<EndState> writer, reader;
  std::deque<Segment> wire;  // in delivery order
  size_t outstanding = 0;    // on the wire plus unread at the reader (the window)
  TimePoint last_delivery{};
  std::unique_ptr<Timer> timer;
};

struct PendingRead {
  MutableByteSpan buf;
  IoHandler handler;
};
struct PendingWrite {
  Bytes data;
  IoHandler handler;
};

}  // namespace

struct SimNetwork::Impl : std::enable_shared_from_this<SimNetwork::Impl> {
  Impl(const asio::any_io_executor& e, Clock& c, uint64_t seed, LinkModel def)
      : ex(e), clock(c), rng(seed), default_link(def) {}

  struct Listener {
    std::string node;
    uint64_t transport = 0;
    AcceptHandler on_accept;
  };
  struct Connect {
    uint64_t transport = 0;
    std::string from, address;
    ConnectHandler handler;
    bool stalled = false;
  };

  asio::any_io_executor ex;
  Clock& clock;
  std::mt19937_64 rng;
  LinkModel default_link;
  std::map<std::pair<std::string, std::string>, LinkModel> links;
  std::map<std::pair<std::string, std::string>, TimePoint> link_free;
  std::unordered_map<std::string, int> group;  // partition groups; absent: -1
  bool partitioned = false;
  std::set<std::string> crashed_silent, crashed_reset, nodes;
  std::map<std::string, Listener> listeners;  // by address
  std::unordered_map<std::string, uint16_t> next_port, next_ephemeral;
  std::map<ConnectId, Connect> connects;
  ConnectId next_connect = 1;
  uint64_t next_transport = 1;
  std::vector<std::weak_ptr<Pipe>> pipes;
  std::vector<std::weak_ptr<EndState>> ends;
  std::map<uint64_t, std::unique_ptr<Timer>> scheduled;
  uint64_t next_scheduled = 1;
  SimNetworkStats stats;

  const LinkModel& link(const std::string& from, const std::string& to) const {
    auto it = links.find({from, to});
    return it == links.end() ? default_link : it->second;
  }

  bool blocked(const std::string& a, const std::string& b) const {
    if (crashed_silent.count(a) != 0 || crashed_silent.count(b) != 0) return true;
    if (!partitioned) return false;
    auto ga = group.find(a), gb = group.find(b);
    return (ga == group.end() ? -1 : ga->second) != (gb == group.end() ? -1 : gb->second);
  }

  // Runs `fn` on the executor after `d` of clock time.
  void after(Duration d, std::function<void()> fn) {
    const uint64_t id = next_scheduled++;
    auto t = clock.make_timer(ex);
    t->expires_after(d, [weak = weak_from_this(), id, fn = std::move(fn)] {
      auto self = weak.lock();
      if (!self) return;
      auto node = self->scheduled.extract(id);  // keep the timer alive until fn returns
      fn();
    });
    scheduled.emplace(id, std::move(t));
  }

  void post(IoHandler h, std::error_code ec, size_t n) {
    asio::post(ex, [h = std::move(h), ec, n] { h(ec, n); });
  }

  void schedule_segment(Pipe& p, Segment& s) {
    const LinkModel& m = link(p.from, p.to);
    const TimePoint now = clock.now();
    auto& free = link_free[{p.from, p.to}];
    const TimePoint start = std::max(now, free);
    Duration tx{};
    if (m.bandwidth_bytes_per_second > 0) {
      tx = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(
          static_cast<double>(s.data.size()) / m.bandwidth_bytes_per_second));
    }
    free = start + tx;
    int losses = 0;
    if (m.drop_probability > 0) {
      std::uniform_real_distribution<double> u(0.0, 1.0);
      while (losses < 32 && u(rng) < m.drop_probability) ++losses;
      stats.segments_dropped += static_cast<uint64_t>(losses);
    }
    Duration jit{};
    if (m.jitter > Duration::zero()) {
      std::uniform_int_distribution<Duration::rep> u(0, m.jitter.count());
      jit = Duration(u(rng));
    }
    TimePoint t = start + tx + m.latency + jit + losses * m.retransmit_timeout;
    t = std::max(t, p.last_delivery);
    p.last_delivery = t;
    s.deliver_at = t;
    s.scheduled = true;
  }

  void arm(const std::shared_ptr<Pipe>& p) {
    if (p->wire.empty() || !p->wire.front().scheduled) return;
    if (!p->timer) p->timer = clock.make_timer(ex);
    p->timer->expires_after(p->wire.front().deliver_at - clock.now(),
                            [weak = std::weak_ptr<Pipe>(p), self = weak_from_this()] {
                              auto pipe = weak.lock();
                              auto net = self.lock();
                              if (pipe && net) net->drain(pipe);
                            });
  }

  void transmit(const std::shared_ptr<Pipe>& p, Segment s) {
    const bool hold = blocked(p->from, p->to) || (!p->wire.empty() && !p->wire.back().scheduled);
    if (!hold) schedule_segment(*p, s);
    const bool was_idle = p->wire.empty();
    p->wire.push_back(std::move(s));
    if (was_idle) arm(p);
  }

  void drain(const std::shared_ptr<Pipe>& p);
  void deliver(const std::shared_ptr<Pipe>& p, Segment s);
  void consumed(const std::shared_ptr<Pipe>& p, size_t n);
  void try_write(const std::shared_ptr<EndState>& e);
  void heal();
  void connect_now(ConnectId id);
};

namespace {

struct EndState : std::enable_shared_from_this<EndState> {
  std::shared_ptr<SimNetwork::Impl> net;
  std::string node, local, remote;
  std::shared_ptr<Pipe> out, in;
  std::deque<Bytes> rx;
  size_t rx_offset = 0;  // consumed bytes of rx.front()
  size_t unread = 0;
  std::optional<PendingRead> read;
  std::optional<PendingWrite> write;
  bool closed = false, eof = false, reset = false, dead = false;

  void complete_read() {
    if (!read) return;
    if (unread > 0) {
      PendingRead r = std::move(*read);
      read.reset();
      size_t n = 0;
      while (n < r.buf.size() && !rx.empty()) {
        Bytes& front = rx.front();
        const size_t k = std::min(r.buf.size() - n, front.size() - rx_offset);
        std::memcpy(r.buf.data() + n, front.data() + rx_offset, k);
        n += k;
        rx_offset += k;
        if (rx_offset == front.size()) {
          rx.pop_front();
          rx_offset = 0;
        }
      }
      unread -= n;
      net->post(std::move(r.handler), {}, n);
      net->consumed(in, n);
      return;
    }
    if (reset) {
      auto h = std::move(read->handler);
      read.reset();
      net->post(std::move(h), asio::error::connection_reset, 0);
    } else if (eof) {
      auto h = std::move(read->handler);
      read.reset();
      net->post(std::move(h), asio::error::eof, 0);
    }
  }
};

class SimStream final : public Stream {
 public:
  explicit SimStream(std::shared_ptr<EndState> e) : e_(std::move(e)) {
    ++e_->net->stats.streams_open;
  }
  ~SimStream() override {
    close();
    --e_->net->stats.streams_open;
  }

  void async_read_some(MutableByteSpan buffer, IoHandler handler) override {
    auto& net = *e_->net;
    if (e_->closed) return net.post(std::move(handler), asio::error::operation_aborted, 0);
    if (buffer.empty()) return net.post(std::move(handler), {}, 0);
    e_->read = PendingRead{buffer, std::move(handler)};
    if (!e_->dead) e_->complete_read();
  }

  void async_write(std::span<const ByteSpan> buffers, IoHandler handler) override {
    auto& net = *e_->net;
    if (e_->closed) return net.post(std::move(handler), asio::error::operation_aborted, 0);
    if (e_->reset) return net.post(std::move(handler), asio::error::connection_reset, 0);
    size_t total = 0;
    for (const auto& b : buffers) total += b.size();
    if (e_->dead) return net.post(std::move(handler), {}, total);  // into the void
    Bytes data;
    data.reserve(total);
    for (const auto& b : buffers) data.insert(data.end(), b.begin(), b.end());
    e_->write = PendingWrite{std::move(data), std::move(handler)};
    net.try_write(e_);
  }

  void close() noexcept override {
    if (e_->closed) return;
    auto& net = *e_->net;
    e_->closed = true;
    if (e_->read) {
      net.post(std::move(e_->read->handler), asio::error::operation_aborted, 0);
      e_->read.reset();
    }
    if (e_->write) {
      net.post(std::move(e_->write->handler), asio::error::operation_aborted, 0);
      e_->write.reset();
    }
    // Unread data is dropped; the writer's window opens again.
    const size_t dropped = e_->unread;
    e_->rx.clear();
    e_->unread = 0;
    net.consumed(e_->in, dropped);
    if (!e_->dead && !e_->reset) {
      Segment fin;
      fin.fin = true;
      net.transmit(e_->out, std::move(fin));
    }
  }

  std::string remote_address() const override { return e_->remote; }
  std::string local_address() const override { return e_->local; }

 private:
  std::shared_ptr<EndState> e_;
};

}  // namespace

void SimNetwork::Impl::drain(const std::shared_ptr<Pipe>& p) {
  const TimePoint now = clock.now();
  while (!p->wire.empty() && p->wire.front().scheduled && p->wire.front().deliver_at <= now) {
    if (blocked(p->from, p->to)) {
      for (auto& s : p->wire) s.scheduled = false;  // wait for heal(), in order
      break;
    }
    Segment s = std::move(p->wire.front());
    p->wire.pop_front();
    deliver(p, std::move(s));
  }
  arm(p);
}

void SimNetwork::Impl::deliver(const std::shared_ptr<Pipe>& p, Segment s) {
  auto r = p->reader.lock();
  const size_t n = s.data.size();
  if (!r || r->closed || r->reset || r->dead) {
    consumed(p, n);  // lost with its reader; the writer is not held up by it
    return;
  }
  ++stats.segments_delivered;
  if (s.fin) {
    r->eof = true;
  } else {
    stats.bytes_delivered += n;
    r->unread += n;
    r->rx.push_back(std::move(s.data));
  }
  r->complete_read();
}

void SimNetwork::Impl::consumed(const std::shared_ptr<Pipe>& p, size_t n) {
  if (!p || n == 0) return;
  p->outstanding -= std::min(p->outstanding, n);
  if (auto w = p->writer.lock(); w && w->write) try_write(w);
}

void SimNetwork::Impl::try_write(const std::shared_ptr<EndState>& e) {
  if (!e->write || e->closed) return;
  Pipe& p = *e->out;
  const size_t n = e->write->data.size();
  const size_t window = link(p.from, p.to).window_bytes;
  if (p.outstanding > 0 && p.outstanding + n > window) return;  // wait for the reader
  PendingWrite w = std::move(*e->write);
  e->write.reset();
  p.outstanding += n;
  Segment s;
  s.data = std::move(w.data);
  transmit(e->out, std::move(s));
  post(std::move(w.handler), {}, n);
}

void SimNetwork::Impl::heal() {
  partitioned = false;
  group.clear();
  for (auto& w : pipes) {
    auto p = w.lock();
    if (!p || blocked(p->from, p->to)) continue;
    const bool was_head_held = !p->wire.empty() && !p->wire.front().scheduled;
    for (auto& s : p->wire) {
      if (!s.scheduled) schedule_segment(*p, s);
    }
    if (was_head_held) arm(p);
  }
  pipes.erase(std::remove_if(pipes.begin(), pipes.end(), [](auto& w) { return w.expired(); }),
              pipes.end());
  std::vector<ConnectId> stalled;
  for (auto& [id, c] : connects) {
    if (c.stalled) stalled.push_back(id);
  }
  for (auto id : stalled) connect_now(id);
}

void SimNetwork::Impl::connect_now(ConnectId id) {
  auto it = connects.find(id);
  if (it == connects.end()) return;
  Connect& c = it->second;
  c.stalled = false;
  auto parsed = parse_tcp_address(c.address);
  const std::string to = parsed ? parsed->host : std::string();
  auto finish = [this, id](Result<std::unique_ptr<Stream>> r) {
    auto cit = connects.find(id);
    if (cit == connects.end()) return;
    auto h = std::move(cit->second.handler);
    connects.erase(cit);
    asio::post(ex, [h = std::move(h), r = std::move(r)]() mutable { h(std::move(r)); });
  };
  if (!parsed) {
    finish(tl::unexpected(parsed.error()));
    return;
  }
  if (crashed_silent.count(c.from) != 0 || crashed_reset.count(c.from) != 0) {
    finish(make_error(Errc::io_error, "node " + c.from + " has crashed"));
    return;
  }
  if (blocked(c.from, to)) {
    c.stalled = true;  // SYNs vanish; the caller's timeout cancels us
    return;
  }
  const Duration latency = link(c.from, to).latency;
  // The SYN reaches the listener after one latency; the answer returns after two.
  after(latency, [this, id, to, latency, finish] {
    auto cit = connects.find(id);
    if (cit == connects.end()) return;
    const Connect& cc = cit->second;
    auto lit = listeners.find(cc.address);
    if (lit == listeners.end() || crashed_reset.count(to) != 0) {
      ++stats.connects_refused;
      after(latency, [finish, address = cc.address] {
        finish(make_error(Errc::io_error, "connection refused by " + address));
      });
      return;
    }
    auto self = shared_from_this();
    auto client = std::make_shared<EndState>();
    auto server = std::make_shared<EndState>();
    client->net = server->net = self;
    client->node = cc.from;
    server->node = to;
    client->local = cc.from + ":" + std::to_string(next_ephemeral[cc.from]++ + 49152u);
    client->remote = cc.address;
    server->local = cc.address;
    server->remote = client->local;
    auto up = std::make_shared<Pipe>(), down = std::make_shared<Pipe>();
    up->from = down->to = cc.from;
    up->to = down->from = to;
    up->writer = client;
    up->reader = server;
    down->writer = server;
    down->reader = client;
    client->out = server->in = up;
    client->in = server->out = down;
    pipes.push_back(up);
    pipes.push_back(down);
    ends.push_back(client);
    ends.push_back(server);
    lit->second.on_accept(std::make_unique<SimStream>(server));
    after(latency, [finish, client] { finish(std::make_unique<SimStream>(client)); });
  });
}

namespace {

class SimTransport final : public Transport {
 public:
  SimTransport(std::shared_ptr<SimNetwork::Impl> net, std::string name)
      : net_(std::move(net)), name_(std::move(name)), id_(net_->next_transport++) {}
  ~SimTransport() override { close(); }

  Result<std::string> listen(const std::string& address, AcceptHandler on_accept) override {
    auto parsed = parse_tcp_address(address);
    if (!parsed) return tl::unexpected(parsed.error());
    if (parsed->host != name_) {
      return make_error(Errc::invalid_argument, "node " + name_ + " cannot listen on " + address);
    }
    uint16_t port = parsed->port;
    if (port == 0) {
      auto& next = net_->next_port[name_];
      do {
        port = ++next;
      } while (net_->listeners.count(name_ + ":" + std::to_string(port)) != 0);
    }
    const std::string bound = name_ + ":" + std::to_string(port);
    if (net_->listeners.count(bound) != 0) {
      return make_error(Errc::io_error, "cannot listen on " + bound + ": address in use");
    }
    net_->listeners[bound] = {name_, id_, std::move(on_accept)};
    return bound;
  }

  ConnectId connect(const std::string& address, ConnectHandler handler) override {
    const ConnectId id = net_->next_connect++;
    net_->connects[id] = {id_, name_, address, std::move(handler), false};
    net_->connect_now(id);
    return id;
  }

  void cancel_connect(ConnectId id) noexcept override {
    auto it = net_->connects.find(id);
    if (it == net_->connects.end()) return;
    auto h = std::move(it->second.handler);
    net_->connects.erase(it);
    asio::post(net_->ex,
               [h = std::move(h)] { h(make_error(Errc::cancelled, "connect cancelled")); });
  }

  void close() noexcept override {
    for (auto it = net_->listeners.begin(); it != net_->listeners.end();) {
      it = it->second.transport == id_ ? net_->listeners.erase(it) : std::next(it);
    }
    std::vector<ConnectId> mine;
    for (auto& [cid, c] : net_->connects) {
      if (c.transport == id_) mine.push_back(cid);
    }
    for (auto cid : mine) cancel_connect(cid);
  }

 private:
  std::shared_ptr<SimNetwork::Impl> net_;
  std::string name_;
  uint64_t id_;
};

}  // namespace

SimNetwork::SimNetwork(const asio::any_io_executor& executor, Clock& clock, uint64_t seed,
                       LinkModel default_link)
    : impl_(std::make_shared<Impl>(executor, clock, seed, default_link)) {}

SimNetwork::~SimNetwork() = default;

std::unique_ptr<Transport> SimNetwork::make_transport(const std::string& name) {
  impl_->nodes.insert(name);
  return std::make_unique<SimTransport>(impl_, name);
}

void SimNetwork::set_default_link(const LinkModel& link) { impl_->default_link = link; }

void SimNetwork::set_link(const std::string& from, const std::string& to, const LinkModel& link) {
  impl_->links[{from, to}] = link;
}

void SimNetwork::partition(const std::vector<std::vector<std::string>>& groups) {
  impl_->group.clear();
  for (size_t g = 0; g < groups.size(); ++g) {
    for (const auto& n : groups[g]) impl_->group[n] = static_cast<int>(g);
  }
  impl_->partitioned = true;
}

void SimNetwork::heal() { impl_->heal(); }

void SimNetwork::crash(const std::string& name, bool reset) {
  auto& im = *impl_;
  (reset ? im.crashed_reset : im.crashed_silent).insert(name);
  for (auto it = im.listeners.begin(); it != im.listeners.end();) {
    it = it->second.node == name ? im.listeners.erase(it) : std::next(it);
  }
  for (auto& w : im.ends) {
    auto e = w.lock();
    if (!e || e->node != name) continue;
    e->dead = true;
    if (!reset) continue;
    // The survivors' kernels answer the next segment with a reset.
    if (auto peer = e->out ? e->out->reader.lock() : nullptr) {
      im.after(im.link(name, peer->node).latency, [peer] {
        if (peer->closed || peer->reset) return;
        peer->reset = true;
        peer->rx.clear();
        peer->unread = 0;
        peer->complete_read();
        if (peer->write) {
          auto h = std::move(peer->write->handler);
          peer->write.reset();
          peer->net->post(std::move(h), asio::error::connection_reset, 0);
        }
      });
    }
  }
  im.ends.erase(std::remove_if(im.ends.begin(), im.ends.end(), [](auto& w) { return w.expired(); }),
                im.ends.end());
}

SimNetworkStats SimNetwork::stats() const { return impl_->stats; }

}  // namespace cairn::p2p
