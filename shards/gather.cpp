#include "cairn/shards/gather.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "cairn/core/log.hpp"
#include "cairn/erasure/commitment.hpp"

namespace cairn::shards {
namespace {

constexpr const char* kLog = "gather";

// What one reply proved, computed on a worker.
struct Checked {
  std::vector<std::pair<uint8_t, Bytes>> good;  // wanted fragments matching their roots
  std::vector<Hash32> roots;                    // committing to the id; empty on error
  std::optional<Error> error;                   // the reply (or part of it) failed verification
};

// Checks `reply` against `id`: the roots must commit to it, and each
// fragment must match its root. Keeps the good fragments of `wanted`.
Checked check_reply(const BlobId& id, const erasure::NetworkParams& params,
                    const std::vector<bool>& wanted, const FragmentReply& reply) {
  Checked out;
  const uint32_t n = params.total_fragments();
  const size_t fs = params.fragment_size();
  if (reply.fragment_roots.size() != n ||
      erasure::commitment_from_roots(reply.fragment_roots) != id) {
    out.error =
        Error{Errc::verification_failed, "fragment roots do not commit to blob " + id.hex()};
    return out;
  }
  if (reply.data.size() != reply.fragments.size() * fs) {
    out.error =
        Error{Errc::verification_failed, std::to_string(reply.data.size()) + " bytes for " +
                                             std::to_string(reply.fragments.size()) + " fragments"};
    return out;
  }
  out.roots = reply.fragment_roots;
  std::vector<bool> seen(n, false);
  for (size_t i = 0; i < reply.fragments.size(); ++i) {
    const uint32_t f = reply.fragments[i].value;
    if (f >= n || seen[f]) {
      out.error = Error{Errc::verification_failed,
                        "fragment " + std::to_string(f) + " repeated or out of range"};
      continue;
    }
    seen[f] = true;
    const ByteSpan bytes(reply.data.data() + i * fs, fs);
    if (erasure::fragment_root(bytes, params.chunk_size) != reply.fragment_roots[f]) {
      out.error = Error{Errc::verification_failed,
                        "fragment " + std::to_string(f) + " does not match its root"};
      continue;
    }
    if (wanted[f])
      out.good.emplace_back(static_cast<uint8_t>(f), Bytes(bytes.begin(), bytes.end()));
  }
  return out;
}

}  // namespace

struct FragmentGather::Impl : std::enable_shared_from_this<Impl> {
  enum class EventKind : uint8_t { deadline, hedge, retry };
  struct Event {
    GatherHandle job;
    EventKind kind;
    uint64_t ask;  // hedge: the ask
  };
  using Events = std::multimap<TimePoint, Event>;

  struct Ask {
    NodeId peer;
    std::vector<FragmentIndex> share;
    FetchHandle fetch = 0;
    TimePoint sent{};
    bool slow = false;      // hedged: its share is no longer counted as covered
    bool answered = false;  // the reply is being verified
  };

  struct Job {
    bool probe = false;
    GatherRequest req;
    GatherCallback done;
    ProbeCallback probe_done;
    std::vector<bool> wanted;       // by fragment index
    std::map<uint8_t, Bytes> have;  // verified fragments of `wanted`
    std::vector<Hash32> roots;
    std::vector<NodeId> served;
    std::vector<NodeId> holders;  // probe
    std::set<NodeId> failed;      // not asked again by this job
    std::set<NodeId> responded;   // answered with verified fragments
    std::map<NodeId, uint32_t> retries;
    std::set<std::pair<NodeId, uint8_t>> asked;
    std::map<uint64_t, Ask> asks;
    uint64_t next_ask = 1;
    size_t cursor = 0;  // round-robin position over the preferred peers
    bool retry_armed = false;
    std::vector<std::function<void()>> deferred;  // verifications the pool refused while full
    Duration timeout{};                           // probe: how long to wait for answers
    std::vector<Events::iterator> events;
  };

