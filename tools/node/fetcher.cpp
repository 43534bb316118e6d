#include "node/fetcher.hpp"

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

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

using Clock = std::chrono::steady_clock;

// Score charged to a peer whose fragments do not match their roots or id.
constexpr double kBadFragmentsPenalty = 25;
// Frame bytes kept free besides a fragments response (headers, MACs).
constexpr size_t kFrameSlack = 64;
// Dials one gather makes to one candidate: connections can drop under a
// read (the peer restarts, or its discovery drops a connection that serves
// none of its shards), and are made again this many times.
constexpr int kMaxRedials = 3;
// Pause before planning again when every candidate's request cap was full.
constexpr auto kBusyRetry = std::chrono::milliseconds(20);

}  // namespace

struct Fetcher::Gather {
  struct Ask {
    NodeId peer;
    std::vector<uint8_t> fragments;
    p2p::RequestId rid = 0;
    Clock::time_point sent;
    bool slow = false;
  };

  explicit Gather(asio::io_context& io) : hedge(io), deadline(io), retry(io) {}

  BlobId id;
  contracts::BlobRecord reg;
  Done done;
  std::vector<NodeId> peers;      // candidates, in preference order
  std::set<NodeId> failed;        // not asked again for this blob
  std::map<NodeId, int> redials;  // dials made per candidate
  std::set<NodeId> responded;
  std::map<uint8_t, Bytes> have;
  std::map<uint64_t, Ask> asks;
  uint64_t next_ask = 1;
  std::set<std::pair<NodeId, uint8_t>> asked;
  size_t cursor = 0;
  size_t dials = 0;
  bool finished = false;
  Clock::time_point started;
  asio::steady_timer hedge;
  asio::steady_timer deadline;
  asio::steady_timer retry;  // re-plan after a peer's request cap said busy
  bool retry_armed = false;
};

Fetcher::Fetcher(NodeContext& ctx, Uploader& uploader)
    : ctx_(ctx),
      uploader_(uploader),
      alive_(std::make_shared<bool>(true)),
      local_reads_(ctx.metrics.counter("cairn_fetch_local_total", "Blob reads served from the local store.")),
      inflight_reads_(ctx.metrics.counter("cairn_fetch_inflight_total", "Blob reads served from uploads in flight.")),
      remote_reads_(ctx.metrics.counter("cairn_fetch_remote_total", "Blob reads gathered from peers.")),
      read_failures_(ctx.metrics.counter("cairn_fetch_failures_total", "Blob reads that failed.")),
      fragments_received_(
          ctx.metrics.counter("cairn_fetch_fragments_total", "Verified fragments received from peers.")),
      bad_fragments_(ctx.metrics.counter("cairn_fetch_bad_fragments_total",
                                         "Fragments or responses from peers that failed verification.")),
      hedged_(ctx.metrics.counter("cairn_fetch_hedged_total",
                                  "Fragment requests re-asked elsewhere because a peer was slow.")),
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
}

// ---- fetching ----

