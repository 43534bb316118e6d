#include "cairn/p2p/discovery.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <set>

namespace cairn::p2p {

namespace {

bool serves(const std::vector<ShardId>& shards, ShardId s) {
  return std::binary_search(shards.begin(), shards.end(), s);
}

bool overlaps(const std::vector<ShardId>& a, const std::vector<ShardId>& b) {
  return std::any_of(a.begin(), a.end(), [&](ShardId s) { return serves(b, s); });
}

void normalise(std::vector<ShardId>& shards) {
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  if (shards.size() > kMaxPxShards) shards.resize(kMaxPxShards);
}

}  // namespace

void StaticEndpointSource::put(PeerRecord record) {
  normalise(record.shards);
  for (auto& r : records_) {
    if (r.id == record.id) {
      r = std::move(record);
      return;
    }
  }
  records_.push_back(std::move(record));
}

void StaticEndpointSource::remove(const NodeId& id) {
  records_.erase(std::remove_if(records_.begin(), records_.end(),
                                [&](const PeerRecord& r) { return r.id == id; }),
                 records_.end());
}

Result<std::vector<PeerRecord>> StaticEndpointSource::endpoints_for_shard(ShardId shard) {
  std::vector<PeerRecord> out;
  for (const auto& r : records_) {
    if (serves(r.shards, shard)) out.push_back(r);
  }
  if (out.empty()) {
    return make_error(Errc::not_found,
                      "no node registered for shard " + std::to_string(shard.value));
  }
  return out;
}

Status validate(const DiscoverySettings& s) {
  if (s.min_peers_per_shard == 0 || s.min_peers_per_shard > s.target_peers_per_shard) {
    return make_error(
        Errc::invalid_argument,
        "discovery settings: min_peers_per_shard must be in [1, target_peers_per_shard]");
  }
  if (s.max_dials_in_flight == 0) {
    return make_error(Errc::invalid_argument,
                      "discovery settings: max_dials_in_flight must be >= 1");
  }
  if (s.px_records == 0 || s.px_records > kMaxPxRecords) {
    return make_error(Errc::invalid_argument, "discovery settings: px_records must be in [1, 64]");
  }
  if (s.max_known_peers < s.px_records) {
    return make_error(Errc::invalid_argument,
                      "discovery settings: max_known_peers must be >= px_records");
  }
  for (const auto& b : s.bootstrap) {
    if (b.empty() || b.size() > kMaxPxAddressBytes) {
      return make_error(Errc::invalid_argument, "discovery settings: bootstrap address '" + b +
                                                    "' is empty or longer than 255 bytes");
    }
  }
  return {};
}

struct Discovery::Impl {
  struct Known {
    PeerRecord rec;
    bool from_chain = false;
    size_t failures = 0;
    TimePoint next_dial{};
    TimePoint learned{};
  };
  struct Conn {
    std::string address;
    bool outbound = false;
    TimePoint since{};
    std::vector<ShardId> shards;
    bool shards_known = false;
    bool answered = false;
    TimePoint last_answer{};
    bool dropping = false;  // a DiscoveryDisconnect was emitted
  };
  struct Dial {
    std::optional<NodeId> expected;
  };

  NodeId self;
  std::string self_address;
  std::vector<ShardId> served;
  DiscoverySettings s;
  std::mt19937_64 rng;
  EndpointSource* chain;
  DiscoveryStats stats;

  std::map<NodeId, Known> known;
  std::map<NodeId, Conn> connected;
  std::map<std::string, Dial> dialing;              // by address
  std::map<std::string, TimePoint> bootstrap_last;  // last dial per bootstrap address
  std::optional<TimePoint> last_chain_refresh;
  std::optional<TimePoint> last_px_ask;
  std::vector<DiscoveryOutput> outputs;

  Impl(const NodeId& id, std::string address, std::vector<ShardId> shards,
       DiscoverySettings settings, uint64_t seed, EndpointSource* source)
      : self(id),
        self_address(std::move(address)),
        served(std::move(shards)),
        s(std::move(settings)),
        rng(seed),
        chain(source) {
    normalise(served);
  }

