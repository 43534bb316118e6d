#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "cairn/p2p/gossip.hpp"
#include "gossip_state.hpp"

namespace cairn::p2p {

namespace {

// A PRUNE backoff longer than this from a peer is clamped: a peer may pause
// our mesh with it, not lock us out for good.
constexpr uint32_t kMaxAcceptedBackoffSeconds = 3600;

Status field_error(const char* field, const char* rule) {
  return make_error(Errc::invalid_argument, std::string("gossip settings: ") + field + " " + rule);
}

}  // namespace

Status validate(const GossipSettings& s) {
  if (s.mesh_degree_low == 0 || s.mesh_degree_low > s.mesh_degree) {
    return field_error("mesh_degree_low", "must be in [1, mesh_degree]");
  }
  if (s.mesh_degree_high < s.mesh_degree)
    return field_error("mesh_degree_high", "must be >= mesh_degree");
  if (s.mesh_keep_best > s.mesh_degree)
    return field_error("mesh_keep_best", "must be <= mesh_degree");
  if (s.mesh_outbound_min >= s.mesh_degree_low || s.mesh_outbound_min > s.mesh_degree / 2) {
    return field_error("mesh_outbound_min", "must be < mesh_degree_low and <= mesh_degree / 2");
  }
  if (s.heartbeat_interval.count() <= 0)
    return field_error("heartbeat_interval", "must be positive");
  if (s.history_gossip > s.history_length || s.history_length == 0) {
    return field_error("history_gossip", "must be <= history_length, which must be >= 1");
  }
  if (s.max_message_bytes == 0 || s.max_message_bytes > kMaxGossipDataBytes) {
    return field_error("max_message_bytes", "must be in [1, kMaxGossipDataBytes]");
  }
  if (s.max_rpc_bytes < s.max_message_bytes + 64) {
    return field_error("max_rpc_bytes", "must leave room for one message of max_message_bytes");
  }
  if (s.gossip_factor < 0 || s.gossip_factor > 1)
    return field_error("gossip_factor", "must be in [0, 1]");
  const auto& sc = s.score;
  if (!(0 >= sc.gossip_threshold && sc.gossip_threshold >= sc.publish_threshold &&
        sc.publish_threshold >= sc.graylist_threshold)) {
    return field_error("score thresholds", "must satisfy 0 >= gossip >= publish >= graylist");
  }
  if (sc.decay <= 0 || sc.decay > 1) return field_error("score.decay", "must be in (0, 1]");
  if (sc.invalid_message_weight > 0 || sc.behaviour_penalty_weight > 0) {
    return field_error("score weights", "penalty weights must be <= 0");
  }
  return {};
}

struct GossipRouter::Impl {
  struct Peer {
    bool outbound = false;
    std::set<TopicId> topics;
    size_t ihave_rpcs = 0;    // IHAVE entries acted on this heartbeat
    size_t iwant_asked = 0;   // ids we requested from it this heartbeat
    size_t iwant_served = 0;  // messages we sent it for IWANT this heartbeat
    bool disconnect_requested = false;
  };
  struct Promise {
    NodeId peer;
    TimePoint deadline;
  };

  NodeId self;
  GossipSettings s;
  std::mt19937_64 rng;
  GossipDecodingValidator validator;
  GossipStats stats;

  // Ordered containers throughout: iteration order feeds random choices, and
  // the simulations need the same seed to give the same run.
  std::map<NodeId, Peer> peers;
  std::map<TopicId, std::set<NodeId>> topic_peers;
  std::set<TopicId> subs;
  std::map<TopicId, std::set<NodeId>> mesh;  // one entry per subscribed topic
  std::map<TopicId, std::set<NodeId>> fanout;
  std::map<TopicId, TimePoint> fanout_last_publish;
  std::map<TopicId, std::map<NodeId, TimePoint>> backoff;
  std::map<MessageId, Promise> promises;
  detail::SeenCache seen;
  detail::MessageCache mcache;
  detail::PeerScores scores;
  uint64_t ticks = 0;

  std::vector<GossipOutput> outputs;
  std::map<NodeId, GossipRpc> pending;  // per-peer RPC being built by the current input

