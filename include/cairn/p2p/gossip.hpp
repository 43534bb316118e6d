#pragma once
// The gossip router: one topic per shard, a gossipsub v1.1 style mesh per
// topic, written sans-IO. It never touches a socket, a timer or a thread: the
// owner feeds it inputs (peer added / removed, RPC from a peer, heartbeat at a
// given time, local publish / subscribe / unsubscribe) and drains its outputs
// (send an RPC to a peer, deliver a message locally, disconnect a peer). Given
// the same seed and the same inputs it produces the same outputs, which is
// what the multi-node simulations rely on.
//
// Threading: not thread-safe. The owner calls it from one strand.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/p2p/gossip_wire.hpp"

namespace cairn::p2p {

// Peer scoring, after gossipsub v1.1 (P2 first deliveries, P4 invalid
// messages, P7 behaviour penalty), kept per peer rather than per topic
// because every cairn topic carries the same kind of traffic.
struct GossipScoreSettings {
  // Score added per first delivery of a valid message, and the cap on the
  // counter. Default 0.1 x 20 = at most +2, so good history cannot buy the
  // right to send even one invalid message without going negative.
  double first_delivery_weight = 0.1;
  double first_delivery_cap = 20;
  // Score per invalid message squared (P4). Default -10: one rejected message
  // makes a peer negative (pruned, not grafted), three cross the graylist
  // threshold (disconnected). Larger magnitude: faster eviction, less
  // tolerance for validators that disagree.
  double invalid_message_weight = -10;
  // Score per misbehaviour squared (GRAFT during backoff, IWANT promise not
  // kept, malformed RPC, IHAVE flooding). Default -1 with threshold 2: two
  // slips are forgiven, a pattern is not.
  double behaviour_penalty_weight = -1;
  double behaviour_penalty_threshold = 2;
  // Multiplicative decay of every counter per heartbeat; counters below
  // decay_to_zero become 0. Default 0.99 per heartbeat: an invalid message is
  // half forgotten after ~70 heartbeats (~70 s at the default interval).
  double decay = 0.99;
  double decay_to_zero = 0.01;
  // Below gossip_threshold no IHAVE/IWANT is exchanged with the peer; below
  // publish_threshold it is not a flood-publish target; below
  // graylist_threshold its RPCs are ignored and the owner is told to
  // disconnect it. Must satisfy 0 >= gossip >= publish >= graylist.
  double gossip_threshold = -10;
  double publish_threshold = -50;
  double graylist_threshold = -80;
  // How long a disconnected peer's score is remembered (so reconnecting does
  // not launder a bad score), and how many such records are kept.
  std::chrono::milliseconds retain_score{std::chrono::minutes(10)};
  size_t max_retained_scores = 4096;
};

// Router settings. Names follow the gossipsub spec where one exists.
struct GossipSettings {
  // Mesh degree D and its bounds: below D_low the heartbeat grafts up to D,
  // above D_high it prunes down to D. Larger D: lower latency and more
  // resilience, more duplicate traffic (about D copies of each message).
  size_t mesh_degree = 6;
  size_t mesh_degree_low = 4;
  size_t mesh_degree_high = 12;
  // D_lazy: minimum number of non-mesh peers that receive IHAVE per topic per
  // heartbeat; gossip_factor raises it to that fraction of eligible peers.
  size_t mesh_degree_lazy = 6;
  double gossip_factor = 0.25;
  // D_score: when pruning an oversubscribed mesh, keep this many best-scored
  // peers; the rest of the D survivors are chosen at random.
  size_t mesh_keep_best = 4;
  // D_out: keep at least this many outbound (dialled by us) peers in each
  // mesh, so inbound connections alone cannot eclipse a node. Must be
  // < mesh_degree_low and <= mesh_degree / 2.
  size_t mesh_outbound_min = 2;
  // Heartbeat period. The owner calls heartbeat() at this interval; counters
  // below that say "per heartbeat" scale with it. Shorter: faster healing and
  // lazy pull, more control traffic.
  std::chrono::milliseconds heartbeat_interval{1000};
  // Opportunistic grafting: every this many heartbeats, if the median mesh
  // score of a topic is below opportunistic_graft_threshold, graft up to
  // opportunistic_graft_peers better-scored peers. 0 disables.
  size_t opportunistic_graft_ticks = 60;
  size_t opportunistic_graft_peers = 2;
  double opportunistic_graft_threshold = 1.0;
  // Fanout (publishing to a topic we are not subscribed to): peers are kept
  // for this long after the last publish.
  std::chrono::milliseconds fanout_ttl{std::chrono::seconds(60)};
  // Publish a local message to every subscribed peer with score >=
  // publish_threshold, not only the mesh. Faster first hop, a few more
  // duplicates.
  bool flood_publish = true;
  // Message cache: history_length heartbeat windows are kept for IWANT, the
  // newest history_gossip of them are advertised by IHAVE. At most
  // mcache_window_max messages per window (the rest are forwarded but not
  // cached). Memory bound: history_length x mcache_window_max x
  // max_message_bytes.
  size_t history_length = 5;
  size_t history_gossip = 3;
  size_t mcache_window_max = 2048;
  // Seen cache: ids of messages already handled, so duplicates are dropped.
  // Entries live seen_ttl and at most seen_max are kept (oldest evicted).
  // seen_ttl must exceed the longest time a message can circulate.
  std::chrono::milliseconds seen_ttl{std::chrono::minutes(2)};
  size_t seen_max = 1 << 17;
  // Largest message payload accepted or published, bytes. Gossip carries
  // announcements and challenge responses, never fragments. Must be <=
  // kMaxGossipDataBytes and fit the transport's frame limit.
  size_t max_message_bytes = 256 * 1024;
  // Budget for one outgoing RPC, bytes; larger batches are split.
  size_t max_rpc_bytes = 1024 * 1024;
  // Backoff after a PRUNE: neither side re-grafts the topic before it ends.
  // The unsubscribe backoff applies when a node leaves a topic. A slack of
  // backoff_slack_heartbeats is added on our own re-graft side.
  std::chrono::seconds prune_backoff{60};
  std::chrono::seconds unsubscribe_backoff{10};
  size_t backoff_slack_heartbeats = 2;
  // Per peer per heartbeat: IHAVE RPC entries we act on, and message ids we
  // request by IWANT in total. Bounds what a peer can make us ask for.
  size_t max_ihave_messages = 10;
  size_t max_ihave_length = 5000;
  // IWANT: a requested message must arrive within this time or the promising
  // peer is penalised; each cached message is served to one peer at most
  // gossip_retransmission times.
  std::chrono::milliseconds iwant_followup{std::chrono::seconds(3)};
  size_t gossip_retransmission = 3;
  // Most topics one peer may announce (one per shard it serves).
  size_t max_topics_per_peer = 1024;
  // Scoring.
  GossipScoreSettings score;
};

// Checks the relations between settings (D_low <= D <= D_high, thresholds
// ordered, limits within the wire limits). Errc::invalid_argument names the
// offending field.
Status validate(const GossipSettings& s);

// Outcome of the application's validation hook for one message.
enum class Validation : uint8_t {
  accept,  // deliver locally and forward
  ignore,  // drop silently: not deliverable now, not the sender's fault
  reject,  // drop and charge the sender (invalid content)
};

// Runs before anything is delivered or forwarded. `from` is the peer that
// sent this copy. Must be cheap and must not call back into the router.
using GossipValidator = std::function<Validation(const NodeId& from, TopicId topic, ByteSpan data)>;
// The same, for a validator that decodes: what it leaves in `decoded` when
// it accepts is handed to the local handler in GossipDeliver::decoded, so a
// large message is decoded once, not again by the handler.
using GossipDecodingValidator = std::function<Validation(
    const NodeId& from, TopicId topic, ByteSpan data, std::shared_ptr<const void>& decoded)>;

// ---- outputs ----

// Send this RPC to `peer`. Each RPC respects the wire limits and
// max_rpc_bytes.
struct GossipSend {
  NodeId peer;
  GossipRpc rpc;
};

// A validated message for the local handler of `topic` (only topics we are
// subscribed to; our own publishes are not delivered back to us).
struct GossipDeliver {
  NodeId from;
  TopicId topic;
  MessageId id;
  std::shared_ptr<const Bytes> data;
  // What a GossipDecodingValidator decoded from `data` (null otherwise).
  std::shared_ptr<const void> decoded;
};

// The peer's score fell below the graylist threshold (or it sent malformed
// RPCs until it did): the owner should disconnect it through the peer
// manager, which may ban it.
struct GossipDisconnect {
  NodeId peer;
  double score = 0;
  std::string reason;
};

using GossipOutput = std::variant<GossipSend, GossipDeliver, GossipDisconnect>;

// Counters since construction.
struct GossipStats {
  uint64_t published = 0;        // local publishes
  uint64_t received = 0;         // message copies received from peers (incl. duplicates)
  uint64_t first_received = 0;   // of which first copies (new ids)
  uint64_t delivered = 0;        // accepted and handed to the local handler
  uint64_t duplicates = 0;       // copies whose id was already seen
  uint64_t rejected = 0;         // validation said reject
  uint64_t ignored = 0;          // validation said ignore, or topic not subscribed
  uint64_t oversize = 0;         // payload over max_message_bytes
  uint64_t forwarded = 0;        // message copies sent to peers (incl. publishes)
  uint64_t ihave_sent = 0;       // ids advertised
  uint64_t iwant_sent = 0;       // ids requested
  uint64_t iwant_served = 0;     // messages sent in answer to IWANT
  uint64_t broken_promises = 0;  // IWANT not answered in time
  uint64_t grafts_sent = 0;
  uint64_t prunes_sent = 0;
  uint64_t malformed_rpcs = 0;
  uint64_t graylisted_rpcs = 0;  // RPCs ignored because the sender was graylisted
};

class GossipRouter {
 public:
  // `seed` drives every random choice (peer selection, shuffles).
  GossipRouter(const NodeId& self, GossipSettings settings, uint64_t seed);
  ~GossipRouter();
  GossipRouter(const GossipRouter&) = delete;
  GossipRouter& operator=(const GossipRouter&) = delete;