  // Shards a connected peer serves: what it told us, else what others said.
  const std::vector<ShardId>* shards_of(const NodeId& id, const Conn& c) const {
    if (c.shards_known) return &c.shards;
    auto k = known.find(id);
    return k == known.end() ? nullptr : &k->second.rec.shards;
  }

  size_t connected_in(ShardId shard) const {
    size_t n = 0;
    for (const auto& [id, c] : connected) {
      const auto* sh = shards_of(id, c);
      if (sh != nullptr && serves(*sh, shard)) ++n;
    }
    return n;
  }

  size_t dialing_for(ShardId shard) const {
    size_t n = 0;
    for (const auto& [addr, d] : dialing) {
      if (!d.expected) continue;
      auto k = known.find(*d.expected);
      if (k != known.end() && serves(k->second.rec.shards, shard)) ++n;
    }
    return n;
  }

  bool is_self(const PeerRecord& r) const {
    return r.id == self || (!self_address.empty() && r.address == self_address);
  }

  void evict_if_full() {
    while (known.size() > s.max_known_peers) {
      auto victim = known.end();
      auto worse = [](const Known& a, const Known& b) {
        // Chain records are evicted last, then most failures, then oldest.
        if (a.from_chain != b.from_chain) return !a.from_chain;
        if (a.failures != b.failures) return a.failures > b.failures;
        return a.learned < b.learned;
      };
      for (auto it = known.begin(); it != known.end(); ++it) {
        if (connected.count(it->first) != 0 || dialing.count(it->second.rec.address) != 0) continue;
        if (victim == known.end() || worse(it->second, victim->second)) victim = it;
      }
      if (victim == known.end()) return;  // everything is in use; the bound is soft by that much
      known.erase(victim);
    }
  }

  void learn(PeerRecord rec, bool from_chain, TimePoint now) {
    if (is_self(rec) || rec.address.empty() || rec.address.size() > kMaxPxAddressBytes) return;
    normalise(rec.shards);
    auto it = known.find(rec.id);
    if (it == known.end()) {
      known.emplace(rec.id, Known{std::move(rec), from_chain, 0, {}, now});
      ++stats.records_learned;
      evict_if_full();
      return;
    }
    Known& k = it->second;
    // A chain record's address is not overridden by hearsay.
    if (from_chain || !k.from_chain) k.rec.address = rec.address;
    k.rec.shards = std::move(rec.shards);
    k.from_chain = k.from_chain || from_chain;
    k.learned = now;
  }

  void send(const NodeId& peer, PeerExchange px) {
    ++stats.px_sent;
    outputs.emplace_back(DiscoverySend{peer, std::move(px)});
  }

  PeerExchange hello(bool request) const {
    PeerExchange px;
    px.request = request;
    px.address = self_address.size() <= kMaxPxAddressBytes ? self_address : std::string();
    px.shards = served;
    return px;
  }

  // Records for someone serving `wanted` (all records when empty): connected
  // peers first (known alive), then the rest, random within each group.
  std::vector<PeerRecord> records_for(const std::vector<ShardId>& wanted, const NodeId& exclude) {
    std::vector<PeerRecord> live, rest;
    for (const auto& [id, k] : known) {
      if (id == exclude || k.failures > 0) continue;
      if (!wanted.empty() && !overlaps(k.rec.shards, wanted)) continue;
      (connected.count(id) != 0 ? live : rest).push_back(k.rec);
    }
    std::shuffle(live.begin(), live.end(), rng);
    std::shuffle(rest.begin(), rest.end(), rng);
    live.insert(live.end(), rest.begin(), rest.end());
    if (live.size() > s.px_records) live.resize(s.px_records);
    for (auto& r : live) {
      if (r.shards.size() > kMaxPxShards) r.shards.resize(kMaxPxShards);
    }
    return live;
  }

  void peer_connected(const NodeId& peer, const std::string& address, bool outbound,
                      TimePoint now) {
    Conn& c = connected[peer];
    c.address = address;
    c.outbound = outbound;
    c.since = now;
    if (auto k = known.find(peer); k != known.end()) {
      k->second.failures = 0;
      k->second.next_dial = {};
    }
    send(peer, hello(/*request=*/true));
  }

