#include "cairn/p2p/host.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <unordered_map>

#include "cairn/core/log.hpp"
#include "cairn/p2p/identity.hpp"
#include "session.hpp"

namespace cairn::p2p {

std::string_view disconnect_reason_name(DisconnectReason r) noexcept {
  switch (r) {
    case DisconnectReason::requested:
      return "requested";
    case DisconnectReason::shutdown:
      return "shutdown";
    case DisconnectReason::handshake_timeout:
      return "handshake_timeout";
    case DisconnectReason::handshake_failed:
      return "handshake_failed";
    case DisconnectReason::bad_signature:
      return "bad_signature";
    case DisconnectReason::unexpected_peer_id:
      return "unexpected_peer_id";
    case DisconnectReason::no_common_version:
      return "no_common_version";
    case DisconnectReason::network_mismatch:
      return "network_mismatch";
    case DisconnectReason::self_connection:
      return "self_connection";
    case DisconnectReason::decrypt_failed:
      return "decrypt_failed";
    case DisconnectReason::frame_too_large:
      return "frame_too_large";
    case DisconnectReason::protocol_error:
      return "protocol_error";
    case DisconnectReason::idle_timeout:
      return "idle_timeout";
    case DisconnectReason::banned:
      return "banned";
    case DisconnectReason::too_many_peers:
      return "too_many_peers";
    case DisconnectReason::duplicate_connection:
      return "duplicate_connection";
    case DisconnectReason::io_error:
      return "io_error";
    case DisconnectReason::send_queue_overflow:
      return "send_queue_overflow";
  }
  return "unknown";
}

namespace {

constexpr const char* kHostLog = "p2p";

// How a failed session maps onto the error a dialer sees.
Errc dial_error_code(DisconnectReason r) {
  switch (r) {
    case DisconnectReason::handshake_timeout:
    case DisconnectReason::idle_timeout:
      return Errc::timeout;
    case DisconnectReason::bad_signature:
    case DisconnectReason::unexpected_peer_id:
      return Errc::verification_failed;
    case DisconnectReason::no_common_version:
    case DisconnectReason::network_mismatch:
      return Errc::unsupported;
    case DisconnectReason::banned:
      return Errc::conflict;
    case DisconnectReason::too_many_peers:
      return Errc::busy;
    case DisconnectReason::shutdown:
      return Errc::cancelled;
    case DisconnectReason::self_connection:
      return Errc::invalid_argument;
    default:
      return Errc::io_error;
  }
}

// Reasons that point at a misbehaving or hostile peer (logged as warnings).
bool suspicious(DisconnectReason r) {
  switch (r) {
    case DisconnectReason::handshake_failed:
    case DisconnectReason::bad_signature:
    case DisconnectReason::unexpected_peer_id:
    case DisconnectReason::decrypt_failed:
    case DisconnectReason::frame_too_large:
    case DisconnectReason::protocol_error:
    case DisconnectReason::handshake_timeout:
      return true;
    default:
      return false;
  }
}

std::string peer_label(const NodeId& id) {
  return id == NodeId{} ? std::string("unidentified peer") : short_id(id);
}

}  // namespace

namespace detail {

struct HostImpl final : SessionOwner, std::enable_shared_from_this<HostImpl> {
  HostImpl(const asio::any_io_executor& e, Transport& t, Clock& c, const SigningKey& key,
           P2pSettings s, uint64_t seed)
      : ex(e),
        transport(t),
        clock(c),
        identity(key),
        self(key.public_key()),
        settings(std::move(s)),
        rng(seed) {}

  struct Dial {
    std::string address;
    ConnectOptions options;
    std::vector<ConnectCallback> callbacks;
    std::optional<ConnectId> connect_id;
    std::unique_ptr<Timer> timer;
    uint64_t session_id = 0;
  };
  struct Persistent {
    ConnectOptions options;
    uint32_t failures = 0;
    std::unique_ptr<Timer> retry;
    std::optional<NodeId> peer;
    TimePoint connected_at{};
  };
  struct ScoreEntry {
    double value = 0;
    TimePoint at{};
  };
  struct Ban {
    TimePoint until{};
    std::string reason;
  };

  asio::any_io_executor ex;
  Transport& transport;
  Clock& clock;
  SigningKey identity;
  NodeId self;
  P2pSettings settings;
  std::mt19937_64 rng;
  bool stopped = false;