  const GossipSettings& settings() const noexcept;
  void set_validator(GossipValidator validator);
  void set_validator(GossipDecodingValidator validator);

  // ---- inputs ----

  // A connection to `peer` is up. `outbound`: we dialled it. Sends it our
  // subscriptions. A peer already added is left as it is.
  void add_peer(const NodeId& peer, bool outbound, TimePoint now);
  // The connection is gone: the peer leaves every mesh, fanout and topic.
  void remove_peer(const NodeId& peer, TimePoint now);
  // A gossip frame body from `from`. Malformed bytes count against the peer.
  void handle_frame(const NodeId& from, ByteSpan body, TimePoint now);
  void handle_rpc(const NodeId& from, GossipRpc rpc, TimePoint now);
  // Mesh maintenance, fanout expiry, IHAVE emission, cache shifting, score
  // decay. Call every settings().heartbeat_interval.
  void heartbeat(TimePoint now);
  // Publishes `data` on `topic` (subscribed or not: fanout otherwise) and
  // returns its id. Errc::invalid_argument when over max_message_bytes,
  // Errc::conflict when the same message was already seen. With no peer for
  // the topic yet the message is only cached (and offered by IHAVE for
  // history_gossip heartbeats): that is not an error.
  Result<MessageId> publish(TopicId topic, Bytes data, TimePoint now);
  void subscribe(TopicId topic, TimePoint now);
  void unsubscribe(TopicId topic, TimePoint now);

  // ---- outputs ----
  // Everything produced since the last call, in order.
  std::vector<GossipOutput> take_outputs();

  // ---- introspection ----
  bool subscribed(TopicId topic) const;
  std::vector<TopicId> subscriptions() const;
  std::vector<NodeId> mesh(TopicId topic) const;
  // Connected peers that announced `topic`.
  std::vector<NodeId> topic_peers(TopicId topic) const;
  std::vector<TopicId> peer_topics(const NodeId& peer) const;
  std::vector<NodeId> peers() const;
  double score(const NodeId& peer) const;
  const GossipStats& stats() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::p2p