  Impl(RemoteFragments& r, WorkerPool& p, Clock& c, Post po, const erasure::NetworkParams& pa,
       GatherSettings s)
      : remote(r), pool(p), clock(c), post(std::move(po)), params(pa), settings(s) {
    settings.parallel_peers = std::max<uint32_t>(1, settings.parallel_peers);
    settings.max_gathers = std::max<uint32_t>(1, settings.max_gathers);
  }

  RemoteFragments& remote;
  WorkerPool& pool;
  Clock& clock;
  Post post;
  erasure::NetworkParams params;
  GatherSettings settings;
  std::unique_ptr<Timer> timer;
  Events events;
  std::unordered_map<GatherHandle, std::shared_ptr<Job>> jobs;
  std::atomic<GatherHandle> next_handle{1};
  bool stopped = false;
  struct Counters {
    std::atomic<uint64_t> gathers{0}, failed{0}, requests{0}, hedged{0}, fragments{0},
        invalid_replies{0};
  } counters;

  // ---- timers ----

  void schedule(GatherHandle h, Job& job, TimePoint at, EventKind kind, uint64_t ask = 0) {
    job.events.push_back(events.emplace(at, Event{h, kind, ask}));
    if (events.begin() == job.events.back()) arm();
  }

  void arm() {
    if (events.empty()) {
      timer->cancel();
      return;
    }
    std::weak_ptr<Impl> weak = weak_from_this();
    timer->expires_after(events.begin()->first - clock.now(), [weak] {
      if (auto self = weak.lock()) self->fire();
    });
  }

  void fire() {
    const TimePoint now = clock.now();
    while (!stopped && !events.empty() && events.begin()->first <= now) {
      auto it = events.begin();
      const Event e = it->second;
      auto j = jobs.find(e.job);
      if (j != jobs.end()) std::erase(j->second->events, it);
      events.erase(it);
      if (j == jobs.end()) continue;
      std::shared_ptr<Job> job = j->second;
      switch (e.kind) {
        case EventKind::deadline:
          if (job->probe) {
            finish_probe(e.job);
          } else {
            finish(e.job, make_error(Errc::timeout, "blob " + job->req.id.hex() + ": " +
                                                        std::to_string(job->have.size()) + " of " +
                                                        std::to_string(job->req.at_least) +
                                                        " fragments verified before the deadline"));
          }
          break;
        case EventKind::hedge:
          if (auto a = job->asks.find(e.ask); a != job->asks.end() && !a->second.answered) {
            a->second.slow = true;
            ++counters.hedged;
            plan(e.job);
          }
          break;
        case EventKind::retry: {
          job->retry_armed = false;
          std::vector<std::function<void()>> deferred = std::move(job->deferred);
          job->deferred.clear();
          for (auto& d : deferred) d();
          plan(e.job);
          break;
        }
      }
    }
    if (!stopped) arm();
  }

  void retry_later(GatherHandle h, Job& job) {
    if (job.retry_armed) return;
    job.retry_armed = true;
    schedule(h, job, clock.now() + settings.busy_retry, EventKind::retry);
  }

  // ---- starting ----

  // Any thread: hands the job to the executor.
  GatherHandle admit(std::shared_ptr<Job> job) {
    const GatherHandle h = next_handle.fetch_add(1);
    auto self = shared_from_this();
    post([self, h, job] { self->enter(h, job); });
    return h;
  }

  void enter(GatherHandle h, const std::shared_ptr<Job>& job) {
    std::optional<Error> refused;
    if (stopped) {
      refused = Error{Errc::cancelled, "fragment gather stopped"};
    } else if (jobs.size() >= settings.max_gathers) {
      refused = Error{Errc::busy, std::to_string(jobs.size()) + " fragment gathers under way"};
    }
    if (refused) {
      if (job->probe) {
        job->probe_done({});
      } else {
        job->done(tl::unexpected(*refused));
      }
      return;
    }
    jobs.emplace(h, job);
    start(h);
  }

