#pragma once
// Peers on a manual clock for the engines' tests (gather, sync hints): each
// peer is a real sealed store served with serve_fragments, as the node
// serves, answering on the io_context after a per-peer virtual delay; every
// request is recorded with the virtual time it was sent at.

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "cairn/p2p/clock.hpp"
#include "cairn/shards/remote.hpp"
#include "cairn/shards/serve.hpp"
#include "shards/memory_network.hpp"

namespace cairn::shards::testing {

enum class PeerAnswer { honest, corrupt, missing, silent, busy };

// Peers answering on the io_context after a per-peer virtual delay. A
// silent peer's fetch times out after `timeout` (the port's own deadline).
class ClockedPeers final : public RemoteFragments {
 public:
  struct Sent {
    NodeId peer;
    FragmentRequest request;
    Duration at;  // virtual time since the clock's epoch
  };

  ClockedPeers(asio::io_context& io, p2p::ManualClock& clock, Duration timeout)
      : io_(io), clock_(clock), timeout_(timeout) {}

  // `listed`: peers() names it (a node serving the shard); an unlisted
  // peer answers all the same (an uploader outside the shard).
  void add(const NodeId& id, TestNode* node, PeerAnswer mode, Duration delay, bool listed = true) {
    peers_[id] = Peer{node, mode, delay, listed};
  }

  std::vector<NodeId> peers(ShardId) override {
    std::vector<NodeId> out;
    for (const auto& [id, p] : peers_) {
      if (p.listed) out.push_back(id);
    }
    return out;
  }

  Result<FetchHandle> fetch(const NodeId& peer, const FragmentRequest& request,
                            FetchCallback done) override {
    auto it = peers_.find(peer);
    if (it == peers_.end()) return make_error(Errc::not_found, "unknown peer");
    if (it->second.mode == PeerAnswer::busy) return make_error(Errc::busy, "full");
    sent_.push_back(Sent{peer, request, clock_.elapsed()});
    const FetchHandle h = next_++;
    Pending& p = pending_[h];
    p.peer = peer;
    p.request = request;
    p.done = std::move(done);
    p.timer = clock_.make_timer(io_.get_executor());
    const Duration wait = it->second.mode == PeerAnswer::silent ? timeout_ : it->second.delay;
    p.timer->expires_after(wait, [this, h] { deliver(h, std::nullopt); });
    return h;
  }

  void cancel(FetchHandle h) override {
    auto it = pending_.find(h);
    if (it == pending_.end()) return;
    ++cancels_;
    it->second.timer->expires_after(Duration::zero(), [this, h] {
      deliver(h, Error{Errc::cancelled, "cancelled"});
    });
  }

  void report(const NodeId& peer, PeerVerdict verdict) override {
    reports_.emplace_back(peer, verdict);
  }

  const std::vector<Sent>& sent() const { return sent_; }
  size_t sent_to(const NodeId& peer) const {
    return static_cast<size_t>(
        std::count_if(sent_.begin(), sent_.end(), [&](const Sent& s) { return s.peer == peer; }));
  }
  std::vector<PeerVerdict> verdicts(const NodeId& peer) const {
    std::vector<PeerVerdict> out;
    for (const auto& [p, v] : reports_) {
      if (p == peer) out.push_back(v);
    }
    return out;
  }
  size_t cancels() const { return cancels_; }
  size_t pending() const { return pending_.size(); }

 private:
  struct Peer {
    TestNode* node = nullptr;
    PeerAnswer mode = PeerAnswer::honest;
    Duration delay{};
    bool listed = true;
  };
  struct Pending {
    NodeId peer;
    FragmentRequest request;
    FetchCallback done;
    std::unique_ptr<Timer> timer;
  };

  void deliver(FetchHandle h, std::optional<Error> forced) {
    auto it = pending_.find(h);
    if (it == pending_.end()) return;
    Pending p = std::move(it->second);
    // The timer is running this callback: destroy it after it returns.
    auto timer = std::shared_ptr<Timer>(std::move(p.timer));
    pending_.erase(it);
    asio::post(io_, [timer] {});
    const Peer& peer = peers_.at(p.peer);
    Result<FragmentReply> r = [&]() -> Result<FragmentReply> {
      if (forced) return tl::unexpected(*forced);
      if (peer.mode == PeerAnswer::silent) return make_error(Errc::timeout, "no answer");
      if (peer.mode == PeerAnswer::missing) return make_error(Errc::not_found, "not held");
      if (p.request.fragments.empty() && p.request.at_least == 0) {
        // A probe, answered as the node does: the roots of the blob held.
        auto rec = peer.node->store->get_blob(p.request.id);
        if (!rec) return tl::unexpected(rec.error());
        FragmentReply roots;
        roots.fragment_roots = rec->fragment_roots;
        return roots;
      }
      auto reply = serve_fragments(*peer.node->store, p.request, peer.node->seal.get());
      if (reply && peer.mode == PeerAnswer::corrupt && !reply->data.empty()) reply->data[0] ^= 0x01;
      return reply;
    }();
    p.done(std::move(r));
  }

  asio::io_context& io_;
  p2p::ManualClock& clock_;
  Duration timeout_;
  std::map<NodeId, Peer> peers_;
  std::map<FetchHandle, Pending> pending_;
  std::vector<Sent> sent_;
  std::vector<std::pair<NodeId, PeerVerdict>> reports_;
  FetchHandle next_ = 1;
  size_t cancels_ = 0;
};

}  // namespace cairn::shards::testing