  uint64_t next_session_id = 1;
  uint64_t next_dial_id = 1;
  uint64_t next_token = 1;
  uint64_t live_sessions = 0;
  std::unordered_map<uint64_t, std::shared_ptr<Session>> sessions;  // not yet closed
  std::unordered_map<NodeId, std::shared_ptr<Session>> peers;       // established, current
  // pause_reading() calls not yet resumed, per connected peer: applied to
  // every session that delivers the peer's frames (its current one and any
  // retiring one), including one that takes over later.
  std::unordered_map<NodeId, int> app_pauses;
  // Re-evaluates the ordering hold of a peer's current session when a
  // handshaking predecessor stops counting (see update_hold).
  std::unordered_map<NodeId, std::unique_ptr<Timer>> hold_timers;
  std::unordered_map<uint64_t, uint64_t> session_dial;  // session id -> dial id
  std::unordered_map<uint64_t, Dial> dials;
  std::map<std::string, Persistent> persistent;

  struct HandlerEntry {
    uint64_t token = 0;
    MessageHandler fn;
  };
  std::unordered_map<uint16_t, HandlerEntry> handlers;
  std::vector<std::pair<uint64_t, ConnectedHandler>> connected_listeners;
  std::vector<std::pair<uint64_t, DisconnectedHandler>> disconnected_listeners;
  std::vector<std::pair<uint64_t, SendReadyHandler>> send_ready_listeners;

  mutable std::unordered_map<NodeId, ScoreEntry> scores;
  mutable std::unordered_map<NodeId, Ban> bans;

  HostStats totals;  // counters of sessions already closed
  std::vector<std::function<void()>> shutdown_done;

  // ------------------------------------------------------------- sessions --

  std::shared_ptr<Session> make_session(std::unique_ptr<Stream> stream, Role role,
                                        std::optional<NodeId> expected) {
    SessionConfig cfg;
    cfg.identity = &identity;
    cfg.settings = &settings;
    cfg.role = role;
    cfg.expected = expected;
    cfg.advertised_address = settings.advertised_address;
    cfg.id = next_session_id++;
    cfg.nonce_seed = rng();
    auto s = std::make_shared<Session>(shared_from_this(), ex, clock, std::move(stream), cfg);
    ++live_sessions;
    sessions.emplace(s->id(), s);
    return s;
  }

  size_t handshaking() const {
    size_t n = 0;
    for (const auto& [id, s] : sessions) {
      if (s->state() == Session::State::hello || s->state() == Session::State::auth) ++n;
    }
    return n;
  }

  size_t count_peers(Direction d) const {
    size_t n = 0;
    for (const auto& [id, s] : peers)
      if (s->direction() == d) ++n;
    return n;
  }

  void on_accept(std::unique_ptr<Stream> stream) {
    if (stopped) {
      stream->close();
      return;
    }
    if (handshaking() >= settings.max_pending_handshakes) {
      CAIRN_LOG(log::Level::warn, kHostLog,
                "refusing connection from " << stream->remote_address() << ": "
                                            << settings.max_pending_handshakes
                                            << " handshakes already pending");
      stream->close();
      return;
    }
    make_session(std::move(stream), Role::responder, std::nullopt)->start();
  }

  std::optional<DisconnectReason> session_vet(Session& s, const Hello& peer,
                                              std::string& detail) override {
    if (stopped) {
      detail = "node is stopping";
      return DisconnectReason::shutdown;
    }
    if (is_banned(peer.node_id)) {
      detail = "node " + short_id(peer.node_id) + " is banned: " + bans[peer.node_id].reason;
      return DisconnectReason::banned;
    }
    // Checked again once established (handshakes run in parallel); refusing
    // here tells the dialer before it believes it is connected.
    if (s.direction() == Direction::inbound && peers.count(peer.node_id) == 0 &&
        count_peers(Direction::inbound) >= settings.max_inbound_peers) {
      detail = std::to_string(settings.max_inbound_peers) + " inbound peers already";
      return DisconnectReason::too_many_peers;
    }
    // A duplicate of a connected peer's session is under way: its frames may
    // have to be delivered before the current session's.
    if (peers.count(peer.node_id) != 0) update_hold(peer.node_id);
    return std::nullopt;
  }

  // Which of two sessions to the same node survives. Both ends decide alike:
  // for a simultaneous dial (the older one is younger than handshake_timeout)
  // the session dialed by the smaller node id wins; otherwise the newer one
  // wins, because the older one is likely half-dead on the side that redialed.
  // An existing session the peer has retired already loses: we follow the
  // peer's decision. `fresh` may still be handshaking (it is then judged as
  // if it were established now).
  bool keep_new(const Session& existing, const Session& fresh) const {
    if (existing.retiring()) return true;
    const NodeId& peer = fresh.peer_id();
    auto initiator = [&](const Session& s) { return s.role() == Role::initiator ? self : peer; };
    const NodeId a = initiator(existing), b = initiator(fresh);
    if (a == b) return true;
    if (clock.now() - existing.established_at() >= settings.handshake_timeout) return true;
    return b < a;
  }