  void peer_disconnected(const NodeId& peer, TimePoint now) {
    connected.erase(peer);
    // Do not redial at once: the peer may have left on purpose.
    if (auto k = known.find(peer); k != known.end())
      k->second.next_dial = now + s.dial_backoff_base;
  }

  void handle_exchange(const NodeId& from, PeerExchange& px, TimePoint now) {
    auto it = connected.find(from);
    if (it == connected.end()) return;
    ++stats.px_received;
    Conn& c = it->second;
    normalise(px.shards);
    c.shards = px.shards;
    c.shards_known = true;
    if (!px.address.empty()) c.address = px.address;
    if (!c.address.empty()) learn(PeerRecord{from, c.address, px.shards}, false, now);
    for (auto& rec : px.records) {
      if (rec.id == from) continue;
      learn(std::move(rec), false, now);
    }
    if (px.request && (!c.answered || c.last_answer + s.px_answer_interval <= now)) {
      c.answered = true;
      c.last_answer = now;
      PeerExchange answer = hello(false);
      answer.records = records_for(px.shards, from);
      send(from, std::move(answer));
    }
  }

  void dial_result(const std::string& address, const Result<NodeId>& result, TimePoint now) {
    auto d = dialing.find(address);
    std::optional<NodeId> expected;
    if (d != dialing.end()) {
      expected = d->second.expected;
      dialing.erase(d);
    }
    if (result) return;
    ++stats.dial_failures;
    if (!expected) return;  // a bootstrap address: retried on its own schedule
    auto k = known.find(*expected);
    if (k == known.end()) return;
    Known& rec = k->second;
    ++rec.failures;
    if (!rec.from_chain && rec.failures >= s.px_max_failures) {
      known.erase(k);
      return;
    }
    auto wait = s.dial_backoff_base;
    for (size_t i = 1; i < rec.failures && wait < s.dial_backoff_max; ++i) wait *= 2;
    rec.next_dial = now + std::min(wait, s.dial_backoff_max);
  }

  void dial(const std::string& address, std::optional<NodeId> expected) {
    dialing[address] = Dial{expected};
    ++stats.dials;
    outputs.emplace_back(DiscoveryDial{address, expected});
  }

  void refresh_chain(TimePoint now) {
    if (chain == nullptr) return;
    if (last_chain_refresh && *last_chain_refresh + s.chain_refresh > now) return;
    last_chain_refresh = now;
    for (ShardId shard : served) {
      ++stats.chain_queries;
      auto records = chain->endpoints_for_shard(shard);
      if (!records) continue;
      for (auto& r : *records) learn(std::move(r), true, now);
    }
  }

  void drop_unrelated(TimePoint now) {
    if (served.empty() || s.unrelated_grace.count() == 0) return;
    for (auto& [id, c] : connected) {
      if (!c.outbound || c.dropping || c.since + s.unrelated_grace > now) continue;
      const auto* sh = shards_of(id, c);
      if (sh != nullptr && overlaps(*sh, served)) continue;
      c.dropping = true;
      ++stats.unrelated_disconnects;
      outputs.emplace_back(DiscoveryDisconnect{id, "serves none of our shards"});
    }
  }

