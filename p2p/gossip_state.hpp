#pragma once
// Bounded bookkeeping behind the gossip router: the seen cache, the message
// cache (IHAVE windows and IWANT source) and the peer scores. Private to
// cairn_p2p; the router owns one of each and calls them from its strand.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "cairn/p2p/gossip.hpp"

namespace cairn::p2p::detail {

// What the router decided about a message id it has seen.
enum class SeenState : uint8_t { accepted, ignored, rejected };

// Ids of messages handled recently. An id stays for `ttl` after its first
// sighting; when `max` entries are held the oldest is evicted first, so a
// flood of fresh ids can only shorten how long old ids are remembered.
class SeenCache {
 public:
  SeenCache(std::chrono::milliseconds ttl, size_t max) : ttl_(ttl), max_(max) {}

  // Records `id` (first sighting wins; a later insert of a held id only
  // updates its state). Returns true when the id was new.
  bool insert(const MessageId& id, SeenState state, TimePoint now);
  // The state of a held id, nullptr when not held.
  const SeenState* find(const MessageId& id) const;
  void expire(TimePoint now);
  size_t size() const noexcept { return states_.size(); }

 private:
  std::chrono::milliseconds ttl_;
  size_t max_;
  std::unordered_map<MessageId, SeenState> states_;
  std::deque<std::pair<TimePoint, MessageId>> order_;  // oldest first
};

// Recent messages in heartbeat windows (newest first). The newest
// `gossip_windows` are advertised by IHAVE; all `windows` answer IWANT.
class MessageCache {
 public:
  MessageCache(size_t windows, size_t gossip_windows, size_t window_max);

  // Caches a message in the newest window. False when the id is already
  // cached or the window is full (the message is then simply not offered by
  // IHAVE).
  bool put(const MessageId& id, TopicId topic, std::shared_ptr<const Bytes> data);
  bool contains(const MessageId& id) const { return entries_.count(id) != 0; }
  // The message for an IWANT from `peer`, unless it was already served to
  // that peer `max_transmissions` times (then nullopt, as when absent).
  const GossipPayload* serve(const MessageId& id, const NodeId& peer, size_t max_transmissions);
  // Ids of `topic` in the advertised windows, newest first.
  std::vector<MessageId> gossip_ids(TopicId topic) const;
  // Topics with at least one message in the advertised windows.
  std::vector<TopicId> gossip_topics() const;
  // Starts a new window and drops the oldest.
  void shift();
  size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    GossipPayload payload;
    std::map<NodeId, uint8_t> served;  // IWANT transmissions per peer
  };
  struct Slot {
    MessageId id;
    TopicId topic;
  };
  size_t gossip_windows_;
  size_t window_max_;
  std::deque<std::vector<Slot>> windows_;  // front: newest
  std::unordered_map<MessageId, Entry> entries_;
};

// Per-peer score (see GossipScoreSettings). Records of disconnected peers
// are retained for retain_score, at most max_retained_scores of them.
class PeerScores {
 public:
  explicit PeerScores(const GossipScoreSettings& s) : s_(s) {}

  void connect(const NodeId& peer);
  void disconnect(const NodeId& peer, TimePoint now);
  double score(const NodeId& peer) const;

  void first_delivery(const NodeId& peer);
  void invalid_message(const NodeId& peer);
  void behaviour_penalty(const NodeId& peer, double count = 1);
  // Applies one heartbeat of decay and drops expired retained records.
  void decay(TimePoint now);

 private:
  struct Record {
    double first_deliveries = 0;
    double invalid = 0;
    double behaviour = 0;
    bool connected = false;
    TimePoint retain_until{};
  };
  Record* find(const NodeId& peer);
  GossipScoreSettings s_;
  std::unordered_map<NodeId, Record> records_;
  size_t retained_ = 0;
};

}  // namespace cairn::p2p::detail