  void session_established(Session& s) override {
    auto sp = sessions.at(s.id());
    const NodeId id = s.peer_id();
    if (stopped) {
      s.close(DisconnectReason::shutdown, "node is stopping", true, true);
      return;
    }
    if (is_banned(id)) {
      s.close(DisconnectReason::banned, "node is banned", true, true);
      return;
    }
    if (auto it = peers.find(id); it != peers.end()) {
      auto existing = it->second;
      if (!keep_new(*existing, s)) {
        // The peer may be sending on this one already (it can be the peer's
        // current session): retire it, reading it until the peer's goodbye.
        CAIRN_LOG(
            log::Level::info, kHostLog,
            "retiring duplicate session with " << short_id(id) << " at " << s.remote_address());
        note_persistent_up(s);
        finish_session_dial(s.id(), id);
        ++totals.duplicates_retired;
        s.retire("already connected");
        apply_pauses(s, id);
        update_hold(id);
        return;
      }
      // Swap without events: for the layers above the peer never left. What
      // we had not written on the old session goes first on the new one.
      it->second = sp;
      CAIRN_LOG(
          log::Level::info, kHostLog,
          "replacing session with " << short_id(id) << " by the one at " << s.remote_address());
      if (!existing->retiring()) ++totals.duplicates_retired;
      existing->retire("replaced by the session at " + s.remote_address());
      existing->hand_over(s);
      apply_pauses(s, id);
      note_persistent_up(s);
      finish_session_dial(s.id(), id);
      update_hold(id);
      return;
    }
    if (s.direction() == Direction::inbound &&
        count_peers(Direction::inbound) >= settings.max_inbound_peers) {
      s.close(DisconnectReason::too_many_peers,
              std::to_string(settings.max_inbound_peers) + " inbound peers already", true, true);
      return;
    }
    peers.emplace(id, sp);
    update_hold(id);
    CAIRN_LOG(log::Level::info, kHostLog,
              "connected " << (s.direction() == Direction::inbound ? "inbound" : "outbound")
                           << " peer " << short_id(id) << " at " << s.remote_address()
                           << " (protocol v" << s.version() << ")");
    note_persistent_up(s);
    finish_session_dial(s.id(), id);
    const PeerInfo info = peer_info(s);
    auto listeners = connected_listeners;
    for (auto& [token, fn] : listeners) {
      if (stopped || !s.established()) break;
      fn(info);
    }
  }

  void session_frame(Session& s, MessageType type, ByteSpan payload) override {
    if (stopped) return;
    // A retiring session delivers only while its peer is connected: once the
    // peer is gone (and the layers above were told), its frames are moot.
    if (peers.count(s.peer_id()) == 0) return;
    auto it = handlers.find(to_wire(type));
    if (it == handlers.end()) {
      ++totals.unknown_messages;
      CAIRN_LOG(log::Level::debug, kHostLog,
                "ignoring frame of unhandled type " << to_wire(type) << " from "
                                                    << short_id(s.peer_id()));
      return;
    }
    MessageHandler fn = it->second.fn;  // the handler may unregister itself
    fn(s.peer_id(), payload);
  }

  bool session_superseded(Session& s) override {
    const NodeId id = s.peer_id();
    if (stopped || peers.count(id) == 0 || peers.at(id).get() != &s) return false;
    if (!has_successor(s)) return false;
    ++totals.duplicates_retired;
    CAIRN_LOG(log::Level::info, kHostLog,
              "peer " << short_id(id) << " retired our session at " << s.remote_address()
                      << " for a duplicate; frames wait for that one");
    return true;
  }

  // Another session claiming the same node id whose handshake is under way.
  bool has_successor(const Session& s) const {
    for (const auto& [sid, o] : sessions) {
      if (o.get() != &s && o->peer_id() == s.peer_id() && o->state() == Session::State::auth) {
        return true;
      }
    }
    return false;
  }

  void apply_pauses(Session& s, const NodeId& id) {
    if (auto p = app_pauses.find(id); p != app_pauses.end()) {
      for (int i = 0; i < p->second; ++i) s.pause_reading();
    }
  }

