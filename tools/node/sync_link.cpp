#include "node/sync_link.hpp"

#include <algorithm>
#include <utility>

#include "cairn/p2p/request.hpp"
#include "node/wire.hpp"

namespace cairn::node {

// ---- ChainRegistry ----

ChainRegistry::ChainRegistry(ChainLink& chain, const erasure::NetworkParams& params, uint32_t settle_blocks)
    : chain_(chain), params_(params), settle_blocks_(settle_blocks) {}

Result<uint64_t> ChainRegistry::blob_count(ShardId shard) {
  auto count = chain_.chain().blob_count(shard);
  if (!count) return tl::unexpected(count.error());
  if (settle_blocks_ == 0 || *count == 0) return count;
  auto head = this->head();
  if (!head) return tl::unexpected(head.error());
  if (head->value < settle_blocks_) return uint64_t{0};
  const uint64_t settled_at = head->value - settle_blocks_;
  // Indexes are assigned in registration order, so registration blocks rise
  // with the index: binary search for the first blob registered too late.
  const uint64_t first = params_.first_index(shard).value;
  uint64_t lo = 0, hi = *count;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    auto rec = chain_.chain().blob_by_index(BlobIndex{first + mid});
    if (!rec) return tl::unexpected(rec.error());
    if (*rec && (*rec)->registered_in.value <= settled_at) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

Result<std::vector<shards::RegisteredBlob>> ChainRegistry::blobs(ShardId shard, BlobIndex from, size_t limit) {
  auto count = blob_count(shard);
  if (!count) return tl::unexpected(count.error());
  const uint64_t end = params_.first_index(shard).value + *count;
  std::vector<shards::RegisteredBlob> out;
  for (uint64_t i = std::max(from.value, params_.first_index(shard).value); i < end && out.size() < limit; ++i) {
    auto rec = chain_.chain().blob_by_index(BlobIndex{i});
    if (!rec) return tl::unexpected(rec.error());
    if (!*rec) break;
    out.push_back(shards::RegisteredBlob{(*rec)->index, (*rec)->commitment, (*rec)->size});
  }
  return out;
}

Result<BlockNumber> ChainRegistry::head() {
  if (auto h = chain_.head()) return h->number;
  auto h = chain_.chain().head();
  if (!h) return tl::unexpected(h.error());
  return h->number;
}

// ---- PeerFragments ----

struct PeerFragments::Pending {
  NodeId peer;
  Bytes payload;
  shards::FetchCallback done;
  p2p::RequestId request = 0;
  bool sent = false;
  bool cancelled = false;
};

PeerFragments::PeerFragments(NodeContext& ctx) : ctx_(ctx) {}

PeerFragments::~PeerFragments() {
  std::unordered_map<shards::FetchHandle, std::shared_ptr<Pending>> left;
  {
    std::lock_guard lock(mu_);
    left.swap(pending_);
  }
  for (auto& [h, p] : left) p->done(make_error(Errc::cancelled, "node stopped"));
}

std::vector<NodeId> PeerFragments::peers(ShardId shard) {
  std::vector<NodeId> out;
  for (const auto& rec : ctx_.chain.nodes(shard)) {
    if (rec.node_id != ctx_.self) out.push_back(rec.node_id);
  }
  return out;
}

Result<shards::FetchHandle> PeerFragments::fetch(const NodeId& peer, const shards::FragmentRequest& request,
                                                 shards::FetchCallback done) {
  if (ctx_.io_stopped.load()) return make_error(Errc::cancelled, "the node's network thread has stopped");
  wire::FragmentsRequest wr;
  wr.id = request.id;
  for (FragmentIndex f : request.fragments) wr.fragments.push_back(f.value);
  auto p = std::make_shared<Pending>();
  p->peer = peer;
  p->payload = wire::encode_fragments_request(wr);
  p->done = std::move(done);
  const shards::FetchHandle h = next_.fetch_add(1);
  {
    std::lock_guard lock(mu_);
    pending_.emplace(h, std::move(p));
  }
  ctx_.post([this, h] { send(h); });
  return h;
}

void PeerFragments::send(shards::FetchHandle h) {
  std::shared_ptr<Pending> p;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(h);
    if (it == pending_.end()) return;
    p = it->second;
  }
  const auto finish = [this, h](Result<shards::FragmentReply> r) {
    std::shared_ptr<Pending> gone;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(h);
      if (it == pending_.end()) return;
      gone = std::move(it->second);
      pending_.erase(it);
    }
    gone->done(std::move(r));
  };
  if (p->cancelled || ctx_.rr == nullptr) {
    finish(make_error(Errc::cancelled, "fetch cancelled"));
    return;
  }
  const erasure::NetworkParams& params = ctx_.params;
  auto sent = ctx_.rr->request(
      p->peer, p2p::MessageType::fragments_request, p->payload, [finish, &params](Result<Bytes> body) {
        if (!body) {
          finish(tl::unexpected(body.error()));
          return;
        }
        auto decoded = wire::decode_fragments_response(*body, params);
        if (!decoded) {
          finish(tl::unexpected(decoded.error()));
          return;
        }
        shards::FragmentReply reply;
        const size_t fs = params.fragment_size();
        // Room for the parity the receiver appends (verify_fetched).
        reply.data.reserve(size_t{params.total_fragments()} * fs);
        for (const wire::FragmentView& v : decoded->fragments) {
          reply.fragments.push_back(FragmentIndex{v.index});
          reply.data.insert(reply.data.end(), v.bytes.begin(), v.bytes.end());
        }
        reply.fragment_roots = std::move(decoded->roots);
        finish(std::move(reply));
      });
  if (!sent) {
    Error e = sent.error();
    // Not connected: to the sync engine an unreachable peer, not one lacking the blob.
    if (e.code == Errc::not_found) e.code = Errc::io_error;
    finish(tl::unexpected(std::move(e)));
    return;
  }
  std::lock_guard lock(mu_);
  p->request = *sent;
  p->sent = true;
}

void PeerFragments::cancel(shards::FetchHandle h) {
  if (ctx_.io_stopped.load()) {
    std::shared_ptr<Pending> gone;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(h);
      if (it == pending_.end()) return;
      gone = std::move(it->second);
      pending_.erase(it);
    }
    gone->done(make_error(Errc::cancelled, "fetch cancelled"));
    return;
  }
  ctx_.post([this, h] {
    std::shared_ptr<Pending> p;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(h);
      if (it == pending_.end()) return;
      p = it->second;
      if (!p->sent) {
        p->cancelled = true;
        return;
      }
    }
    if (ctx_.rr != nullptr) ctx_.rr->cancel(p->request);
  });
}

}  // namespace cairn::node
