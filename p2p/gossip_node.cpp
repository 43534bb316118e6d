#include "cairn/p2p/gossip_node.hpp"

#include <asio/any_io_executor.hpp>

#include <random>

#include "cairn/core/log.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/p2p/identity.hpp"

namespace cairn::p2p {

Status validate(const GossipNodeSettings& s) {
  CAIRN_TRY_STATUS(validate(s.gossip));
  CAIRN_TRY_STATUS(validate(s.discovery));
  if (s.gossip.max_rpc_bytes > s.p2p.max_frame_payload) {
    return make_error(Errc::invalid_argument,
                      "gossip settings: max_rpc_bytes must not exceed p2p max_frame_payload");
  }
  if (s.graylist_penalty < 0 || s.malformed_px_penalty < 0) {
    return make_error(Errc::invalid_argument, "gossip node settings: penalties must be >= 0");
  }
  return {};
}

// Impl is shared so that callbacks handed to the Host can hold a weak
// reference: a dial result arriving after the node is gone is dropped.
struct GossipNode::Impl : std::enable_shared_from_this<GossipNode::Impl> {
  asio::any_io_executor executor;
  std::unique_ptr<Transport> transport;
  Clock& clock;
  GossipNodeSettings settings;
  Host host;
  GossipRouter router;
  Discovery discovery;
  std::unique_ptr<Timer> heartbeat_timer;
  Duration first_heartbeat;
  std::vector<Subscription> subscriptions;
  Handler handler;
  GossipNodeStats stats;
  std::string address;
  bool started = false;
  bool stopped = false;

  static uint64_t derive(uint64_t seed, uint64_t salt) {
    std::seed_seq seq{seed, salt};
    uint64_t out[1];
    seq.generate(out, out + 1);
    return out[0];
  }

  Impl(const asio::any_io_executor& ex, std::unique_ptr<Transport> t, Clock& c,
       const SigningKey& identity, GossipNodeSettings s, uint64_t seed, EndpointSource* chain)
      : executor(ex),
        transport(std::move(t)),
        clock(c),
        settings(std::move(s)),
        host(executor, *transport, clock, identity, settings.p2p, derive(seed, 1)),
        router(identity.public_key(), settings.gossip, derive(seed, 2)),
        discovery(identity.public_key(), settings.p2p.advertised_address, settings.shards,
                  settings.discovery, derive(seed, 3), chain) {
    // A random phase, so nodes started together do not heartbeat in lockstep.
    std::mt19937_64 rng(derive(seed, 4));
    const auto interval = std::chrono::duration_cast<Duration>(settings.gossip.heartbeat_interval);
    first_heartbeat = Duration(static_cast<Duration::rep>(
        rng() % static_cast<uint64_t>(std::max<Duration::rep>(interval.count(), 1))));
  }

  TimePoint now() const { return clock.now(); }

  // An encoding failure is a bug in this node (the router and discovery
  // only build in-limit payloads): logged, never sent.
  void send_frame(const NodeId& peer, MessageType type, const Result<Bytes>& bytes) {
    if (!bytes) {
      CAIRN_LOG(log::Level::error, "gossip",
                "cannot encode " << message_type_name(type) << ": " << bytes.error().to_string());
      return;
    }
    if (host.send(peer, type, *bytes)) {
      ++stats.frames_sent;
    } else {
      ++stats.send_dropped;
    }
  }

  void pump() {
    // Outputs may cause more inputs only asynchronously (Host callbacks never
    // run inside send/connect), so one pass over each queue suffices.
    for (auto& out : router.take_outputs()) {
      if (auto* send = std::get_if<GossipSend>(&out)) {
        send_frame(send->peer, MessageType::gossip_rpc, encode_gossip_rpc(send->rpc));
      } else if (auto* deliver = std::get_if<GossipDeliver>(&out)) {
        if (handler) {
          ++stats.handler_calls;
          handler(*deliver);
        }
      } else if (auto* drop = std::get_if<GossipDisconnect>(&out)) {
        CAIRN_LOG(log::Level::info, "gossip",
                  "disconnecting " << short_id(drop->peer) << ": " << drop->reason << " (score "
                                   << drop->score << ")");
        host.adjust_score(drop->peer, -settings.graylist_penalty, drop->reason);
        host.disconnect(drop->peer, DisconnectReason::protocol_error, drop->reason);
      }
    }
    for (auto& out : discovery.take_outputs()) {
      if (auto* dial = std::get_if<DiscoveryDial>(&out)) {
        ConnectOptions opts;
        opts.expected_id = dial->expected;
        std::weak_ptr<Impl> weak = weak_from_this();
        host.connect(dial->address, opts, [weak, address = dial->address](Result<NodeId> r) {
          auto self = weak.lock();
          if (!self || self->stopped) return;
          self->discovery.dial_result(address, r, self->now());
          self->pump();
        });
      } else if (auto* send = std::get_if<DiscoverySend>(&out)) {
        send_frame(send->peer, MessageType::peer_exchange, encode_peer_exchange(send->px));
      } else if (auto* drop = std::get_if<DiscoveryDisconnect>(&out)) {
        host.disconnect(drop->peer, DisconnectReason::requested, drop->reason);
      }
    }
  }