  Impl(const NodeId& self_id, GossipSettings settings, uint64_t seed)
      : self(self_id),
        s(settings),
        rng(seed),
        seen(settings.seen_ttl, settings.seen_max),
        mcache(settings.history_length, settings.history_gossip, settings.mcache_window_max),
        scores(settings.score) {}

  // ---- helpers ----

  double score(const NodeId& p) const { return scores.score(p); }

  template <class T>
  void shuffle(std::vector<T>& v) {
    std::shuffle(v.begin(), v.end(), rng);
  }

  GossipRpc& rpc_for(const NodeId& p) { return pending[p]; }

  void add_backoff(const NodeId& p, TopicId t, std::chrono::milliseconds d, TimePoint now) {
    auto& until = backoff[t][p];
    until = std::max(until, now + d);
  }
  // On our side (deciding to graft) the backoff is extended by a slack, so our
  // GRAFT never reaches a peer whose own record of the same backoff is still
  // running.
  bool backing_off(const NodeId& p, TopicId t, TimePoint now) const {
    auto ti = backoff.find(t);
    if (ti == backoff.end()) return false;
    auto pi = ti->second.find(p);
    if (pi == ti->second.end()) return false;
    return now <
           pi->second + s.heartbeat_interval * static_cast<int64_t>(s.backoff_slack_heartbeats);
  }
  // On the receiving side a GRAFT is early only against the exact expiry.
  bool graft_too_early(const NodeId& p, TopicId t, TimePoint now) const {
    auto ti = backoff.find(t);
    if (ti == backoff.end()) return false;
    auto pi = ti->second.find(p);
    return pi != ti->second.end() && now < pi->second;
  }

  void graft(const NodeId& p, TopicId t) {
    mesh[t].insert(p);
    rpc_for(p).graft.push_back(t);
    ++stats.grafts_sent;
  }
  void prune(const NodeId& p, TopicId t, std::chrono::seconds d, TimePoint now) {
    rpc_for(p).prune.push_back(GossipPrune{t, static_cast<uint32_t>(d.count())});
    add_backoff(p, t, d, now);
    ++stats.prunes_sent;
  }

  void send_message(const NodeId& p, const GossipPayload& m) {
    rpc_for(p).messages.push_back(m);
    ++stats.forwarded;
  }

  // Peers subscribed to `t` that pass `keep`, in random order.
  template <class Pred>
  std::vector<NodeId> candidates(TopicId t, Pred keep) {
    std::vector<NodeId> out;
    auto it = topic_peers.find(t);
    if (it == topic_peers.end()) return out;
    for (const auto& p : it->second) {
      if (keep(p)) out.push_back(p);
    }
    shuffle(out);
    return out;
  }

  void check_graylist(const NodeId& p) {
    auto it = peers.find(p);
    if (it == peers.end() || it->second.disconnect_requested) return;
    const double sc = score(p);
    if (sc >= s.score.graylist_threshold) return;
    it->second.disconnect_requested = true;
    outputs.emplace_back(GossipDisconnect{p, sc, "gossip score below the graylist threshold"});
  }

  // Emits every pending per-peer RPC, split to the limits.
  void flush() {
    for (auto& [peer, rpc] : pending) {
      if (rpc.empty() || peers.count(peer) == 0) continue;
      for (auto& part : split_gossip_rpc(std::move(rpc), s.max_rpc_bytes)) {
        outputs.emplace_back(GossipSend{peer, std::move(part)});
      }
    }
    pending.clear();
  }

  // ---- inputs ----

  void add_peer(const NodeId& p, bool outbound) {
    if (p == self || peers.count(p) != 0) return;
    Peer& peer = peers[p];
    peer.outbound = outbound;
    scores.connect(p);
    if (!subs.empty()) {
      auto& rpc = rpc_for(p);
      for (TopicId t : subs) rpc.subscriptions.push_back(GossipSubscription{true, t});
    }
    check_graylist(p);
    flush();
  }