  // Per-peer order across a swap. The peer sends on a losing session only
  // before it sends anything on the winning one, so while a session that
  // loses to the peer's current one may still deliver frames, the current
  // one waits unread: a retiring session still draining, or a handshaking
  // one (the peer may already have sent frames on it; we know its node id
  // from its Hello) for at most duplicate_drain_timeout from that Hello, so
  // a forged Hello cannot stall a peer for long.
  void update_hold(const NodeId& id) {
    auto it = peers.find(id);
    if (it == peers.end()) {
      hold_timers.erase(id);
      return;
    }
    Session& current = *it->second;
    const TimePoint now = clock.now();
    bool hold = false;
    std::optional<TimePoint> recheck;
    for (const auto& [sid, o] : sessions) {
      if (o.get() == &current || o->peer_id() != id) continue;
      if (o->draining()) {
        hold = true;
      } else if ((o->state() == Session::State::hello || o->state() == Session::State::auth) &&
                 !keep_new(current, *o)) {
        const TimePoint until = o->hello_at() + settings.duplicate_drain_timeout;
        if (now < until) {
          hold = true;
          if (!recheck || until < *recheck) recheck = until;
        }
      }
    }
    current.set_held(hold && !current.retiring());
    if (!recheck) {
      hold_timers.erase(id);
      return;
    }
    auto& timer = hold_timers[id];
    if (!timer) timer = clock.make_timer(ex);
    timer->expires_after(*recheck - now, [weak = weak_from_this(), id] {
      if (auto self_ = weak.lock()) self_->update_hold(id);
    });
  }

  void session_closed(Session& s, DisconnectReason reason, bool by_remote,
                      const std::string& detail) override {
    auto sp = sessions.count(s.id()) != 0 ? sessions.at(s.id()) : nullptr;
    sessions.erase(s.id());
    totals.frames_sent += s.frames_sent;
    totals.frames_received += s.frames_received;
    totals.bytes_sent += s.bytes_sent;
    totals.bytes_received += s.bytes_received;
    ++totals.disconnects;

    const NodeId id = s.peer_id();
    const bool was_peer = peers.count(id) != 0 && peers.at(id).get() == &s;
    if (!s.handshake_completed()) ++totals.handshakes_failed;

    const auto level = suspicious(reason) && !by_remote ? log::Level::warn : log::Level::info;
    CAIRN_LOG(level, kHostLog,
              "closed " << (s.direction() == Direction::inbound ? "inbound" : "outbound")
                        << " session with " << peer_label(id) << " at " << s.remote_address()
                        << ": " << disconnect_reason_name(reason)
                        << (by_remote ? " (peer's reason)" : "") << ": " << detail);

    if (auto d = session_dial.find(s.id()); d != session_dial.end()) {
      const uint64_t dial_id = d->second;
      session_dial.erase(d);
      if (reason == DisconnectReason::duplicate_connection && peers.count(id) != 0 && !was_peer) {
        finish_dial(dial_id, id);
      } else {
        finish_dial(dial_id, tl::unexpected(Error{
                                 dial_error_code(reason),
                                 "handshake with " + s.remote_address() +
                                     " failed: " + std::string(disconnect_reason_name(reason)) +
                                     (by_remote ? " (peer's reason)" : "") + ": " + detail}));
      }
    }

    if (!was_peer) {
      if (id != NodeId{} && !stopped) after_duplicate_closed(s, id);
      return;
    }
    peers.erase(id);
    app_pauses.erase(id);
    hold_timers.erase(id);
    // Its retiring duplicates go too: nothing they still deliver would reach
    // anyone.
    std::vector<std::shared_ptr<Session>> rest;
    for (const auto& [sid, o] : sessions) {
      if (o->peer_id() == id && o->retiring()) rest.push_back(o);
    }
    for (auto& o : rest) o->close(reason, "its peer disconnected", false, true);
    if (!by_remote && reason == DisconnectReason::protocol_error) {
      adjust_score(id, -settings.penalty_protocol_violation, "protocol violation: " + detail);
    }
    note_persistent_down(id);
    if (stopped) return;
    DisconnectInfo info{id, s.direction(), s.peer_address(), reason, by_remote, detail};
    asio::post(ex, [weak = weak_from_this(), info = std::move(info)] {
      auto self_ = weak.lock();
      if (!self_ || self_->stopped) return;
      auto listeners = self_->disconnected_listeners;
      for (auto& [token, fn] : listeners) {
        if (self_->stopped) break;
        fn(info);
      }
    });
    (void)sp;
  }

  // A session to a connected peer that is not its current one closed: a
  // retiring one finished its drain, or a handshaking one ended.
  void after_duplicate_closed(const Session& s, const NodeId& id) {
    auto it = peers.find(id);
    if (it == peers.end()) return;
    auto current = it->second;
    // The peer retired our current session for one that has now failed: no
    // successor left, so this is a disconnect.
    if (!s.handshake_completed() && current->retiring() && !has_successor(*current)) {
      current->end_retirement("the session replacing it failed");
      return;
    }
    update_hold(id);
  }

  void session_send_ready(Session& s) override {
    if (stopped || peers.count(s.peer_id()) == 0 || peers.at(s.peer_id()).get() != &s) return;
    const NodeId id = s.peer_id();
    auto listeners = send_ready_listeners;
    for (auto& [token, fn] : listeners) {
      if (stopped) break;
      fn(id);
    }
  }

