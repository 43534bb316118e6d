#include "node/fetcher.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <future>
#include <map>
#include <set>

#include "cairn/core/log.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/p2p/gossip_node.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/p2p/identity.hpp"
#include "cairn/p2p/request.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/serve.hpp"
#include "node/wire.hpp"

namespace cairn::node {
namespace {

// Frame bytes kept free besides a fragments response (headers, MACs).
constexpr size_t kFrameSlack = 64;
// Pause before offering a decode again to a full worker pool.
constexpr auto kBusyRetry = std::chrono::milliseconds(20);

}  // namespace

Fetcher::Fetcher(NodeContext& ctx, Uploader& uploader, shards::FragmentGather& gather)
    : ctx_(ctx),
      uploader_(uploader),
      gather_(gather),
      alive_(std::make_shared<bool>(true)),
      local_reads_(ctx.metrics.counter("cairn_fetch_local_total", "Blob reads served from the local store.")),
      inflight_reads_(ctx.metrics.counter("cairn_fetch_inflight_total", "Blob reads served from uploads in flight.")),
      remote_reads_(ctx.metrics.counter("cairn_fetch_remote_total", "Blob reads gathered from peers.")),
      read_failures_(ctx.metrics.counter("cairn_fetch_failures_total", "Blob reads that failed.")),
      served_requests_(ctx.metrics.counter("cairn_serve_requests_total", "Fragment requests answered for peers.")),
      served_bytes_(ctx.metrics.counter("cairn_serve_bytes_total", "Fragment bytes served to peers.")),
      served_not_found_(
          ctx.metrics.counter("cairn_serve_not_found_total", "Fragment requests for blobs this node does not hold.")),
      remote_latency_(ctx.metrics.histogram("cairn_fetch_remote_seconds", "Time to gather one blob from peers.",
                                            metrics::Histogram::latency_buckets())) {}

Fetcher::~Fetcher() { *alive_ = false; }

void Fetcher::stop() {
  stopped_ = true;
  *alive_ = false;
  retry_timers_.clear();
}

Result<shards::RegisteredBlob> FetcherBlobs::lookup(const BlobId& id) {
  auto reg = ctx_.chain.lookup_blob(id);
  if (!reg) return tl::unexpected(reg.error());
  return shards::RegisteredBlob{reg->index, reg->commitment, reg->size};
}

// ---- fetching ----

void Fetcher::fetch(const BlobId& id, Done done) {
  if (auto blob = uploader_.find(id)) {
    inflight_reads_.inc();
    const auto& data = blob->encoded.data;
    done(Bytes(data.begin(), data.begin() + blob->encoded.length));
    return;
  }
  fetch_local(id, std::move(done));
}

void Fetcher::fetch_local(const BlobId& id, Done done) {
  auto shared_done = std::make_shared<Done>(std::move(done));
  auto job = [this, id, shared_done] {
    auto rec = ctx_.store.get_blob(id);
    if (rec) {
      auto payload = shards::read_payload(ctx_.store, *ctx_.codec, rec->index, ctx_.sealer.get());
      if (payload) {
        local_reads_.inc();
        (*shared_done)(std::move(*payload));
        return;
      }
      CAIRN_LOG(log::Level::warn, "node",
                "local copy of blob " << id.hex() << " unreadable, asking peers: " << payload.error().to_string());
    }
    auto reg = ctx_.chain.lookup_blob(id);
    if (!reg) {
      read_failures_.inc();
      (*shared_done)(tl::unexpected(reg.error()));
      return;
    }
    fetch_remote(id, *reg, std::move(*shared_done));
  };
  // Readers run on API threads: a full pool makes them wait (backpressure)
  // rather than fail.
  if (auto st = ctx_.submit_wait(
          job, [shared_done] { (*shared_done)(make_error(Errc::cancelled, "node stopping")); },
          ctx_.settings.fetch.blob_timeout);
      !st) {
    (*shared_done)(tl::unexpected(st.error()));
  }
}

void Fetcher::fetch_remote(const BlobId& id, const contracts::BlobRecord& reg, Done done) {
  remote_reads_.inc();
  const double started = std::chrono::duration<double>(ctx_.clock.now().time_since_epoch()).count();
  std::weak_ptr<bool> alive = alive_;
  auto shared_done = std::make_shared<Done>(std::move(done));
  ctx_.post([this, id, reg, started, shared_done, alive] {
    if (alive.expired() || !*alive.lock() || ctx_.gossip == nullptr) {
      (*shared_done)(make_error(Errc::cancelled, "node stopping"));
      return;
    }
    shards::GatherRequest req;
    req.id = id;
    req.index = reg.index;
    for (uint32_t f = 0; f < ctx_.params.total_fragments(); ++f) req.wanted.push_back(FragmentIndex{uint8_t(f)});
    req.at_least = ctx_.params.data_fragments;
    req.peers = candidates(id, ctx_.params.shard_of(reg.index));
    // Successive blobs start at successive connected holders, so a stream of
    // reads spreads over every holder even when each blob asks only one.
    size_t connected = 0;
    while (connected < req.peers.size() && ctx_.gossip->host().is_connected(req.peers[connected])) ++connected;
    if (connected > 1) {
      std::rotate(req.peers.begin(), req.peers.begin() + static_cast<std::ptrdiff_t>(rotation_++ % connected),
                  req.peers.begin() + static_cast<std::ptrdiff_t>(connected));
    }
    gather_.gather(std::move(req), [this, id, reg, started, shared_done, alive](Result<shards::Gathered> got) {
      if (alive.expired()) {
        (*shared_done)(make_error(Errc::cancelled, "node stopping"));
        return;
      }
      if (!got) {
        read_failures_.inc();
        (*shared_done)(tl::unexpected(got.error()));
        return;
      }
      decode(id, reg, std::move(got->reply), started, std::move(*shared_done));
    });
  });
}

std::vector<NodeId> Fetcher::candidates(const BlobId& id, ShardId shard) const {
  std::vector<NodeId> out;
  auto add = [&](const NodeId& n) {
    if (n != ctx_.self && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  };
  for (const NodeId& n : ctx_.holders.get(id)) add(n);
  for (const auto& rec : ctx_.chain.nodes(shard)) add(rec.node_id);
  if (ctx_.gossip == nullptr) return out;
  p2p::Host& host = ctx_.gossip->host();
  // Connected first, fastest (measured round trip) first; known holders
  // before registry-only nodes at equal standing.
  std::stable_sort(out.begin(), out.end(), [&](const NodeId& a, const NodeId& b) {
    auto pa = host.peer(a), pb = host.peer(b);
    if (pa.has_value() != pb.has_value()) return pa.has_value();
    if (!pa) return false;
    const auto ra = pa->rtt.count() > 0 ? pa->rtt : cairn::Duration::max();
    const auto rb = pb->rtt.count() > 0 ? pb->rtt : cairn::Duration::max();
    return ra < rb;
  });
  return out;
}

void Fetcher::submit_job(std::function<void()> job, std::function<void()> cancel) {
  auto st = ctx_.submit(job, cancel);
  if (st) return;
  if (st.error().code != Errc::busy) {
    if (cancel) cancel();
    return;
  }
  // A full pool: the job (hashing, decoding) never runs on the network
  // thread; it is offered again shortly, bounded by the gather's deadline
  // and the node's stop. On the node's clock.
  if (stopped_) return;
  const uint64_t key = next_retry_++;
  std::unique_ptr<Timer>& timer = retry_timers_[key];
  timer = ctx_.clock.make_timer(ctx_.io.get_executor());
  std::weak_ptr<bool> alive = alive_;
  timer->expires_after(kBusyRetry, [this, key, alive, job = std::move(job), cancel = std::move(cancel)]() mutable {
    // This callback runs inside its timer: the timer goes afterwards.
    ctx_.post([this, key, alive] {
      if (!alive.expired() && *alive.lock()) retry_timers_.erase(key);
    });
    submit_job(std::move(job), std::move(cancel));
  });
}

void Fetcher::decode(const BlobId& id, const contracts::BlobRecord& reg, shards::FragmentReply reply, double started,
                     Done done) {
  auto shared = std::make_shared<shards::FragmentReply>(std::move(reply));
  auto shared_done = std::make_shared<Done>(std::move(done));
  // The first k verified fragments, data fragments first (the reply is in
  // fragment order).
  auto job = [this, id, reg, shared, started, shared_done] {
    const uint32_t k = ctx_.params.data_fragments;
    const size_t fs = ctx_.params.fragment_size();
    std::vector<erasure::FragmentRef> refs;
    bool parity = false;
    for (size_t i = 0; i < shared->fragments.size() && refs.size() < k; ++i) {
      const uint32_t f = shared->fragments[i].value;
      refs.push_back(erasure::FragmentRef{f, ByteSpan(shared->data).subspan(i * fs, fs)});
      parity = parity || f >= k;
    }
    auto payload = ctx_.codec->decode(refs, reg.size);
    if (payload && parity) {
      // Rebuilt through parity: the result is the blob only if the
      // fragments form a valid codeword of this id.
      auto check = erasure::encode_and_commit(*ctx_.codec, *payload);
      if (!check || check->commitment.id != id) {
        payload = make_error(Errc::corruption,
                             "blob " + id.hex() + ": fragments decode to bytes that do not commit to its id");
      }
    }
    const double now = std::chrono::duration<double>(ctx_.clock.now().time_since_epoch()).count();
    remote_latency_.observe(now - started);
    if (!payload) read_failures_.inc();
    (*shared_done)(std::move(payload));
  };
  submit_job(std::move(job), [shared_done] { (*shared_done)(make_error(Errc::cancelled, "node stopping")); });
}

std::vector<NodeId> Fetcher::probe(const BlobId& id, ShardId shard, std::chrono::milliseconds timeout) {
  auto result = std::make_shared<std::promise<std::vector<NodeId>>>();
  auto future = result->get_future();
  auto posted = ctx_.run_on_io([&] {
    if (stopped_ || ctx_.gossip == nullptr) {
      result->set_value({});
      return;
    }
    // Connected candidates only: a probe answers a status query, it does not
    // dial the whole shard.
    std::vector<NodeId> peers;
    for (const NodeId& peer : candidates(id, shard)) {
      if (ctx_.gossip->host().is_connected(peer)) peers.push_back(peer);
    }
    gather_.probe(id, BlobIndex{}, std::move(peers), std::chrono::duration_cast<cairn::Duration>(timeout),
                  [this, id, result](std::vector<NodeId> holders) {
                    for (const NodeId& h : holders) ctx_.holders.add(id, h);
                    result->set_value(std::move(holders));
                  });
  });
  if (!posted) return {};
  if (future.wait_for(timeout + std::chrono::seconds(1)) != std::future_status::ready) return {};
  return future.get();
}

// ---- serving ----

void Fetcher::serve(const NodeId& from, ByteSpan payload, p2p::Responder responder) {
  (void)from;
  const uint32_t n = ctx_.params.total_fragments();
  auto req = wire::decode_fragments_request(payload, n);
  if (!req) {
    (void)responder.fail(p2p::ResponseStatus::invalid_request, req.error().message);
    return;
  }
  served_requests_.inc();
  // As many fragments as fit one frame; the asker requests the rest. at_least
  // is capped the same way: a frame's worth is all one answer can carry.
  size_t fit = std::max<size_t>(req->fragments.size(), req->at_least);
  while (fit > 0 &&
         wire::fragments_response_size(ctx_.params, fit) + kFrameSlack > ctx_.settings.p2p.max_frame_payload) {
    --fit;
  }
  if (req->fragments.size() > fit) req->fragments.resize(fit);
  req->at_least = static_cast<uint8_t>(std::min<size_t>(req->at_least, fit));
  const uint32_t fs = ctx_.params.fragment_size();

  if (auto blob = uploader_.find(req->id)) {
    // In memory every fragment is good: substitutes only top up a request
    // that asked for fewer than at_least.
    std::vector<wire::FragmentView> views;
    std::vector<bool> asked(n, false);
    for (uint8_t f : req->fragments) {
      views.push_back({f, blob->encoded.fragment(f)});
      asked[f] = true;
    }
    for (uint32_t f = 0; f < n && views.size() < req->at_least; ++f) {
      if (!asked[f]) views.push_back({static_cast<uint8_t>(f), blob->encoded.fragment(f)});
    }
    Bytes out;
    wire::encode_fragments_response(out, blob->encoded.length, fs, blob->commitment.fragment_roots, views);
    served_bytes_.inc(out.size());
    (void)responder.respond(out);
    return;
  }

  auto shared = std::make_shared<p2p::Responder>(std::move(responder));
  std::weak_ptr<bool> alive = alive_;
  auto job = [this, req = std::move(*req), shared, alive, fs]() mutable {
    Result<Bytes> answer = [&]() -> Result<Bytes> {
      auto rec = ctx_.store.get_blob(req.id);
      if (!rec) return tl::unexpected(rec.error());
      Bytes out;
      if (req.fragments.empty() && req.at_least == 0) {
        // A probe: the roots say "held here".
        wire::encode_fragments_response(out, rec->length, fs, rec->fragment_roots, {});
        return out;
      }
      // With at_least, good fragments stand in for damaged requested ones.
      shards::FragmentRequest request{req.id, rec->index, {}, req.at_least};
      for (uint8_t f : req.fragments) request.fragments.push_back(FragmentIndex{f});
      auto reply = shards::serve_fragments(ctx_.store, request, ctx_.sealer.get());
      if (!reply) return tl::unexpected(reply.error());
      wire::encode_fragments_response(out, rec->length, fs, reply->fragment_roots, wire::views_of(*reply, fs));
      return out;
    }();
    ctx_.post([this, shared = std::move(shared), answer = std::move(answer), alive]() mutable {
      if (alive.expired() || !*alive.lock()) return;
      if (shared->cancelled()) return;
      if (answer) {
        served_bytes_.inc(answer->size());
        (void)shared->respond(*answer);
      } else if (answer.error().code == Errc::not_found || answer.error().code == Errc::corruption) {
        // Not held, or too damaged here to serve what was asked.
        served_not_found_.inc();
        (void)shared->fail(p2p::ResponseStatus::not_found, answer.error().message.substr(0, 200));
      } else {
        (void)shared->fail(p2p::ResponseStatus::internal_error, answer.error().message.substr(0, 200));
      }
    });
  };
  if (!ctx_.submit(job)) {
    (void)shared->fail(p2p::ResponseStatus::busy, "worker pool busy");
  }
}

}  // namespace cairn::node