  void remove_peer(const NodeId& p, TimePoint now) {
    auto it = peers.find(p);
    if (it == peers.end()) return;
    for (TopicId t : it->second.topics) {
      topic_peers[t].erase(p);
      if (topic_peers[t].empty()) topic_peers.erase(t);
    }
    for (auto& [t, m] : mesh) m.erase(p);
    for (auto& [t, f] : fanout) f.erase(p);
    peers.erase(it);
    pending.erase(p);
    scores.disconnect(p, now);
  }

  void handle_subscription(const NodeId& from, Peer& peer, const GossipSubscription& sub) {
    if (sub.subscribe) {
      if (peer.topics.size() >= s.max_topics_per_peer && peer.topics.count(sub.topic) == 0) return;
      peer.topics.insert(sub.topic);
      topic_peers[sub.topic].insert(from);
      return;
    }
    peer.topics.erase(sub.topic);
    auto tp = topic_peers.find(sub.topic);
    if (tp != topic_peers.end()) {
      tp->second.erase(from);
      if (tp->second.empty()) topic_peers.erase(tp);
    }
    if (auto m = mesh.find(sub.topic); m != mesh.end()) m->second.erase(from);
    if (auto f = fanout.find(sub.topic); f != fanout.end()) f->second.erase(from);
  }

  void handle_message(const NodeId& from, const GossipPayload& m, TimePoint now) {
    ++stats.received;
    if (!m.data) return;
    if (m.data->size() > s.max_message_bytes) {
      // Every node of a network shares the limit: an honest peer never
      // forwards an oversize message.
      ++stats.oversize;
      scores.invalid_message(from);
      return;
    }
    const MessageId id = gossip_message_id(m.topic, *m.data);
    if (const auto* state = seen.find(id)) {
      ++stats.duplicates;
      if (*state == detail::SeenState::rejected) {
        ++stats.rejected;
        scores.invalid_message(from);
      }
      return;
    }
    if (subs.count(m.topic) == 0) {
      ++stats.ignored;
      return;
    }
    ++stats.first_received;
    promises.erase(id);
    std::shared_ptr<const void> decoded;
    const Validation v =
        validator ? validator(from, m.topic, *m.data, decoded) : Validation::accept;
    switch (v) {
      case Validation::reject:
        seen.insert(id, detail::SeenState::rejected, now);
        ++stats.rejected;
        scores.invalid_message(from);
        return;
      case Validation::ignore:
        seen.insert(id, detail::SeenState::ignored, now);
        ++stats.ignored;
        return;
      case Validation::accept:
        break;
    }
    seen.insert(id, detail::SeenState::accepted, now);
    scores.first_delivery(from);
    ++stats.delivered;
    outputs.emplace_back(GossipDeliver{from, m.topic, id, m.data, std::move(decoded)});
    mcache.put(id, m.topic, m.data);
    for (const auto& p : mesh[m.topic]) {
      if (p != from) send_message(p, m);
    }
  }

  void handle_ihave(const NodeId& from, Peer& peer, const std::vector<GossipIhave>& ihave,
                    TimePoint now) {
    if (ihave.empty() || score(from) < s.score.gossip_threshold) return;
    std::vector<MessageId> want;
    std::set<MessageId> asked;
    for (const auto& entry : ihave) {
      if (++peer.ihave_rpcs > s.max_ihave_messages) {
        scores.behaviour_penalty(from);
        break;
      }
      if (subs.count(entry.topic) == 0) continue;
      for (const auto& id : entry.ids) {
        if (seen.find(id) != nullptr || promises.count(id) != 0) continue;
        if (asked.insert(id).second) want.push_back(id);
      }
    }
    const size_t budget =
        s.max_ihave_length > peer.iwant_asked ? s.max_ihave_length - peer.iwant_asked : 0;
    if (want.size() > budget) {
      shuffle(want);
      want.resize(budget);
    }
    if (want.empty()) return;
    peer.iwant_asked += want.size();
    stats.iwant_sent += want.size();
    auto& rpc = rpc_for(from);
    for (const auto& id : want) {
      promises.emplace(id, Promise{from, now + s.iwant_followup});
      rpc.iwant.push_back(id);
    }
  }