  void start(GatherHandle h) {
    auto j = jobs.find(h);
    if (j == jobs.end() || stopped) return;
    std::shared_ptr<Job> job = j->second;
    if (job->probe) {
      start_probe(h, *job);
      return;
    }
    ++counters.gathers;
    const Duration limit =
        job->req.deadline > Duration::zero() ? job->req.deadline : settings.deadline;
    schedule(h, *job, clock.now() + limit, EventKind::deadline);
    plan(h);
  }

  // ---- gathering ----

  void plan(GatherHandle h) {
    auto j = jobs.find(h);
    if (j == jobs.end()) return;
    std::shared_ptr<Job> job = j->second;
    const uint32_t enough = job->req.at_least;
    for (;;) {
      if (job->have.size() >= enough) {
        succeed(h);
        return;
      }
      std::set<uint8_t> covered;
      for (const auto& [f, bytes] : job->have) covered.insert(f);
      std::set<NodeId> slow;
      for (const auto& [num, ask] : job->asks) {
        if (ask.slow) {
          slow.insert(ask.peer);
          continue;
        }
        for (FragmentIndex f : ask.share) covered.insert(f.value);
      }
      // Peers that answered before (the fast ones) first; among the rest,
      // the caller's order. The first parallel_peers without a slow request
      // share the fragments round-robin; the others take what those were
      // already asked for (hedges and replacements).
      std::vector<NodeId> preferred, others;
      const auto consider = [&](const NodeId& p) {
        if (preferred.size() < settings.parallel_peers && slow.count(p) == 0) {
          preferred.push_back(p);
        } else {
          others.push_back(p);
        }
      };
      for (const NodeId& p : job->req.peers) {
        if (job->responded.count(p) != 0 && job->failed.count(p) == 0) consider(p);
      }
      for (const NodeId& p : job->req.peers) {
        if (job->responded.count(p) == 0 && job->failed.count(p) == 0) consider(p);
      }
      size_t needed = covered.size() >= enough ? 0 : enough - covered.size();
      std::map<NodeId, std::vector<FragmentIndex>> assign;
      std::vector<NodeId> order;  // assign's peers in the order they were given work
      const auto take = [&](const NodeId& p, uint8_t f) {
        auto& share = assign[p];
        if (share.empty()) order.push_back(p);
        share.push_back(FragmentIndex{f});
        job->asked.insert({p, f});
        --needed;
      };
      for (FragmentIndex want : job->req.wanted) {
        if (needed == 0) break;
        const uint8_t f = want.value;
        if (covered.count(f) != 0) continue;
        bool placed = false;
        for (size_t tries = 0; tries < preferred.size() && !placed; ++tries) {
          const size_t at = (job->cursor + tries) % preferred.size();
          if (job->asked.count({preferred[at], f}) != 0) continue;
          take(preferred[at], f);
          job->cursor = (at + 1) % preferred.size();
          placed = true;
        }
        for (size_t i = 0; i < others.size() && !placed; ++i) {
          if (job->asked.count({others[i], f}) != 0) continue;
          take(others[i], f);
          placed = true;
        }
      }
      bool refused = false;  // a peer failed at once: plan again without it
      for (const NodeId& peer : order) {
        std::vector<FragmentIndex>& share = assign[peer];
        if (!launch(h, *job, peer, std::move(share))) refused = true;
      }
      if (refused) continue;
      break;
    }
    if (job->asks.empty() && !job->retry_armed) {
      const Errc code = job->req.peers.empty() ? Errc::not_found : Errc::too_many_losses;
      finish(h, make_error(code, "blob " + job->req.id.hex() + ": " +
                                     std::to_string(job->have.size()) + " of " +
                                     std::to_string(enough) + " fragments verified from " +
                                     std::to_string(job->req.peers.size()) + " candidate(s), " +
                                     std::to_string(job->failed.size()) + " failed"));
    }
  }