Result<Bytes> Fetcher::fetch_blocking(const BlobId& id) {
  auto promise = std::make_shared<std::promise<Result<Bytes>>>();
  auto future = promise->get_future();
  fetch(id, [promise](Result<Bytes> r) { promise->set_value(std::move(r)); });
  // A gather handed to a network thread that exits never completes: stop
  // waiting then.
  while (future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (ctx_.io_stopped.load()) return make_error(Errc::cancelled, "node stopping: reading blob " + id.hex());
  }
  return future.get();
}

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
  auto g = std::make_shared<Gather>(ctx_.io);
  g->id = id;
  g->reg = reg;
  g->done = std::move(done);
  g->started = Clock::now();
  remote_reads_.inc();
  std::weak_ptr<bool> alive = alive_;
  ctx_.post([this, g, alive] {
    if (alive.expired() || !*alive.lock()) {
      g->done(make_error(Errc::cancelled, "node stopping"));
      return;
    }
    start_gather(g);
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

void Fetcher::start_gather(const std::shared_ptr<Gather>& g) {
  if (stopped_ || ctx_.gossip == nullptr || ctx_.rr == nullptr) {
    complete(g, make_error(Errc::cancelled, "node stopping"));
    return;
  }
  const ShardId shard = ctx_.params.shard_of(g->reg.index);
  g->peers = candidates(g->id, shard);
  // Successive blobs start at successive connected holders, so a stream of
  // reads spreads over every holder even when each blob asks only one.
  size_t connected = 0;
  while (connected < g->peers.size() && ctx_.gossip->host().is_connected(g->peers[connected])) ++connected;
  if (connected > 1) {
    std::rotate(g->peers.begin(), g->peers.begin() + static_cast<std::ptrdiff_t>(rotation_++ % connected),
                g->peers.begin() + static_cast<std::ptrdiff_t>(connected));
  }
  std::weak_ptr<bool> alive = alive_;
  g->deadline.expires_after(ctx_.settings.fetch.blob_timeout);
  g->deadline.async_wait([this, g, alive](const std::error_code& ec) {
    if (ec || alive.expired() || !*alive.lock()) return;
    complete(g, make_error(Errc::timeout, "blob " + g->id.hex() + ": " + std::to_string(g->have.size()) + " of " +
                                              std::to_string(ctx_.params.data_fragments) +
                                              " fragments gathered before the blob timeout"));
  });
  arm_hedge(g);
  plan(g);
}

void Fetcher::dial_more(const std::shared_ptr<Gather>& g, size_t live) {
  // Dial registered candidates we are not connected to when fewer than
  // parallel_peers usable ones are.
  p2p::Host& host = ctx_.gossip->host();
  for (const NodeId& n : g->peers) {
    if (live + g->dials >= ctx_.settings.fetch.parallel_peers) return;
    if (host.is_connected(n) || g->failed.count(n) || g->redials[n] >= kMaxRedials) continue;
    auto rec = ctx_.chain.node(n);
    if (!rec || rec->endpoint.empty()) continue;
    ++g->dials;
    ++g->redials[n];
    p2p::ConnectOptions opts;
    opts.expected_id = n;
    std::weak_ptr<bool> alive = alive_;
    host.connect(rec->endpoint, opts, [this, g, alive](Result<NodeId>) {
      if (alive.expired() || !*alive.lock()) return;
      --g->dials;
      plan(g);
    });
  }
}

void Fetcher::arm_hedge(const std::shared_ptr<Gather>& g) {
  std::weak_ptr<bool> alive = alive_;
  g->hedge.expires_after(ctx_.settings.fetch.hedge_after);
  g->hedge.async_wait([this, g, alive](const std::error_code& ec) {
    if (ec || alive.expired() || !*alive.lock() || g->finished) return;
    const auto now = Clock::now();
    bool any = false;
    for (auto& [n, ask] : g->asks) {
      if (!ask.slow && now - ask.sent >= ctx_.settings.fetch.hedge_after) {
        ask.slow = true;
        any = true;
        hedged_.inc();
      }
    }
    if (any) plan(g);
    arm_hedge(g);
  });
}

void Fetcher::plan(const std::shared_ptr<Gather>& g) {
  if (g->finished) return;
  const uint32_t k = ctx_.params.data_fragments;
  const uint32_t n = ctx_.params.total_fragments();
  if (g->have.size() >= k) {
    complete(g, Bytes{});
    return;
  }
  p2p::Host& host = ctx_.gossip->host();
  std::set<uint8_t> covered;
  for (const auto& [f, bytes] : g->have) covered.insert(f);
  for (const auto& [num, ask] : g->asks) {
    if (!ask.slow) covered.insert(ask.fragments.begin(), ask.fragments.end());
  }
  std::vector<NodeId> live;
  // Peers that answered before (the fast ones) first.
  for (const NodeId& p : g->peers) {
    if (g->responded.count(p) && !g->failed.count(p) && host.is_connected(p)) live.push_back(p);
  }
  for (const NodeId& p : g->peers) {
    if (!g->responded.count(p) && !g->failed.count(p) && host.is_connected(p)) live.push_back(p);
  }
  // The first parallel_peers live holders without a slow request share the
  // fragments round-robin; the others take what those were already asked
  // for (hedges and replacements).
  std::set<NodeId> slow;
  for (const auto& [num, ask] : g->asks) {
    if (ask.slow) slow.insert(ask.peer);
  }
  std::vector<NodeId> preferred, others;
  for (const NodeId& p : live) {
    if (preferred.size() < std::max<uint32_t>(1, ctx_.settings.fetch.parallel_peers) && !slow.count(p)) {
      preferred.push_back(p);
    } else {
      others.push_back(p);
    }
  }
  dial_more(g, preferred.size());
  size_t needed = covered.size() >= k ? 0 : k - covered.size();
  std::map<NodeId, std::vector<uint8_t>> assign;
  bool busy = false;
  const auto take = [&](const NodeId& p, uint8_t f) {
    assign[p].push_back(f);
    g->asked.insert({p, f});
    --needed;
  };
  for (uint32_t f = 0; f < n && needed > 0 && !live.empty(); ++f) {
    const auto frag = static_cast<uint8_t>(f);
    if (covered.count(frag)) continue;
    bool placed = false;
    for (size_t tries = 0; tries < preferred.size() && !placed; ++tries) {
      const NodeId& p = preferred[(g->cursor + tries) % preferred.size()];
      if (g->asked.count({p, frag})) continue;
      take(p, frag);
      g->cursor = (g->cursor + tries + 1) % preferred.size();
      placed = true;
    }
    for (size_t i = 0; i < others.size() && !placed; ++i) {
      if (g->asked.count({others[i], frag})) continue;
      take(others[i], frag);
      placed = true;
    }
  }
  for (auto& [peer, frags] : assign) {
    const uint64_t num = g->next_ask++;
    p2p::RequestOptions opts;
    opts.timeout = std::chrono::duration_cast<cairn::Duration>(ctx_.settings.fetch.request_timeout);
    std::weak_ptr<bool> alive = alive_;
    const NodeId p = peer;
    auto rid = ctx_.rr->request(
        peer, p2p::MessageType::fragments_request, wire::encode_fragments_request({g->id, frags}),
        [this, g, num, p, alive](Result<Bytes> body) {
          if (alive.expired() || !*alive.lock()) return;
          on_answer(g, num, p, std::move(body));
        },
        opts);
    if (!rid) {
      for (uint8_t f : frags) g->asked.erase({peer, f});
      if (rid.error().code == Errc::busy) {
        // Its request cap is full (other reads): ask again shortly.
        busy = true;
      } else {
        g->failed.insert(peer);  // gone since it was listed
      }
      continue;
    }
    g->asks[num] = Gather::Ask{peer, std::move(frags), *rid, Clock::now(), false};
  }
  if (busy && !g->retry_armed) {
    g->retry_armed = true;
    std::weak_ptr<bool> alive = alive_;
    g->retry.expires_after(kBusyRetry);
    g->retry.async_wait([this, g, alive](const std::error_code& ec) {
      if (ec || alive.expired() || !*alive.lock()) return;
      g->retry_armed = false;
      plan(g);
    });
  }
  if (g->asks.empty() && g->dials == 0 && !g->retry_armed) {
    read_failures_.inc();
    complete(g, make_error(g->peers.empty() ? Errc::not_found : Errc::too_many_losses,
                           "blob " + g->id.hex() + ": only " + std::to_string(g->have.size()) + " of " +
                               std::to_string(k) + " verified fragments from " + std::to_string(g->peers.size()) +
                               " candidate node(s) (" + std::to_string(g->failed.size()) + " failed)"));
  }
}

void Fetcher::on_answer(const std::shared_ptr<Gather>& g, uint64_t ask, const NodeId& peer, Result<Bytes> body) {
  if (g->finished) return;
  if (!body) {
    merge(g, ask, peer, {}, std::nullopt, body.error());
    return;
  }
  auto shared = std::make_shared<Bytes>(std::move(*body));
  std::weak_ptr<bool> alive = alive_;
  auto job = [this, g, ask, peer, shared, alive] {
    std::vector<std::pair<uint8_t, Bytes>> good;
    std::optional<std::vector<Hash32>> roots;
    std::optional<Error> error;
    auto resp = wire::decode_fragments_response(*shared, ctx_.params);
    if (!resp) {
      error = resp.error();
    } else if (auto st = wire::verify_roots(g->id, resp->roots); !st) {
      error = st.error();
    } else {
      roots = resp->roots;
      for (const auto& f : resp->fragments) {
        if (erasure::fragment_root(f.bytes, ctx_.params.chunk_size) != resp->roots[f.index]) {
          error = Error{Errc::verification_failed, "fragment " + std::to_string(f.index) + " does not match its root"};
          continue;
        }
        good.emplace_back(f.index, Bytes(f.bytes.begin(), f.bytes.end()));
      }
    }
    ctx_.post([this, g, ask, peer, good = std::move(good), roots = std::move(roots), error, alive]() mutable {
      if (alive.expired() || !*alive.lock()) return;
      merge(g, ask, peer, std::move(good), std::move(roots), error);
    });
  };
  submit_job(std::move(job), {});
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
  // and the node's stop.
  auto timer = std::make_shared<asio::steady_timer>(ctx_.io, kBusyRetry);
  std::weak_ptr<bool> alive = alive_;
  timer->async_wait(
      [this, timer, alive, job = std::move(job), cancel = std::move(cancel)](const std::error_code& ec) mutable {
        if (alive.expired() || !*alive.lock()) return;
        if (ec) {
          if (cancel) cancel();
          return;
        }
        submit_job(std::move(job), std::move(cancel));
      });
}

void Fetcher::merge(const std::shared_ptr<Gather>& g, uint64_t ask, const NodeId& peer,
                    std::vector<std::pair<uint8_t, Bytes>> good, std::optional<std::vector<Hash32>> roots,
                    std::optional<Error> error) {
  std::vector<uint8_t> asked_fragments;
  if (auto it = g->asks.find(ask); it != g->asks.end()) {
    asked_fragments = it->second.fragments;
    g->asks.erase(it);
  }
  if (g->finished) return;
  for (auto& [f, bytes] : good) {
    if (g->have.emplace(f, std::move(bytes)).second) fragments_received_.inc();
  }
  (void)roots;
  if (error) {
    if (error->code == Errc::verification_failed || error->code == Errc::invalid_argument) {
      bad_fragments_.inc();
      ctx_.gossip->host().adjust_score(peer, -kBadFragmentsPenalty, "served fragments that fail verification");
    }
    if (error->code != Errc::cancelled) {
      CAIRN_LOG(log::Level::debug, "node",
                "fragments of blob " << g->id.hex() << " from " << p2p::short_id(peer) << ": " << error->to_string());
    }
    if ((error->code == Errc::io_error || error->code == Errc::busy) && g->redials[peer] < kMaxRedials) {
      // The connection dropped or the peer was momentarily full: the same
      // fragments may be asked of it again (after a new dial if needed).
      for (uint8_t f : asked_fragments) g->asked.erase({peer, f});
      if (error->code == Errc::busy) ++g->redials[peer];
    } else {
      g->failed.insert(peer);
    }
  } else {
    g->responded.insert(peer);
  }
  plan(g);
}

void Fetcher::complete(const std::shared_ptr<Gather>& g, Result<Bytes> result) {
  if (g->finished) return;
  g->finished = true;
  g->hedge.cancel();
  g->deadline.cancel();
  g->retry.cancel();
  if (ctx_.rr != nullptr) {
    for (auto& [num, ask] : g->asks) ctx_.rr->cancel(ask.rid);
  }
  g->asks.clear();
  if (!result) {
    g->done(std::move(result));
    return;
  }
  // Decode on a worker from k verified fragments, data fragments first.
  auto job = [this, g] {
    const uint32_t k = ctx_.params.data_fragments;
    std::vector<erasure::FragmentRef> refs;
    bool parity = false;
    for (const auto& [f, bytes] : g->have) {
      if (refs.size() == k) break;
      refs.push_back(erasure::FragmentRef{f, bytes});
      parity = parity || f >= k;
    }
    auto payload = ctx_.codec->decode(refs, g->reg.size);
    if (payload && parity) {
      // Rebuilt through parity: the result is the blob only if the
      // fragments form a valid codeword of this id.
      auto check = erasure::encode_and_commit(*ctx_.codec, *payload);
      if (!check || check->commitment.id != g->id) {
        payload = make_error(Errc::corruption,
                             "blob " + g->id.hex() + ": fragments decode to bytes that do not commit to its id");
      }
    }
    remote_latency_.observe(std::chrono::duration<double>(Clock::now() - g->started).count());
    if (!payload) read_failures_.inc();
    g->done(std::move(payload));
  };
  submit_job(std::move(job), [g] { g->done(make_error(Errc::cancelled, "node stopping")); });
}

std::vector<NodeId> Fetcher::probe(const BlobId& id, ShardId shard, std::chrono::milliseconds timeout) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    size_t waiting = 0;
    std::vector<NodeId> holders;
  };
  auto st = std::make_shared<State>();
  std::weak_ptr<bool> alive = alive_;
  auto posted = ctx_.run_on_io([&] {
    if (stopped_ || ctx_.rr == nullptr || ctx_.gossip == nullptr) return;
    p2p::Host& host = ctx_.gossip->host();
    for (const NodeId& peer : candidates(id, shard)) {
      if (!host.is_connected(peer)) continue;
      p2p::RequestOptions opts;
      opts.timeout = std::chrono::duration_cast<cairn::Duration>(timeout);
      auto rid = ctx_.rr->request(
          peer, p2p::MessageType::fragments_request, wire::encode_fragments_request({id, {}}),
          [this, st, peer, id](Result<Bytes> body) {
            bool holds = false;
            if (body) {
              auto resp = wire::decode_fragments_response(*body, ctx_.params);
              holds = resp && wire::verify_roots(id, resp->roots);
            }
            if (holds) ctx_.holders.add(id, peer);
            std::lock_guard lock(st->mu);
            if (holds) st->holders.push_back(peer);
            --st->waiting;
            st->cv.notify_all();
          },
          opts);
      if (rid) {
        std::lock_guard lock(st->mu);
        ++st->waiting;
      }
    }
  });
  if (!posted) return {};
  std::unique_lock lock(st->mu);
  st->cv.wait_for(lock, timeout + std::chrono::seconds(1), [&] { return st->waiting == 0; });
  return st->holders;
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