  void tick(TimePoint now) {
    refresh_chain(now);
    drop_unrelated(now);

    // Shards by how short they are, shortest first.
    std::vector<std::pair<size_t, ShardId>> shortage;
    for (ShardId shard : served) {
      const size_t have = connected_in(shard) + dialing_for(shard);
      if (have < s.target_peers_per_shard) shortage.emplace_back(have, shard);
    }
    std::sort(shortage.begin(), shortage.end());

    bool starving = false;  // some shard below target with no candidate
    bool below_min = false;
    for (auto [have, shard] : shortage) {
      std::vector<const Known*> chain_first, others;
      for (const auto& [id, k] : known) {
        if (connected.count(id) != 0 || dialing.count(k.rec.address) != 0) continue;
        if (k.next_dial > now || !serves(k.rec.shards, shard)) continue;
        (k.from_chain ? chain_first : others).push_back(&k);
      }
      std::shuffle(chain_first.begin(), chain_first.end(), rng);
      std::shuffle(others.begin(), others.end(), rng);
      chain_first.insert(chain_first.end(), others.begin(), others.end());
      if (chain_first.empty()) {
        starving = true;
        if (connected_in(shard) < s.min_peers_per_shard) below_min = true;
      }
      for (const Known* k : chain_first) {
        if (have >= s.target_peers_per_shard || dialing.size() >= s.max_dials_in_flight) break;
        dial(k->rec.address, k->rec.id);
        ++have;
      }
    }

    if (starving && !connected.empty() &&
        (!last_px_ask || *last_px_ask + s.px_ask_interval <= now)) {
      last_px_ask = now;
      std::vector<NodeId> ask;
      for (const auto& [id, c] : connected) ask.push_back(id);
      std::shuffle(ask.begin(), ask.end(), rng);
      if (ask.size() > s.px_ask_peers) ask.resize(s.px_ask_peers);
      for (const auto& id : ask) send(id, hello(/*request=*/true));
    }

    if (connected.empty() || below_min) {
      dial_bootstrap(now, s.bootstrap_retry);
    } else if (starving) {
      dial_bootstrap(now, s.bootstrap_refresh);
    }
  }

  void dial_bootstrap(TimePoint now, std::chrono::milliseconds interval) {
    for (const auto& addr : s.bootstrap) {
      if (addr == self_address || dialing.count(addr) != 0) continue;
      if (dialing.size() >= s.max_dials_in_flight) break;
      bool up = false;
      for (const auto& [id, c] : connected) up = up || c.address == addr;
      if (up) continue;
      auto last = bootstrap_last.find(addr);
      if (last != bootstrap_last.end() && last->second + interval > now) continue;
      bootstrap_last[addr] = now;
      dial(addr, std::nullopt);
    }
  }
};

Discovery::Discovery(const NodeId& self, std::string self_address, std::vector<ShardId> served,
                     DiscoverySettings settings, uint64_t seed, EndpointSource* chain)
    : impl_(std::make_unique<Impl>(self, std::move(self_address), std::move(served),
                                   std::move(settings), seed, chain)) {}
Discovery::~Discovery() = default;

const DiscoverySettings& Discovery::settings() const noexcept { return impl_->s; }
void Discovery::set_self_address(std::string address) { impl_->self_address = std::move(address); }
void Discovery::set_served_shards(std::vector<ShardId> served) {
  normalise(served);
  impl_->served = std::move(served);
}

void Discovery::peer_connected(const NodeId& peer, const std::string& address, bool outbound,
                               TimePoint now) {
  impl_->peer_connected(peer, address, outbound, now);
}
void Discovery::peer_disconnected(const NodeId& peer, TimePoint now) {
  impl_->peer_disconnected(peer, now);
}
Status Discovery::handle_frame(const NodeId& from, ByteSpan body, TimePoint now) {
  auto px = decode_peer_exchange(body);
  if (!px) {
    ++impl_->stats.px_malformed;
    return tl::unexpected(px.error());
  }
  impl_->handle_exchange(from, *px, now);
  return {};
}
void Discovery::handle_exchange(const NodeId& from, PeerExchange px, TimePoint now) {
  impl_->handle_exchange(from, px, now);
}
void Discovery::dial_result(const std::string& address, const Result<NodeId>& result,
                            TimePoint now) {
  impl_->dial_result(address, result, now);
}
void Discovery::tick(TimePoint now) { impl_->tick(now); }

std::vector<DiscoveryOutput> Discovery::take_outputs() {
  std::vector<DiscoveryOutput> out;
  out.swap(impl_->outputs);
  return out;
}

size_t Discovery::connected_in_shard(ShardId shard) const { return impl_->connected_in(shard); }
size_t Discovery::known_peers() const { return impl_->known.size(); }
std::optional<PeerRecord> Discovery::record(const NodeId& id) const {
  auto it = impl_->known.find(id);
  if (it == impl_->known.end()) return std::nullopt;
  return it->second.rec;
}
const DiscoveryStats& Discovery::stats() const noexcept { return impl_->stats; }

}  // namespace cairn::p2p