  // Sends one request; false when the peer refused it at once for good
  // (it is then marked failed).
  bool launch(GatherHandle h, Job& job, const NodeId& peer, std::vector<FragmentIndex> share) {
    const uint64_t num = job.next_ask++;
    FragmentRequest req{job.req.id, job.req.index, share, static_cast<uint32_t>(share.size())};
    std::weak_ptr<Impl> weak = weak_from_this();
    Post p = post;
    auto handle = remote.fetch(peer, req, [weak, p, h, num](Result<FragmentReply> r) {
      auto shared = std::make_shared<Result<FragmentReply>>(std::move(r));
      p([weak, h, num, shared] {
        if (auto self = weak.lock()) self->on_reply(h, num, std::move(*shared));
      });
    });
    if (!handle) {
      for (FragmentIndex f : share) job.asked.erase({peer, f.value});
      if (handle.error().code == Errc::busy) {
        retry_later(h, job);
        return true;
      }
      job.failed.insert(peer);
      return false;
    }
    ++counters.requests;
    const TimePoint now = clock.now();
    job.asks.emplace(num, Ask{peer, std::move(share), *handle, now, false, false});
    schedule(h, job, now + settings.hedge_after, EventKind::hedge, num);
    return true;
  }

  void on_reply(GatherHandle h, uint64_t num, Result<FragmentReply> r) {
    auto j = jobs.find(h);
    if (j == jobs.end() || stopped) return;
    std::shared_ptr<Job> job = j->second;
    auto a = job->asks.find(num);
    if (a == job->asks.end()) return;
    const NodeId peer = a->second.peer;
    if (!r) {
      const Errc code = r.error().code;
      std::vector<FragmentIndex> share = std::move(a->second.share);
      job->asks.erase(a);
      if (job->probe) {
        finish_probe_if_done(h, *job);
        return;
      }
      if (code != Errc::cancelled) {
        CAIRN_LOG(log::Level::debug, kLog,
                  "blob " << job->req.id.hex() << " from " << peer.hex().substr(0, 16) << ": "
                          << r.error().to_string());
      }
      switch (code) {
        case Errc::cancelled:
          job->failed.insert(peer);
          break;
        case Errc::busy:
        case Errc::io_error:
          remote.report(peer, PeerVerdict::unavailable);
          // Full for a moment, or the connection dropped: the same share
          // may be asked of it again (the port dials again).
          if (job->retries[peer]++ < settings.max_retries_per_peer) {
            for (FragmentIndex f : share) job->asked.erase({peer, f.value});
          } else {
            job->failed.insert(peer);
          }
          break;
        case Errc::timeout:
          remote.report(peer, PeerVerdict::slow);
          job->failed.insert(peer);
          break;
        case Errc::corruption:
        case Errc::invalid_argument:
        case Errc::verification_failed:
          ++counters.invalid_replies;
          remote.report(peer, PeerVerdict::invalid_data);
          job->failed.insert(peer);
          break;
        default:
          remote.report(peer, PeerVerdict::unavailable);
          job->failed.insert(peer);
          break;
      }
      plan(h);
      return;
    }
    a->second.answered = true;
    verify(h, num, std::make_shared<FragmentReply>(std::move(*r)));
  }

  // Checks a reply on the pool, then merges it on the executor. A full
  // pool is offered the check again on the job's next retry.
  void verify(GatherHandle h, uint64_t num, std::shared_ptr<FragmentReply> reply) {
    auto j = jobs.find(h);
    if (j == jobs.end()) return;
    Job& job = *j->second;
    std::weak_ptr<Impl> weak = weak_from_this();
    Post p = post;
    auto run = [weak, p, h, num, id = job.req.id, pa = params, wanted = job.wanted, reply] {
      auto checked = std::make_shared<Checked>(check_reply(id, pa, wanted, *reply));
      p([weak, h, num, checked] {
        if (auto self = weak.lock()) self->on_checked(h, num, std::move(*checked));
      });
    };
    auto cancelled = [weak, p, h, num] {
      p([weak, h, num] {
        if (auto self = weak.lock())
          self->on_reply(h, num, make_error(Errc::cancelled, "worker pool stopped"));
      });
    };
    auto st = pool.try_submit(run, cancelled);
    if (st) return;
    if (st.error().code == Errc::busy) {
      job.deferred.push_back([this, h, num, reply] { verify(h, num, reply); });
      retry_later(h, job);
      return;
    }
    cancelled();
  }