  void session_destroyed() noexcept override {
    --live_sessions;
    maybe_joined();
  }

  void maybe_joined() {
    if (!stopped || live_sessions != 0 || shutdown_done.empty()) return;
    auto done = std::move(shutdown_done);
    shutdown_done.clear();
    for (auto& fn : done) asio::post(ex, std::move(fn));
  }

  PeerInfo peer_info(const Session& s) const {
    PeerInfo p;
    p.id = s.peer_id();
    p.direction = s.direction();
    p.remote_address = s.remote_address();
    p.advertised_address = s.peer_address();
    p.protocol_version = s.version();
    p.connected_at = s.established_at();
    p.rtt = s.rtt();
    p.score = score(s.peer_id());
    p.queued_bytes = s.queued_bytes();
    return p;
  }

  // ---------------------------------------------------------------- dials --

  void post_result(ConnectCallback cb, Result<NodeId> r) {
    if (!cb) return;
    asio::post(ex, [weak = weak_from_this(), cb = std::move(cb), r = std::move(r)]() mutable {
      auto self_ = weak.lock();
      if (!self_ || self_->stopped) return;
      cb(std::move(r));
    });
  }

  void connect(const std::string& address, ConnectOptions options, ConnectCallback done) {
    if (stopped) return;
    if (options.persistent) {
      auto& p = persistent[address];
      p.options = options;
      if (!p.retry) p.retry = clock.make_timer(ex);
    }
    if (options.expected_id && peers.count(*options.expected_id) != 0) {
      if (options.persistent) {
        auto& p = persistent[address];
        p.peer = *options.expected_id;
        p.connected_at = peers.at(*options.expected_id)->established_at();
      }
      post_result(std::move(done), *options.expected_id);
      return;
    }
    if (options.expected_id && is_banned(*options.expected_id)) {
      post_result(std::move(done),
                  tl::unexpected(Error{Errc::conflict,
                                       "node " + short_id(*options.expected_id) + " is banned"}));
      return;
    }
    for (auto& [id, d] : dials) {
      if (d.address == address) {
        if (done) d.callbacks.push_back(std::move(done));
        return;
      }
    }
    if (count_peers(Direction::outbound) + dials.size() >= settings.max_outbound_peers) {
      post_result(std::move(done),
                  tl::unexpected(Error{Errc::busy, "outbound peer cap of " +
                                                       std::to_string(settings.max_outbound_peers) +
                                                       " reached; not dialing " + address}));
      if (options.persistent) schedule_retry(address);
      return;
    }
    const uint64_t dial_id = next_dial_id++;
    Dial& d = dials[dial_id];
    d.address = address;
    d.options = options;
    if (done) d.callbacks.push_back(std::move(done));
    d.timer = clock.make_timer(ex);
    d.timer->expires_after(settings.connect_timeout, [weak = weak_from_this(), dial_id] {
      if (auto self_ = weak.lock()) self_->on_dial_timeout(dial_id);
    });
    d.connect_id = transport.connect(
        address, [weak = weak_from_this(), dial_id](Result<std::unique_ptr<Stream>> r) {
          auto self_ = weak.lock();
          if (!self_) return;
          self_->on_dial_connected(dial_id, std::move(r));
        });
  }

  void on_dial_timeout(uint64_t dial_id) {
    auto it = dials.find(dial_id);
    if (it == dials.end() || !it->second.connect_id) return;
    const ConnectId cid = *it->second.connect_id;
    const std::string address = it->second.address;
    finish_dial(dial_id,
                tl::unexpected(Error{Errc::timeout, "connecting to " + address + " timed out"}));
    transport.cancel_connect(cid);
  }

  void on_dial_connected(uint64_t dial_id, Result<std::unique_ptr<Stream>> r) {
    auto it = dials.find(dial_id);
    if (it == dials.end() || stopped) {
      if (r) (*r)->close();
      return;
    }
    Dial& d = it->second;
    d.connect_id.reset();
    d.timer->cancel();
    if (!r) {
      finish_dial(dial_id, tl::unexpected(with_context(r.error(), "connecting to " + d.address)));
      return;
    }
    auto s = make_session(std::move(*r), Role::initiator, d.options.expected_id);
    d.session_id = s->id();
    session_dial[s->id()] = dial_id;
    s->start();
  }