  void handle_iwant(const NodeId& from, Peer& peer, const std::vector<MessageId>& iwant) {
    if (iwant.empty() || score(from) < s.score.gossip_threshold) return;
    for (const auto& id : iwant) {
      // Bounded per heartbeat by max_ihave_length, the same budget we grant
      // ourselves when asking.
      if (peer.iwant_served >= s.max_ihave_length) break;
      const GossipPayload* m = mcache.serve(id, from, s.gossip_retransmission);
      if (m == nullptr) continue;
      ++peer.iwant_served;
      ++stats.iwant_served;
      send_message(from, *m);
    }
  }

  void handle_graft(const NodeId& from, Peer& peer, const std::vector<TopicId>& topics,
                    TimePoint now) {
    for (TopicId t : topics) {
      // A GRAFT for a topic we do not serve is ignored rather than answered,
      // so it cannot be used to make us send traffic.
      if (subs.count(t) == 0) continue;
      if (peer.topics.count(t) == 0) {
        // Subscriptions precede GRAFTs on an ordered stream: a GRAFT without
        // one is a protocol error.
        scores.behaviour_penalty(from);
        continue;
      }
      auto& m = mesh[t];
      if (m.count(from) != 0) continue;
      if (graft_too_early(from, t, now)) {
        scores.behaviour_penalty(from);
        prune(from, t, s.prune_backoff, now);
        continue;
      }
      if (score(from) < 0 || (m.size() >= s.mesh_degree_high && !peer.outbound)) {
        prune(from, t, s.prune_backoff, now);
        continue;
      }
      m.insert(from);
    }
  }

  void handle_prune(const NodeId& from, const std::vector<GossipPrune>& prunes, TimePoint now) {
    for (const auto& p : prunes) {
      // Backoff only matters where we keep a mesh: recording it for any
      // topic a peer names would let it grow the map without bound.
      if (subs.count(p.topic) == 0) continue;
      if (auto m = mesh.find(p.topic); m != mesh.end()) m->second.erase(from);
      const uint32_t secs = std::min(p.backoff_seconds, kMaxAcceptedBackoffSeconds);
      add_backoff(from, p.topic, secs > 0 ? std::chrono::seconds(secs) : s.prune_backoff, now);
    }
  }

  void handle_rpc(const NodeId& from, GossipRpc& rpc, TimePoint now) {
    auto it = peers.find(from);
    if (it == peers.end()) return;
    if (score(from) < s.score.graylist_threshold) {
      ++stats.graylisted_rpcs;
      check_graylist(from);
      return;
    }
    Peer& peer = it->second;
    for (const auto& sub : rpc.subscriptions) handle_subscription(from, peer, sub);
    for (const auto& m : rpc.messages) handle_message(from, m, now);
    handle_ihave(from, peer, rpc.ihave, now);
    handle_iwant(from, peer, rpc.iwant);
    handle_graft(from, peer, rpc.graft, now);
    handle_prune(from, rpc.prune, now);
    check_graylist(from);
    flush();
  }

  void handle_frame(const NodeId& from, ByteSpan body, TimePoint now) {
    if (peers.count(from) == 0) return;
    auto rpc = decode_gossip_rpc(body);
    if (!rpc) {
      ++stats.malformed_rpcs;
      scores.invalid_message(from);
      check_graylist(from);
      return;
    }
    handle_rpc(from, *rpc, now);
  }

  // ---- local operations ----

  Result<MessageId> publish(TopicId t, Bytes data, TimePoint now) {
    if (data.size() > s.max_message_bytes) {
      return make_error(Errc::invalid_argument,
                        "gossip publish on shard " + std::to_string(t.value) + ": " +
                            std::to_string(data.size()) + " bytes exceeds max_message_bytes " +
                            std::to_string(s.max_message_bytes));
    }
    const MessageId id = gossip_message_id(t, data);
    if (seen.find(id) != nullptr) {
      return make_error(Errc::conflict, "gossip publish on shard " + std::to_string(t.value) +
                                            ": message " + id.hex().substr(0, 16) +
                                            " was already seen");
    }
    GossipPayload m{t, std::make_shared<const Bytes>(std::move(data))};
    seen.insert(id, detail::SeenState::accepted, now);
    mcache.put(id, t, m.data);
    ++stats.published;

    std::set<NodeId> targets;
    const auto publishable = [&](const NodeId& p) { return score(p) >= s.score.publish_threshold; };
    if (s.flood_publish) {
      if (auto tp = topic_peers.find(t); tp != topic_peers.end()) {
        for (const auto& p : tp->second) {
          if (publishable(p)) targets.insert(p);
        }
      }
    }
    if (subs.count(t) != 0) {
      for (const auto& p : mesh[t]) targets.insert(p);
    } else {
      fanout_last_publish[t] = now;
      auto& f = fanout[t];
      if (f.empty()) {
        for (const auto& p : candidates(t, publishable)) {
          if (f.size() >= s.mesh_degree) break;
          f.insert(p);
        }
      }
      targets.insert(f.begin(), f.end());
    }
    for (const auto& p : targets) send_message(p, m);
    flush();
    return id;
  }

