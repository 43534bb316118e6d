#include "node/sync_link.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "cairn/contracts/header.hpp"
#include "cairn/core/log.hpp"
#include "cairn/p2p/gossip_node.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/p2p/identity.hpp"
#include "cairn/p2p/request.hpp"
#include "node/wire.hpp"

namespace cairn::node {

// ---- ChainRegistry ----

ChainRegistry::ChainRegistry(contracts::ChainClient& chain, const erasure::NetworkParams& params,
                             uint32_t settle_blocks)
    : chain_(chain), params_(params), settle_blocks_(settle_blocks) {}

Result<uint64_t> ChainRegistry::blob_count(ShardId shard) {
  if (settle_blocks_ == 0) return chain_.chain().blob_count(shard);
  auto head = this->head();
  if (!head) return tl::unexpected(head.error());
  if (head->value < settle_blocks_) return uint64_t{0};
  // A header carries the registry's size after its block, and indexes are
  // assigned in registration order: the settled blobs are those counted by
  // the header settle_blocks back (one chain call).
  auto settled = chain_.chain().header(BlockNumber{head->value - settle_blocks_});
  if (!settled) return tl::unexpected(settled.error());
  return contracts::shard_blob_count(*settled, params_, shard);
}

Result<std::vector<shards::RegisteredBlob>> ChainRegistry::blobs(ShardId shard, BlobIndex from, size_t limit) {
  auto count = blob_count(shard);
  if (!count) return tl::unexpected(count.error());
  const uint64_t first = params_.first_index(shard).value;
  const uint64_t end = first + *count;
  std::vector<shards::RegisteredBlob> out;
  uint64_t next = std::max(from.value, first);
  while (next < end && out.size() < limit) {
    const uint64_t want = std::min<uint64_t>({end - next, limit - out.size(), contracts::Chain::kMaxBlobRange});
    auto range = chain_.chain().blobs(BlobIndex{next}, static_cast<uint32_t>(want));
    if (!range) return tl::unexpected(range.error());
    for (const contracts::BlobRecord& rec : *range) {
      out.push_back(registered_blob(rec));
    }
    if (range->size() < want) break;  // the registry ends here
    next += want;
  }
  return out;
}

Result<BlockNumber> ChainRegistry::head() {
  if (auto h = chain_.head()) return h->number;
  auto h = chain_.chain().head();
  if (!h) return tl::unexpected(h.error());
  return h->number;
}

Result<shards::RegisteredBlob> ChainRegistry::lookup(const BlobId& id) {
  auto rec = chain_.lookup_blob(id);
  if (!rec) return tl::unexpected(rec.error());
  return shards::RegisteredBlob{rec->index, rec->commitment, rec->size};
}

// ---- RegistryEndpoints ----

Result<std::vector<p2p::PeerRecord>> RegistryEndpoints::endpoints_for_shard(ShardId shard) {
  std::vector<p2p::PeerRecord> out;
  for (const contracts::NodeRecord& n : chain_.nodes(shard)) {
    if (n.node_id == chain_.self() || n.endpoint.empty()) continue;
    std::vector<ShardId> shards = n.shards;
    if (shards.size() > p2p::kMaxPxShards) shards.resize(p2p::kMaxPxShards);
    out.push_back(p2p::PeerRecord{n.node_id, n.endpoint, std::move(shards)});
  }
  if (out.empty()) return make_error(Errc::not_found, "no node registered for shard " + std::to_string(shard.value));
  return out;
}

// ---- ChainMetrics ----

ChainMetrics::ChainMetrics(metrics::Registry& metrics)
    : txs_submitted_(
          metrics.counter("cairn_chain_txs_submitted_total", "Transactions this node submitted to the chain.")),
      txs_failed_(metrics.counter("cairn_chain_txs_failed_total",
                                  "Transactions refused at admission or rejected by the contract.")),
      blobs_registered_(metrics.counter("cairn_chain_blob_registrations_total",
                                        "Blob registrations (PutBlob) this node saw resolve to an index.")),
      head_gauge_(metrics.gauge("cairn_chain_head", "Number of the latest block seen.")),
      head_time_gauge_(metrics.gauge("cairn_chain_head_timestamp_seconds",
                                     "Sequencer timestamp of the latest block seen, Unix seconds (time() minus it "
                                     "is the head's age).")),
      register_latency_(metrics.histogram("cairn_chain_register_seconds",
                                          "Time from asking to register a blob to knowing its index.",
                                          metrics::Histogram::latency_buckets())) {}

void ChainMetrics::head(const contracts::BlockHeader& header) {
  head_gauge_.set(static_cast<double>(header.number.value));
  head_time_gauge_.set(static_cast<double>(header.timestamp_ms) / 1000.0);
}

// ---- PeerFragments ----

namespace {
// Score charged to a peer whose fragments fail verification.
constexpr double kBadFragmentsPenalty = 25;
}  // namespace

struct PeerFragments::Pending {
  NodeId peer;
  wire::FragmentsRequest request;  // encoded when sent: the version depends on the peer
  shards::FetchCallback done;
  p2p::RequestId rid = 0;
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
  const uint32_t n = ctx_.params.total_fragments();
  if (request.at_least > n || request.fragments.size() > n) {
    return make_error(Errc::invalid_argument,
                      "fragments request for blob " + request.id.hex() + " asks for " +
                          std::to_string(std::max<size_t>(request.at_least, request.fragments.size())) +
                          " fragments; a blob has " + std::to_string(n));
  }
  auto p = std::make_shared<Pending>();
  p->peer = peer;
  p->request.id = request.id;
  for (FragmentIndex f : request.fragments) p->request.fragments.push_back(f.value);
  p->request.at_least = static_cast<uint8_t>(request.at_least);  // <= n <= 255
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
  const auto finish = [this, h](Result<shards::FragmentReply> r) { complete(h, std::move(r)); };
  if (p->cancelled || ctx_.rr == nullptr || ctx_.gossip == nullptr) {
    finish(make_error(Errc::cancelled, "fetch cancelled"));
    return;
  }
  p2p::Host& host = ctx_.gossip->host();
  if (!host.is_connected(p->peer)) {
    // A registered peer we have no session with (a node that just joined,
    // or one the mesh does not keep): dial it once, then send everything
    // that waited for it; an unreachable peer fails them with io_error.
    auto rec = ctx_.chain.node(p->peer);
    if (!rec || rec->endpoint.empty()) {
      finish(
          make_error(Errc::io_error, "peer " + p->peer.hex().substr(0, 16) + " is not connected and has no endpoint"));
      return;
    }
    auto& waiting = dialing_[p->peer];
    waiting.push_back(h);
    if (waiting.size() > 1) return;  // a dial is under way
    p2p::ConnectOptions opts;
    opts.expected_id = p->peer;
    const NodeId peer = p->peer;
    host.connect(rec->endpoint, opts, [this, peer](Result<NodeId> connected) {
      auto it = dialing_.find(peer);
      if (it == dialing_.end()) return;
      std::vector<shards::FetchHandle> handles = std::move(it->second);
      dialing_.erase(it);
      for (shards::FetchHandle waiting_handle : handles) {
        if (connected) {
          send(waiting_handle);
        } else {
          complete(waiting_handle, make_error(Errc::io_error, "dialing peer " + peer.hex().substr(0, 16) + ": " +
                                                                  connected.error().message));
        }
      }
    });
    return;
  }
  const erasure::NetworkParams& params = ctx_.params;
  wire::FragmentsRequest wr = p->request;
  if (v1_only_.count(p->peer) != 0) wr.at_least = 0;
  const bool v2 = wr.at_least > 0;
  p2p::RequestOptions opts;
  opts.timeout = std::chrono::duration_cast<cairn::Duration>(ctx_.settings.fetch.request_timeout);
  auto sent = ctx_.rr->request(
      p->peer, p2p::MessageType::fragments_request, wire::encode_fragments_request(wr),
      [this, h, v2, peer = p->peer, finish, &params](Result<Bytes> body) {
        if (!body && v2 && body.error().code == Errc::invalid_argument) {
          // A node that speaks only version 1 refuses version 2 as invalid:
          // ask it again without at_least (it cannot substitute parity).
          CAIRN_LOG(log::Level::info, "node",
                    "peer " << p2p::short_id(peer) << " refused a version 2 fragments request (" << body.error().message
                            << "): asking it without at_least from now on");
          v1_only_.insert(peer);
          send(h);
          return;
        }
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
      },
      opts);
  if (!sent) {
    Error e = sent.error();
    // Not connected: to the sync engine an unreachable peer, not one lacking the blob.
    if (e.code == Errc::not_found) e.code = Errc::io_error;
    finish(tl::unexpected(std::move(e)));
    return;
  }
  std::lock_guard lock(mu_);
  p->rid = *sent;
  p->sent = true;
}

void PeerFragments::complete(shards::FetchHandle h, Result<shards::FragmentReply> result) {
  std::shared_ptr<Pending> gone;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(h);
    if (it == pending_.end()) return;
    gone = std::move(it->second);
    pending_.erase(it);
  }
  gone->done(std::move(result));
}

void PeerFragments::cancel(shards::FetchHandle h) {
  if (ctx_.io_stopped.load()) {
    complete(h, make_error(Errc::cancelled, "fetch cancelled"));
    return;
  }
  ctx_.post([this, h] {
    std::shared_ptr<Pending> p;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(h);
      if (it == pending_.end()) return;
      p = it->second;
      // Also stops a version 1 retry of a refused version 2 request.
      p->cancelled = true;
      if (!p->sent) return;
    }
    if (ctx_.rr != nullptr) ctx_.rr->cancel(p->rid);
  });
}

void PeerFragments::report(const NodeId& peer, shards::PeerVerdict verdict) {
  if (verdict != shards::PeerVerdict::invalid_data || ctx_.io_stopped.load()) return;
  // The context outlives the network thread; this adapter may not.
  NodeContext* ctx = &ctx_;
  ctx_.post([ctx, peer] {
    if (ctx->gossip == nullptr) return;
    ctx->gossip->host().adjust_score(peer, -kBadFragmentsPenalty, "served fragments that fail verification");
  });
}

}  // namespace cairn::node