  void on_checked(GatherHandle h, uint64_t num, Checked checked) {
    auto j = jobs.find(h);
    if (j == jobs.end() || stopped) return;
    std::shared_ptr<Job> job = j->second;
    auto a = job->asks.find(num);
    if (a == job->asks.end()) return;
    const NodeId peer = a->second.peer;
    job->asks.erase(a);
    if (job->probe) {
      if (!checked.error) job->holders.push_back(peer);
      finish_probe_if_done(h, *job);
      return;
    }
    if (job->roots.empty()) job->roots = checked.roots;
    bool added = false;
    for (auto& [f, bytes] : checked.good) {
      if (job->have.emplace(f, std::move(bytes)).second) {
        added = true;
        ++counters.fragments;
      }
    }
    if (checked.error) {
      ++counters.invalid_replies;
      CAIRN_LOG(log::Level::info, kLog,
                "blob " << job->req.id.hex() << ": peer " << peer.hex().substr(0, 16)
                        << " sent bad data: " << checked.error->to_string() << "; asking others");
      remote.report(peer, PeerVerdict::invalid_data);
      job->failed.insert(peer);
    } else if (!checked.good.empty()) {
      remote.report(peer, PeerVerdict::good);
      job->responded.insert(peer);
    }
    if (added && std::find(job->served.begin(), job->served.end(), peer) == job->served.end()) {
      job->served.push_back(peer);
    }
    plan(h);
  }

  void succeed(GatherHandle h) {
    auto j = jobs.find(h);
    if (j == jobs.end()) return;
    std::shared_ptr<Job> job = j->second;
    Gathered out;
    const size_t fs = params.fragment_size();
    out.reply.data.reserve(size_t{params.total_fragments()} * fs);
    for (const auto& [f, bytes] : job->have) {
      out.reply.fragments.push_back(FragmentIndex{f});
      out.reply.data.insert(out.reply.data.end(), bytes.begin(), bytes.end());
    }
    out.reply.fragment_roots = std::move(job->roots);
    out.served = std::move(job->served);
    finish(h, std::move(out));
  }

  // Ends a gather: cancels its requests (a slow one is reported slow), then
  // calls `done`.
  void finish(GatherHandle h, Result<Gathered> result) {
    auto j = jobs.find(h);
    if (j == jobs.end()) return;
    std::shared_ptr<Job> job = j->second;
    drop(j);
    for (auto& [num, ask] : job->asks) {
      if (!ask.answered) remote.cancel(ask.fetch);
      if (ask.slow) remote.report(ask.peer, PeerVerdict::slow);
    }
    job->asks.clear();
    if (job->probe) {
      job->probe_done(std::move(job->holders));
    } else {
      if (!result) ++counters.failed;
      job->done(std::move(result));
    }
  }

  void drop(std::unordered_map<GatherHandle, std::shared_ptr<Job>>::iterator j) {
    const bool first =
        !events.empty() && std::find(j->second->events.begin(), j->second->events.end(),
                                     events.begin()) != j->second->events.end();
    for (auto it : j->second->events) events.erase(it);
    j->second->events.clear();
    jobs.erase(j);
    if (first && !stopped) arm();
  }

  // ---- probing ----

  void start_probe(GatherHandle h, Job& job) {
    schedule(h, job, clock.now() + job.timeout, EventKind::deadline);
    for (const NodeId& peer : job.req.peers) {
      const uint64_t num = job.next_ask++;
      std::weak_ptr<Impl> weak = weak_from_this();
      Post p = post;
      auto handle = remote.fetch(peer, FragmentRequest{job.req.id, job.req.index, {}, 0},
                                 [weak, p, h, num](Result<FragmentReply> r) {
                                   auto shared =
                                       std::make_shared<Result<FragmentReply>>(std::move(r));
                                   p([weak, h, num, shared] {
                                     if (auto self = weak.lock())
                                       self->on_reply(h, num, std::move(*shared));
                                   });
                                 });
      if (!handle) continue;
      ++counters.requests;
      job.asks.emplace(num, Ask{peer, {}, *handle, clock.now(), false, false});
    }
    finish_probe_if_done(h, job);
  }

