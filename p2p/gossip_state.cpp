#include "gossip_state.hpp"

#include <algorithm>

namespace cairn::p2p::detail {

// ---- SeenCache ----

bool SeenCache::insert(const MessageId& id, SeenState state, TimePoint now) {
  auto it = states_.find(id);
  if (it != states_.end()) {
    it->second = state;
    return false;
  }
  expire(now);
  while (!order_.empty() && states_.size() >= max_) {
    states_.erase(order_.front().second);
    order_.pop_front();
  }
  if (max_ == 0) return true;
  states_.emplace(id, state);
  order_.emplace_back(now, id);
  return true;
}

const SeenState* SeenCache::find(const MessageId& id) const {
  auto it = states_.find(id);
  return it == states_.end() ? nullptr : &it->second;
}

void SeenCache::expire(TimePoint now) {
  while (!order_.empty() && order_.front().first + ttl_ <= now) {
    states_.erase(order_.front().second);
    order_.pop_front();
  }
}

// ---- MessageCache ----

MessageCache::MessageCache(size_t windows, size_t gossip_windows, size_t window_max)
    : gossip_windows_(std::min(gossip_windows, windows)), window_max_(window_max) {
  windows_.resize(std::max<size_t>(windows, 1));
}

bool MessageCache::put(const MessageId& id, TopicId topic, std::shared_ptr<const Bytes> data) {
  auto& newest = windows_.front();
  if (newest.size() >= window_max_ || entries_.count(id) != 0) return false;
  entries_.emplace(id, Entry{GossipPayload{topic, std::move(data)}, {}});
  newest.push_back(Slot{id, topic});
  return true;
}

const GossipPayload* MessageCache::serve(const MessageId& id, const NodeId& peer,
                                         size_t max_transmissions) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return nullptr;
  uint8_t& count = it->second.served[peer];
  if (count >= max_transmissions) return nullptr;
  ++count;
  return &it->second.payload;
}

std::vector<MessageId> MessageCache::gossip_ids(TopicId topic) const {
  std::vector<MessageId> out;
  for (size_t w = 0; w < gossip_windows_ && w < windows_.size(); ++w) {
    for (const auto& slot : windows_[w]) {
      if (slot.topic == topic) out.push_back(slot.id);
    }
  }
  return out;
}

std::vector<TopicId> MessageCache::gossip_topics() const {
  std::vector<TopicId> out;
  for (size_t w = 0; w < gossip_windows_ && w < windows_.size(); ++w) {
    for (const auto& slot : windows_[w]) out.push_back(slot.topic);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void MessageCache::shift() {
  for (const auto& slot : windows_.back()) entries_.erase(slot.id);
  windows_.pop_back();
  windows_.emplace_front();
}

// ---- PeerScores ----

PeerScores::Record* PeerScores::find(const NodeId& peer) {
  auto it = records_.find(peer);
  return it == records_.end() ? nullptr : &it->second;
}

void PeerScores::connect(const NodeId& peer) {
  auto [it, inserted] = records_.try_emplace(peer);
  if (!inserted && !it->second.connected) --retained_;
  it->second.connected = true;
}

void PeerScores::disconnect(const NodeId& peer, TimePoint now) {
  Record* r = find(peer);
  if (r == nullptr || !r->connected) return;
  const bool worth_keeping = r->invalid > 0 || r->behaviour > 0;
  if (!worth_keeping || s_.max_retained_scores == 0) {
    records_.erase(peer);
    return;
  }
  if (retained_ >= s_.max_retained_scores) {
    // Evict the retained record that expires first.
    auto victim = records_.end();
    for (auto it = records_.begin(); it != records_.end(); ++it) {
      if (it->second.connected) continue;
      if (victim == records_.end() || it->second.retain_until < victim->second.retain_until) {
        victim = it;
      }
    }
    if (victim != records_.end()) {
      records_.erase(victim);
      --retained_;
    }
  }
  // `r` stays valid: erasing another element of an unordered_map does not
  // move this one.
  r->connected = false;
  r->retain_until = now + s_.retain_score;
  ++retained_;
}

double PeerScores::score(const NodeId& peer) const {
  auto it = records_.find(peer);
  if (it == records_.end()) return 0;
  const Record& r = it->second;
  double score = s_.first_delivery_weight * std::min(r.first_deliveries, s_.first_delivery_cap);
  score += s_.invalid_message_weight * r.invalid * r.invalid;
  if (r.behaviour > s_.behaviour_penalty_threshold) {
    const double excess = r.behaviour - s_.behaviour_penalty_threshold;
    score += s_.behaviour_penalty_weight * excess * excess;
  }
  return score;
}

void PeerScores::first_delivery(const NodeId& peer) {
  if (Record* r = find(peer))
    r->first_deliveries = std::min(r->first_deliveries + 1, s_.first_delivery_cap);
}

void PeerScores::invalid_message(const NodeId& peer) {
  if (Record* r = find(peer)) r->invalid += 1;
}

void PeerScores::behaviour_penalty(const NodeId& peer, double count) {
  if (Record* r = find(peer)) r->behaviour += count;
}

void PeerScores::decay(TimePoint now) {
  auto decay_one = [&](double& v) {
    v *= s_.decay;
    if (v < s_.decay_to_zero) v = 0;
  };
  for (auto it = records_.begin(); it != records_.end();) {
    Record& r = it->second;
    if (!r.connected && r.retain_until <= now) {
      it = records_.erase(it);
      --retained_;
      continue;
    }
    decay_one(r.first_deliveries);
    decay_one(r.invalid);
    decay_one(r.behaviour);
    ++it;
  }
}

}  // namespace cairn::p2p::detail