  void subscribe(TopicId t, TimePoint now) {
    if (!subs.insert(t).second) return;
    for (auto& [p, peer] : peers) rpc_for(p).subscriptions.push_back(GossipSubscription{true, t});
    auto& m = mesh[t];
    // Join: fanout peers first (already known to be good for this topic),
    // then random subscribed peers, up to D.
    if (auto f = fanout.find(t); f != fanout.end()) {
      for (const auto& p : f->second) {
        if (m.size() >= s.mesh_degree) break;
        if (score(p) >= 0 && !backing_off(p, t, now)) graft(p, t);
      }
      fanout.erase(f);
      fanout_last_publish.erase(t);
    }
    for (const auto& p : candidates(t, [&](const NodeId& c) {
           return m.count(c) == 0 && score(c) >= 0 && !backing_off(c, t, now);
         })) {
      if (m.size() >= s.mesh_degree) break;
      graft(p, t);
    }
    flush();
  }

  void unsubscribe(TopicId t, TimePoint now) {
    if (subs.erase(t) == 0) return;
    for (auto& [p, peer] : peers) rpc_for(p).subscriptions.push_back(GossipSubscription{false, t});
    if (auto m = mesh.find(t); m != mesh.end()) {
      for (const auto& p : m->second) prune(p, t, s.unsubscribe_backoff, now);
      mesh.erase(m);
    }
    flush();
  }

  // ---- heartbeat ----

  void maintain_mesh(TopicId t, std::set<NodeId>& m, TimePoint now) {
    // Drop peers whose score went negative.
    for (auto it = m.begin(); it != m.end();) {
      if (score(*it) < 0) {
        prune(*it, t, s.prune_backoff, now);
        it = m.erase(it);
      } else {
        ++it;
      }
    }
    const auto graftable = [&](const NodeId& c) {
      return m.count(c) == 0 && score(c) >= 0 && !backing_off(c, t, now);
    };
    const auto is_outbound = [&](const NodeId& p) {
      auto it = peers.find(p);
      return it != peers.end() && it->second.outbound;
    };

    if (m.size() < s.mesh_degree_low) {
      for (const auto& p : candidates(t, graftable)) {
        if (m.size() >= s.mesh_degree) break;
        graft(p, t);
      }
    }

    if (m.size() > s.mesh_degree_high) {
      // Keep the D_score best, then fill to D at random; then make sure at
      // least D_out of the survivors are outbound.
      std::vector<NodeId> all(m.begin(), m.end());
      shuffle(all);  // random tie-break among equal scores
      std::stable_sort(all.begin(), all.end(),
                       [&](const NodeId& a, const NodeId& b) { return score(a) > score(b); });
      std::vector<NodeId> keep(all.begin(),
                               all.begin() + static_cast<std::ptrdiff_t>(s.mesh_keep_best));
      std::vector<NodeId> rest(all.begin() + static_cast<std::ptrdiff_t>(s.mesh_keep_best),
                               all.end());
      shuffle(rest);
      const size_t random_slots = s.mesh_degree - s.mesh_keep_best;
      std::vector<NodeId> chosen(rest.begin(),
                                 rest.begin() + static_cast<std::ptrdiff_t>(random_slots));
      std::vector<NodeId> dropped(rest.begin() + static_cast<std::ptrdiff_t>(random_slots),
                                  rest.end());
      size_t outbound = 0;
      for (const auto& p : keep)
        if (is_outbound(p)) ++outbound;
      for (const auto& p : chosen)
        if (is_outbound(p)) ++outbound;
      for (auto& d : dropped) {
        if (outbound >= s.mesh_outbound_min) break;
        if (!is_outbound(d)) continue;
        // Swap an inbound random pick for this outbound peer.
        auto victim = std::find_if(chosen.rbegin(), chosen.rend(),
                                   [&](const NodeId& c) { return !is_outbound(c); });
        if (victim == chosen.rend()) break;
        std::swap(*victim, d);
        ++outbound;
      }
      for (const auto& p : dropped) {
        m.erase(p);
        prune(p, t, s.prune_backoff, now);
      }
    }

    if (m.size() >= s.mesh_degree_low) {
      size_t outbound = 0;
      for (const auto& p : m)
        if (is_outbound(p)) ++outbound;
      if (outbound < s.mesh_outbound_min) {
        for (const auto& p : candidates(t, graftable)) {
          if (outbound >= s.mesh_outbound_min) break;
          if (!is_outbound(p)) continue;
          graft(p, t);
          ++outbound;
        }
      }
    }

    if (s.opportunistic_graft_ticks > 0 && ticks % s.opportunistic_graft_ticks == 0 &&
        m.size() > 1) {
      std::vector<double> sc;
      for (const auto& p : m) sc.push_back(score(p));
      std::sort(sc.begin(), sc.end());
      const double median = sc[sc.size() / 2];
      if (median < s.opportunistic_graft_threshold) {
        size_t added = 0;
        for (const auto& p : candidates(t, graftable)) {
          if (added >= s.opportunistic_graft_peers) break;
          if (score(p) <= median) continue;
          graft(p, t);
          ++added;
        }
      }
    }
  }