  void finish_dial(uint64_t dial_id, Result<NodeId> result) {
    auto it = dials.find(dial_id);
    if (it == dials.end()) return;
    Dial d = std::move(it->second);
    dials.erase(it);
    if (d.session_id != 0) session_dial.erase(d.session_id);
    if (!result) {
      CAIRN_LOG(log::Level::info, kHostLog, "dial failed: " << result.error().message);
    }
    for (auto& cb : d.callbacks) post_result(std::move(cb), result);
    // Also when this dial was a one-off that a persistent connect() joined.
    if (!result && persistent.count(d.address) != 0) {
      schedule_retry(d.address);
    }
  }

  void finish_session_dial(uint64_t session_id, const NodeId& id) {
    if (auto d = session_dial.find(session_id); d != session_dial.end()) {
      const uint64_t dial_id = d->second;
      session_dial.erase(d);
      finish_dial(dial_id, id);
    }
  }

  // ----------------------------------------------------------- persistence --

  Duration backoff(uint32_t failures) {
    Duration d = settings.reconnect_base;
    for (uint32_t i = 1; i < failures && d < settings.reconnect_max; ++i) d *= 2;
    d = std::min(d, settings.reconnect_max);
    const double j = std::clamp(settings.reconnect_jitter, 0.0, 1.0);
    if (j > 0) {
      const auto span = static_cast<double>(d.count()) * j;
      std::uniform_real_distribution<double> u(0.0, span);
      d = Duration(static_cast<Duration::rep>(static_cast<double>(d.count()) - span + u(rng)));
    }
    return d;
  }

  void schedule_retry(const std::string& address) {
    auto it = persistent.find(address);
    if (it == persistent.end() || stopped) return;
    Persistent& p = it->second;
    ++p.failures;
    const Duration delay = backoff(p.failures);
    CAIRN_LOG(log::Level::debug, kHostLog,
              "redialing " << address << " in "
                           << std::chrono::duration_cast<std::chrono::milliseconds>(delay).count()
                           << " ms (attempt " << p.failures << ")");
    p.retry->expires_after(delay, [weak = weak_from_this(), address] {
      auto self_ = weak.lock();
      if (!self_ || self_->stopped) return;
      auto pit = self_->persistent.find(address);
      if (pit == self_->persistent.end()) return;
      if (pit->second.peer && self_->peers.count(*pit->second.peer) != 0) return;
      ConnectOptions opts = pit->second.options;
      self_->connect(address, opts, {});
    });
  }

  void note_persistent_up(const Session& s) {
    std::string dial_address;
    if (auto d = session_dial.find(s.id()); d != session_dial.end()) {
      dial_address = dials.at(d->second).address;
    }
    for (auto& [address, p] : persistent) {
      if (address == dial_address ||
          (p.options.expected_id && *p.options.expected_id == s.peer_id())) {
        p.peer = s.peer_id();
        p.connected_at = clock.now();
        p.retry->cancel();
      }
    }
  }

  void note_persistent_down(const NodeId& id) {
    for (auto& [address, p] : persistent) {
      if (!p.peer || *p.peer != id) continue;
      p.peer.reset();
      // A session that lasted reconnect_max or longer was healthy: start the
      // backoff from the beginning.
      if (clock.now() - p.connected_at >= settings.reconnect_max) p.failures = 0;
      schedule_retry(address);
    }
  }

  // -------------------------------------------------------- scores & bans --

  double decayed(const ScoreEntry& e) const {
    const double half = std::chrono::duration<double>(settings.score_half_life).count();
    const double age = std::chrono::duration<double>(clock.now() - e.at).count();
    if (half <= 0 || age <= 0) return e.value;
    return e.value * std::exp2(-age / half);
  }

  double score(const NodeId& id) const {
    auto it = scores.find(id);
    return it == scores.end() ? 0.0 : decayed(it->second);
  }

  void adjust_score(const NodeId& id, double delta, std::string_view reason) {
    const double value = score(id) + delta;
    scores[id] = ScoreEntry{value, clock.now()};
    if (scores.size() > settings.max_scored_peers) {
      auto victim = scores.end();
      double best = 0;
      for (auto it = scores.begin(); it != scores.end(); ++it) {
        if (it->first == id) continue;
        const double mag = std::fabs(decayed(it->second));
        if (victim == scores.end() || mag < best) {
          victim = it;
          best = mag;
        }
      }
      if (victim != scores.end()) scores.erase(victim);
    }
    CAIRN_LOG(delta < 0 ? log::Level::info : log::Level::debug, kHostLog,
              "score of " << short_id(id) << " " << (delta >= 0 ? "+" : "") << delta << " -> "
                          << value << ": " << reason);
    if (value <= settings.ban_threshold) {
      ban(id, settings.ban_duration,
          "score " + std::to_string(value) + " at or below " +
              std::to_string(settings.ban_threshold) + " (last: " + std::string(reason) + ")");
    }
  }