  void on_heartbeat() {
    if (stopped) return;
    ++stats.heartbeats;
    const TimePoint t = now();
    router.heartbeat(t);
    discovery.tick(t);
    pump();
    arm_heartbeat(std::chrono::duration_cast<Duration>(settings.gossip.heartbeat_interval));
  }

  void arm_heartbeat(Duration delay) {
    // The Timer contract guarantees the callback does not run after the timer
    // is cancelled or destroyed, and the timer lives in Impl.
    heartbeat_timer->expires_after(delay, [this] { on_heartbeat(); });
  }

  Result<std::string> start() {
    if (started) return make_error(Errc::conflict, "gossip node already started");
    CAIRN_TRY_STATUS(validate(settings));
    started = true;
    auto gossip_sub =
        host.on_message(MessageType::gossip_rpc, [this](const NodeId& from, ByteSpan payload) {
          router.handle_frame(from, payload, now());
          pump();
        });
    if (!gossip_sub) return tl::unexpected(gossip_sub.error());
    subscriptions.push_back(std::move(*gossip_sub));
    auto px_sub =
        host.on_message(MessageType::peer_exchange, [this](const NodeId& from, ByteSpan payload) {
          auto st = discovery.handle_frame(from, payload, now());
          if (!st) host.adjust_score(from, -settings.malformed_px_penalty, st.error().message);
          pump();
        });
    if (!px_sub) return tl::unexpected(px_sub.error());
    subscriptions.push_back(std::move(*px_sub));
    subscriptions.push_back(host.on_connected([this](const PeerInfo& info) {
      const TimePoint t = now();
      const bool outbound = info.direction == Direction::outbound;
      router.add_peer(info.id, outbound, t);
      discovery.peer_connected(info.id, info.advertised_address, outbound, t);
      pump();
    }));
    subscriptions.push_back(host.on_disconnected([this](const DisconnectInfo& info) {
      const TimePoint t = now();
      router.remove_peer(info.id, t);
      discovery.peer_disconnected(info.id, t);
      pump();
    }));

    if (!settings.listen_address.empty()) {
      auto bound = host.listen(settings.listen_address);
      if (!bound) return tl::unexpected(bound.error());
      address = settings.p2p.advertised_address.empty() ? *bound : settings.p2p.advertised_address;
      discovery.set_self_address(address);
    }
    const TimePoint t = now();
    for (ShardId s : settings.shards) router.subscribe(s, t);
    // The first discovery tick right away: bootstrap and chain dials need not
    // wait for a heartbeat.
    discovery.tick(t);
    pump();
    heartbeat_timer = clock.make_timer(executor);
    arm_heartbeat(first_heartbeat);
    return address;
  }

  void stop(std::function<void()> done) {
    if (stopped) {
      if (done) done();
      return;
    }
    stopped = true;
    if (heartbeat_timer) heartbeat_timer->cancel();
    subscriptions.clear();
    host.shutdown(std::move(done));
  }
};

GossipNode::GossipNode(const asio::any_io_executor& executor, std::unique_ptr<Transport> transport,
                       Clock& clock, const SigningKey& identity, GossipNodeSettings settings,
                       uint64_t seed, EndpointSource* chain)
    : impl_(std::make_shared<Impl>(executor, std::move(transport), clock, identity,
                                   std::move(settings), seed, chain)) {}

GossipNode::~GossipNode() {
  if (impl_) impl_->stop({});
}

Result<std::string> GossipNode::start() { return impl_->start(); }
void GossipNode::stop(std::function<void()> done) { impl_->stop(std::move(done)); }
void GossipNode::set_handler(Handler handler) { impl_->handler = std::move(handler); }
void GossipNode::set_validator(GossipValidator validator) {
  impl_->router.set_validator(std::move(validator));
}
void GossipNode::set_validator(GossipDecodingValidator validator) {
  impl_->router.set_validator(std::move(validator));
}

Result<MessageId> GossipNode::publish(ShardId shard, Bytes data) {
  auto id = impl_->router.publish(shard, std::move(data), impl_->now());
  impl_->pump();
  return id;
}

void GossipNode::subscribe(ShardId shard) {
  impl_->router.subscribe(shard, impl_->now());
  auto& shards = impl_->settings.shards;
  if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
  impl_->discovery.set_served_shards(shards);
  impl_->pump();
}

void GossipNode::unsubscribe(ShardId shard) {
  impl_->router.unsubscribe(shard, impl_->now());
  auto& shards = impl_->settings.shards;
  shards.erase(std::remove(shards.begin(), shards.end(), shard), shards.end());
  impl_->discovery.set_served_shards(shards);
  impl_->pump();
}

const NodeId& GossipNode::id() const noexcept { return impl_->host.id(); }
const std::string& GossipNode::address() const noexcept { return impl_->address; }
Host& GossipNode::host() noexcept { return impl_->host; }
const GossipRouter& GossipNode::router() const noexcept { return impl_->router; }
const Discovery& GossipNode::discovery() const noexcept { return impl_->discovery; }
const GossipNodeStats& GossipNode::stats() const noexcept { return impl_->stats; }

}  // namespace cairn::p2p