  void maintain_fanout(TimePoint now) {
    for (auto it = fanout.begin(); it != fanout.end();) {
      const TopicId t = it->first;
      auto last = fanout_last_publish.find(t);
      if (last == fanout_last_publish.end() || last->second + s.fanout_ttl <= now) {
        fanout_last_publish.erase(t);
        it = fanout.erase(it);
        continue;
      }
      auto& f = it->second;
      for (auto p = f.begin(); p != f.end();) {
        if (score(*p) < s.score.publish_threshold) {
          p = f.erase(p);
        } else {
          ++p;
        }
      }
      if (f.size() < s.mesh_degree) {
        for (const auto& p : candidates(t, [&](const NodeId& c) {
               return f.count(c) == 0 && score(c) >= s.score.publish_threshold;
             })) {
          if (f.size() >= s.mesh_degree) break;
          f.insert(p);
        }
      }
      ++it;
    }
  }

  void emit_gossip() {
    for (TopicId t : mcache.gossip_topics()) {
      const std::set<NodeId>* exclude = nullptr;
      if (auto m = mesh.find(t); m != mesh.end()) {
        exclude = &m->second;
      } else if (auto f = fanout.find(t); f != fanout.end()) {
        exclude = &f->second;
      } else {
        continue;  // neither subscribed nor publishing to it lately
      }
      auto ids = mcache.gossip_ids(t);
      if (ids.size() > s.max_ihave_length) {
        shuffle(ids);
        ids.resize(s.max_ihave_length);
      }
      auto targets = candidates(t, [&](const NodeId& c) {
        return exclude->count(c) == 0 && score(c) >= s.score.gossip_threshold;
      });
      const size_t wanted =
          std::max(s.mesh_degree_lazy,
                   static_cast<size_t>(s.gossip_factor * static_cast<double>(targets.size())));
      if (targets.size() > wanted) targets.resize(wanted);
      for (const auto& p : targets) {
        rpc_for(p).ihave.push_back(GossipIhave{t, ids});
        stats.ihave_sent += ids.size();
      }
    }
  }