  bool is_banned(const NodeId& id) const {
    auto it = bans.find(id);
    if (it == bans.end()) return false;
    if (clock.now() >= it->second.until) {
      bans.erase(it);
      return false;
    }
    return true;
  }

  void ban(const NodeId& id, Duration duration, std::string_view reason) {
    bans[id] = Ban{clock.now() + duration, std::string(reason)};
    while (bans.size() > settings.max_bans) {
      auto victim = std::min_element(bans.begin(), bans.end(), [](const auto& a, const auto& b) {
        return a.second.until < b.second.until;
      });
      if (victim->first == id) break;
      bans.erase(victim);
    }
    CAIRN_LOG(log::Level::warn, kHostLog,
              "banned " << short_id(id) << " for "
                        << std::chrono::duration_cast<std::chrono::seconds>(duration).count()
                        << " s: " << reason);
    if (auto it = peers.find(id); it != peers.end()) {
      auto s = it->second;
      s->close(DisconnectReason::banned, std::string(reason), true, true);
    }
  }

  // ------------------------------------------------------------- shutdown --

  void shutdown(std::function<void()> done) {
    if (done) shutdown_done.push_back(std::move(done));
    if (stopped) {
      maybe_joined();
      return;
    }
    stopped = true;
    transport.close();
    dials.clear();
    session_dial.clear();
    persistent.clear();
    hold_timers.clear();
    handlers.clear();
    connected_listeners.clear();
    disconnected_listeners.clear();
    send_ready_listeners.clear();
    auto all = sessions;
    for (auto& [id, s] : all) {
      s->close(DisconnectReason::shutdown, "node stopping", true, true);
    }
    maybe_joined();
  }
};

}  // namespace detail

// ------------------------------------------------------------------- Host --

Host::Host(const asio::any_io_executor& executor, Transport& transport, Clock& clock,
           const SigningKey& identity, P2pSettings settings, uint64_t seed)
    : impl_(std::make_shared<detail::HostImpl>(executor, transport, clock, identity,
                                               std::move(settings), seed)) {
  ensure_sodium();
}

Host::~Host() {
  if (!impl_->stopped) impl_->shutdown({});
}

const NodeId& Host::id() const noexcept { return impl_->self; }
const P2pSettings& Host::settings() const noexcept { return impl_->settings; }
Clock& Host::clock() const noexcept { return impl_->clock; }
const asio::any_io_executor& Host::executor() const noexcept { return impl_->ex; }

Result<std::string> Host::listen(const std::string& address) {
  if (impl_->stopped) return make_error(Errc::cancelled, "host is shut down");
  auto bound = impl_->transport.listen(
      address, [weak = std::weak_ptr<detail::HostImpl>(impl_)](std::unique_ptr<Stream> s) {
        if (auto im = weak.lock()) {
          im->on_accept(std::move(s));
        } else {
          s->close();
        }
      });
  if (!bound) return bound;
  if (impl_->settings.advertised_address.empty()) impl_->settings.advertised_address = *bound;
  CAIRN_LOG(log::Level::info, kHostLog,
            "node " << short_id(impl_->self) << " listening on " << *bound);
  return bound;
}

void Host::connect(const std::string& address, ConnectOptions options, ConnectCallback done) {
  impl_->connect(address, options, std::move(done));
}

void Host::forget(const std::string& address) { impl_->persistent.erase(address); }

void Host::disconnect(const NodeId& peer, DisconnectReason reason, std::string detail) {
  auto it = impl_->peers.find(peer);
  if (it == impl_->peers.end()) return;
  auto s = it->second;
  s->close(reason, detail.empty() ? "disconnected locally" : std::move(detail), true, false);
}

Status Host::send(const NodeId& peer, MessageType type, ByteSpan payload, SendOptions options) {
  if (is_control(type)) {
    return make_error(Errc::invalid_argument, "control frames are sent by the host itself");
  }
  auto it = impl_->peers.find(peer);
  if (it == impl_->peers.end()) {
    return make_error(Errc::not_found, "peer " + short_id(peer) + " is not connected");
  }
  auto r = it->second->send(type, payload, options.compress);
  if (!r && r.error().code == Errc::busy) ++impl_->totals.send_busy;
  return r;
}

Result<Subscription> Host::on_message(MessageType type, MessageHandler handler) {
  if (is_control(type)) {
    return make_error(Errc::invalid_argument, "control message types are handled by the host");
  }
  auto& im = *impl_;
  if (im.handlers.count(to_wire(type)) != 0) {
    return make_error(Errc::conflict,
                      "message type " + std::to_string(to_wire(type)) + " already has a handler");
  }
  const uint64_t token = im.next_token++;
  im.handlers[to_wire(type)] = {token, std::move(handler)};
  return Subscription([weak = std::weak_ptr<detail::HostImpl>(impl_), type, token] {
    auto im2 = weak.lock();
    if (!im2) return;
    auto it = im2->handlers.find(to_wire(type));
    if (it != im2->handlers.end() && it->second.token == token) im2->handlers.erase(it);
  });
}

namespace {
template <class Fn>
Subscription add_listener(const std::shared_ptr<detail::HostImpl>& impl,
                          std::vector<std::pair<uint64_t, Fn>> detail::HostImpl::*list, Fn fn) {
  const uint64_t token = impl->next_token++;
  ((*impl).*list).emplace_back(token, std::move(fn));
  return Subscription([weak = std::weak_ptr<detail::HostImpl>(impl), list, token] {
    auto im = weak.lock();
    if (!im) return;
    auto& v = (*im).*list;
    v.erase(std::remove_if(v.begin(), v.end(), [&](const auto& e) { return e.first == token; }),
            v.end());
  });
}
}  // namespace

Subscription Host::on_connected(ConnectedHandler handler) {
  return add_listener(impl_, &detail::HostImpl::connected_listeners, std::move(handler));
}

Subscription Host::on_disconnected(DisconnectedHandler handler) {
  return add_listener(impl_, &detail::HostImpl::disconnected_listeners, std::move(handler));
}

Subscription Host::on_send_ready(SendReadyHandler handler) {
  return add_listener(impl_, &detail::HostImpl::send_ready_listeners, std::move(handler));
}

namespace {
// The sessions delivering `peer`'s frames: its current one and any retiring.
std::vector<std::shared_ptr<Session>> delivering(const detail::HostImpl& im, const NodeId& peer) {
  std::vector<std::shared_ptr<Session>> out;
  for (const auto& [sid, s] : im.sessions) {
    if (s->peer_id() == peer && (s->retiring() || im.peers.at(peer) == s)) out.push_back(s);
  }
  return out;
}
}  // namespace

void Host::pause_reading(const NodeId& peer) {
  if (impl_->peers.count(peer) == 0) return;
  ++impl_->app_pauses[peer];
  for (auto& s : delivering(*impl_, peer)) s->pause_reading();
}

void Host::resume_reading(const NodeId& peer) {
  auto it = impl_->app_pauses.find(peer);
  if (it == impl_->app_pauses.end() || impl_->peers.count(peer) == 0) return;
  if (--it->second == 0) impl_->app_pauses.erase(it);
  for (auto& s : delivering(*impl_, peer)) s->resume_reading();
}

void Host::adjust_score(const NodeId& peer, double delta, std::string_view reason) {
  impl_->adjust_score(peer, delta, reason);
}

double Host::score(const NodeId& peer) const { return impl_->score(peer); }

void Host::ban(const NodeId& peer, Duration duration, std::string_view reason) {
  impl_->ban(peer, duration, reason);
}

void Host::unban(const NodeId& peer) { impl_->bans.erase(peer); }

bool Host::is_banned(const NodeId& peer) const { return impl_->is_banned(peer); }

bool Host::is_connected(const NodeId& peer) const { return impl_->peers.count(peer) != 0; }

std::optional<PeerInfo> Host::peer(const NodeId& peer) const {
  auto it = impl_->peers.find(peer);
  if (it == impl_->peers.end()) return std::nullopt;
  return impl_->peer_info(*it->second);
}

std::vector<PeerInfo> Host::peers() const {
  std::vector<PeerInfo> out;
  out.reserve(impl_->peers.size());
  for (const auto& [id, s] : impl_->peers) out.push_back(impl_->peer_info(*s));
  std::sort(out.begin(), out.end(),
            [](const PeerInfo& a, const PeerInfo& b) { return a.id < b.id; });
  return out;
}

size_t Host::peer_count() const { return impl_->peers.size(); }

HostStats Host::stats() const {
  const auto& im = *impl_;
  HostStats s = im.totals;
  s.sessions_open = im.live_sessions;
  s.handshakes_pending = im.handshaking();
  s.peers_inbound = im.count_peers(Direction::inbound);
  s.peers_outbound = im.count_peers(Direction::outbound);
  s.dials_pending = im.dials.size();
  for (const auto& [id, sess] : im.sessions) {
    s.frames_sent += sess->frames_sent;
    s.frames_received += sess->frames_received;
    s.bytes_sent += sess->bytes_sent;
    s.bytes_received += sess->bytes_received;
  }
  uint64_t bans = 0;
  for (const auto& [id, b] : im.bans)
    if (im.clock.now() < b.until) ++bans;
  s.bans_active = bans;
  return s;
}

void Host::shutdown(std::function<void()> done) { impl_->shutdown(std::move(done)); }

}  // namespace cairn::p2p