  void finish_probe_if_done(GatherHandle h, Job& job) {
    if (job.asks.empty()) finish_probe(h);
  }

  // A probe's callback takes the holders, not a result.
  void finish_probe(GatherHandle h) { finish(h, make_error(Errc::cancelled, "probe ended")); }

  // ---- ending ----

  void cancel(GatherHandle h) {
    auto j = jobs.find(h);
    if (j == jobs.end()) return;
    finish(h,
           make_error(Errc::cancelled, "gather of blob " + j->second->req.id.hex() + " cancelled"));
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    std::vector<GatherHandle> handles;
    handles.reserve(jobs.size());
    for (const auto& [h, job] : jobs) handles.push_back(h);
    for (GatherHandle h : handles) {
      auto j = jobs.find(h);
      if (j != jobs.end()) finish(h, make_error(Errc::cancelled, "fragment gather stopped"));
    }
    events.clear();
    timer->cancel();
  }
};

FragmentGather::FragmentGather(RemoteFragments& remote, WorkerPool& pool, Clock& clock,
                               const asio::any_io_executor& executor, Post post,
                               const erasure::NetworkParams& params, GatherSettings settings)
    : impl_(std::make_shared<Impl>(remote, pool, clock, std::move(post), params, settings)) {
  impl_->timer = clock.make_timer(executor);
}

FragmentGather::~FragmentGather() { impl_->stop(); }

GatherHandle FragmentGather::gather(GatherRequest request, GatherCallback done) {
  auto job = std::make_shared<Impl::Job>();
  const uint32_t n = impl_->params.total_fragments();
  job->wanted.assign(n, false);
  std::optional<Error> bad;
  for (FragmentIndex f : request.wanted) {
    if (f.value >= n || job->wanted[f.value]) {
      bad = Error{Errc::invalid_argument,
                  "fragment " + std::to_string(f.value) + " repeated or out of range"};
      break;
    }
    job->wanted[f.value] = true;
  }
  if (!bad && (request.at_least == 0 || request.at_least > request.wanted.size())) {
    bad = Error{Errc::invalid_argument, "at_least " + std::to_string(request.at_least) + " of " +
                                            std::to_string(request.wanted.size()) +
                                            " wanted fragments"};
  }
  job->req = std::move(request);
  if (bad) {
    impl_->post([done = std::move(done), e = *bad] { done(tl::unexpected(e)); });
    return 0;
  }
  job->done = std::move(done);
  return impl_->admit(std::move(job));
}

GatherHandle FragmentGather::probe(const BlobId& id, BlobIndex index, std::vector<NodeId> peers,
                                   Duration timeout, ProbeCallback done) {
  auto job = std::make_shared<Impl::Job>();
  job->probe = true;
  job->req.id = id;
  job->req.index = index;
  job->req.peers = std::move(peers);
  job->req.at_least = 0;
  job->wanted.assign(impl_->params.total_fragments(), false);
  job->timeout = timeout;
  job->probe_done = std::move(done);
  return impl_->admit(std::move(job));
}

void FragmentGather::cancel(GatherHandle handle) {
  auto impl = impl_;
  impl_->post([impl, handle] { impl->cancel(handle); });
}

std::vector<NodeId> FragmentGather::peers(ShardId shard) { return impl_->remote.peers(shard); }

void FragmentGather::stop() { impl_->stop(); }

size_t FragmentGather::active() const { return impl_->jobs.size(); }

GatherStats FragmentGather::stats() const {
  const auto& c = impl_->counters;
  return GatherStats{c.gathers.load(), c.failed.load(),    c.requests.load(),
                     c.hedged.load(),  c.fragments.load(), c.invalid_replies.load()};
}

}  // namespace cairn::shards