  void heartbeat(TimePoint now) {
    ++ticks;
    for (auto& [p, peer] : peers) {
      peer.ihave_rpcs = 0;
      peer.iwant_asked = 0;
      peer.iwant_served = 0;
    }
    for (auto it = promises.begin(); it != promises.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      if (peers.count(it->second.peer) != 0) {
        ++stats.broken_promises;
        scores.behaviour_penalty(it->second.peer);
      }
      it = promises.erase(it);
    }
    const auto slack = s.heartbeat_interval * static_cast<int64_t>(s.backoff_slack_heartbeats);
    for (auto t = backoff.begin(); t != backoff.end();) {
      for (auto p = t->second.begin(); p != t->second.end();) {
        p = p->second + slack <= now ? t->second.erase(p) : std::next(p);
      }
      t = t->second.empty() ? backoff.erase(t) : std::next(t);
    }
    for (auto& [t, m] : mesh) maintain_mesh(t, m, now);
    maintain_fanout(now);
    emit_gossip();
    mcache.shift();
    seen.expire(now);
    scores.decay(now);
    for (const auto& [p, peer] : peers) check_graylist(p);
    flush();
  }
};

GossipRouter::GossipRouter(const NodeId& self, GossipSettings settings, uint64_t seed)
    : impl_(std::make_unique<Impl>(self, settings, seed)) {}
GossipRouter::~GossipRouter() = default;

const GossipSettings& GossipRouter::settings() const noexcept { return impl_->s; }
void GossipRouter::set_validator(GossipValidator validator) {
  if (!validator) {
    impl_->validator = nullptr;
    return;
  }
  impl_->validator = [v = std::move(validator)](const NodeId& from, TopicId topic, ByteSpan data,
                                                std::shared_ptr<const void>&) {
    return v(from, topic, data);
  };
}
void GossipRouter::set_validator(GossipDecodingValidator validator) {
  impl_->validator = std::move(validator);
}

void GossipRouter::add_peer(const NodeId& peer, bool outbound, TimePoint) {
  impl_->add_peer(peer, outbound);
}
void GossipRouter::remove_peer(const NodeId& peer, TimePoint now) { impl_->remove_peer(peer, now); }
void GossipRouter::handle_frame(const NodeId& from, ByteSpan body, TimePoint now) {
  impl_->handle_frame(from, body, now);
}
void GossipRouter::handle_rpc(const NodeId& from, GossipRpc rpc, TimePoint now) {
  impl_->handle_rpc(from, rpc, now);
}
void GossipRouter::heartbeat(TimePoint now) { impl_->heartbeat(now); }
Result<MessageId> GossipRouter::publish(TopicId topic, Bytes data, TimePoint now) {
  return impl_->publish(topic, std::move(data), now);
}
void GossipRouter::subscribe(TopicId topic, TimePoint now) { impl_->subscribe(topic, now); }
void GossipRouter::unsubscribe(TopicId topic, TimePoint now) { impl_->unsubscribe(topic, now); }

std::vector<GossipOutput> GossipRouter::take_outputs() {
  std::vector<GossipOutput> out;
  out.swap(impl_->outputs);
  return out;
}

bool GossipRouter::subscribed(TopicId topic) const { return impl_->subs.count(topic) != 0; }
std::vector<TopicId> GossipRouter::subscriptions() const {
  return {impl_->subs.begin(), impl_->subs.end()};
}
std::vector<NodeId> GossipRouter::mesh(TopicId topic) const {
  auto it = impl_->mesh.find(topic);
  if (it == impl_->mesh.end()) return {};
  return {it->second.begin(), it->second.end()};
}
std::vector<NodeId> GossipRouter::topic_peers(TopicId topic) const {
  auto it = impl_->topic_peers.find(topic);
  if (it == impl_->topic_peers.end()) return {};
  return {it->second.begin(), it->second.end()};
}
std::vector<TopicId> GossipRouter::peer_topics(const NodeId& peer) const {
  auto it = impl_->peers.find(peer);
  if (it == impl_->peers.end()) return {};
  return {it->second.topics.begin(), it->second.topics.end()};
}
std::vector<NodeId> GossipRouter::peers() const {
  std::vector<NodeId> out;
  for (const auto& [p, peer] : impl_->peers) out.push_back(p);
  return out;
}
double GossipRouter::score(const NodeId& peer) const { return impl_->score(peer); }
const GossipStats& GossipRouter::stats() const noexcept { return impl_->stats; }

}  // namespace cairn::p2p
