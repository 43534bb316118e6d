#include "cairn/shards/sync.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "cairn/core/log.hpp"
#include "cairn/shards/serve.hpp"
#include "rate_meter.hpp"
#include "run_logged.hpp"

namespace cairn::shards {

std::string_view sync_state_name(SyncState s) noexcept {
  switch (s) {
    case SyncState::starting:
      return "starting";
    case SyncState::fetching:
      return "fetching";
    case SyncState::waiting:
      return "waiting";
    case SyncState::synced:
      return "synced";
    case SyncState::stopped:
      return "stopped";
  }
  return "unknown";
}

std::string_view hint_outcome_name(HintOutcome o) noexcept {
  switch (o) {
    case HintOutcome::stored:
      return "stored";
    case HintOutcome::already_held:
      return "already_held";
    case HintOutcome::rejected:
      return "rejected";
    case HintOutcome::given_up:
      return "given_up";
  }
  return "unknown";
}

namespace {

using std::chrono::milliseconds;

constexpr const char* kLog = "sync";
// Weight of the newest sample in a peer's latency average.
constexpr double kLatencyWeight = 0.25;
// Failed rounds double the retry backoff up to this factor.
constexpr uint32_t kMaxBackoffShift = 4;
// Peers are asked for again at most this often while a shard has work.
constexpr milliseconds kPeerRefresh{1000};
// A peer that refused a fetch as busy is not asked again for this long,
// unless one of its answers arrives first.
constexpr milliseconds kBusyPause{200};
// A peer that could not be reached is not asked again for this long,
// doubling with every further failure in a row up to 64 s (a node that left
// stays in the chain registry).
constexpr milliseconds kUnreachablePause{1000};
constexpr uint32_t kMaxUnreachableShift = 6;

uint64_t unix_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

double to_ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Adds the peers of `more` that `peers` lacks, in order.
void merge_peers(std::vector<NodeId>& peers, const std::vector<NodeId>& more) {
  for (const NodeId& p : more) {
    if (std::find(peers.begin(), peers.end(), p) == peers.end()) peers.push_back(p);
  }
}

// Which way a failed fetch counts against its peer.
PeerVerdict verdict_of(Errc code) {
  switch (code) {
    case Errc::timeout:
      return PeerVerdict::slow;
    case Errc::corruption:
    case Errc::invalid_argument:
    case Errc::verification_failed:
      return PeerVerdict::invalid_data;
    default:
      return PeerVerdict::unavailable;
  }
}

}  // namespace

struct SyncEngine::Impl : std::enable_shared_from_this<Impl> {
  enum class Stage { queued, fetching, verifying, waiting };

  // An accepted hint, from hint() to its outcome.
  struct HintState {
    TimePoint started{};
    uint32_t rounds = 0;  // rounds in which no peer served the blob
  };

  struct Task {
    RegisteredBlob blob;
    Stage stage = Stage::queued;
    std::optional<HintState> hint;     // the blob was hinted: fetched on the hint slots
    std::vector<NodeId> preferred;     // the hints' peers, asked first
    bool hint_slot = false;            // fetching or verifying on a hint slot
    std::vector<uint64_t> attempts;    // ids in attempts_, newest last
    std::vector<NodeId> failed_peers;  // peers that failed this blob in this round
    TimePoint retry_at{};
    uint32_t failed_rounds = 0;
    bool hedged = false;
  };

  struct Shard {
    ShardId id;
    uint64_t generation = 0;
    BlobIndex first;
    bool cursor_loaded = false;
    bool counted = false;          // a plan has read the registry's count
    bool reported_synced = false;  // "synced" was logged since the last work
    bool planning = false;
    bool poll = false;            // ask the registry again although the plan reached its end
    TimePoint plan_not_before{};  // after a failed plan
    uint32_t failed_plans = 0;
    BlobIndex planned_to;  // every index below is settled or in `tasks`
    BlobIndex persisted;   // the cursor on disk (or being written)
    bool persisting = false;
    bool persist_again = false;
    uint64_t known = 0;
    uint64_t held = 0;
    uint64_t conflicts = 0;
    uint64_t fetched_blobs = 0;
    uint64_t fetched_bytes = 0;
    uint64_t fetches_failed = 0;
    std::map<uint64_t, Task> tasks;   // unsettled planned indexes
    std::vector<uint64_t> recheck;    // settled indexes to look at again (refetch())
    std::deque<uint64_t> queue;       // tasks in Stage::queued, in fetch order
    std::deque<uint64_t> hint_queue;  // hinted tasks in Stage::queued, ahead of `queue`
    uint64_t hinted = 0;              // tasks with a hint
    std::vector<NodeId> peers;
    TimePoint peers_at{};
    bool want_peers = true;
    BlockNumber head;
    std::string last_error;
    RateMeter rate;

    BlobIndex end() const noexcept { return BlobIndex{first.value + known}; }
    // Hinted tasks may lie beyond the plan.
    BlobIndex cursor() const noexcept {
      return tasks.empty() ? planned_to : std::min(planned_to, BlobIndex{tasks.begin()->first});
    }
    // Tasks the plan made (below planned_to; hinted ones beyond it are not).
    size_t planned_tasks() const {
      return static_cast<size_t>(std::distance(tasks.begin(), tasks.lower_bound(planned_to.value)));
    }
    bool synced() const noexcept { return counted && tasks.empty() && planned_to >= end(); }
    // Synced, and no registry query under way that could add work.
    bool confirmed_synced() const noexcept { return synced() && !poll && !planning; }
  };

  struct Attempt {
    ShardId shard;
    uint64_t generation = 0;
    uint64_t index = 0;
    NodeId peer;
    FetchHandle handle = 0;
    TimePoint started{};
    bool cancel_sent = false;
  };

  struct PeerState {
    uint32_t in_flight = 0;
    double latency_ms = 0;  // 0: no sample yet
    TimePoint avoid_until{};
    TimePoint busy_until{};    // refused with busy: not asked again before this
    uint32_t unreachable = 0;  // failures to reach it in a row

    void pause_unreachable(TimePoint now) {
      busy_until = now + kUnreachablePause * (1u << std::min(unreachable, kMaxUnreachableShift));
      ++unreachable;
    }
  };

  struct Launch {
    uint64_t attempt;
    NodeId peer;
    FragmentRequest request;
  };
  struct Job {
    std::function<void()> run;
  };
  // A hint being checked against the store and the registry (or waiting to
  // be checked again), before it becomes a task.
  struct HintCheck {
    ShardId shard;
    uint64_t generation = 0;
    BlobHint hint;
    HintState state;
    bool checking = false;  // a check job is under way
    TimePoint retry_at{};
  };
  struct HintDone {
    ShardId shard;
    RegisteredBlob blob;
    HintOutcome outcome;
    Duration waited;
  };
  // Calls to make once the lock is released (RemoteFragments may take its
  // own locks and call back into us on another thread).
  struct Outbox {
    std::vector<Launch> launches;
    std::vector<FetchHandle> cancels;
    std::vector<std::pair<NodeId, PeerVerdict>> reports;
    std::vector<ShardId> want_peers;
    std::vector<HintDone> hints_done;
    bool empty() const noexcept {
      return launches.empty() && cancels.empty() && reports.empty() && want_peers.empty() &&
             hints_done.empty();
    }
  };

  Impl(Store& s, WorkerPool& p, std::shared_ptr<const erasure::Codec> c,
       std::shared_ptr<const ReplicaTransform> t, Registry& r, RemoteFragments& rf,
       const SyncSettings& st, Clock& cl, SyncObserver* ob)
      : store(s),
        pool(p),
        codec(std::move(c)),
        transform(std::move(t)),
        registry(r),
        remote(rf),
        settings(st),
        clock(cl),
        observer(ob) {
    settings.max_hint_fetches = std::max<uint32_t>(1, settings.max_hint_fetches);
    settings.max_hint_rounds = std::max<uint32_t>(1, settings.max_hint_rounds);
    settings.max_in_flight = std::max<uint32_t>(1, settings.max_in_flight);
    settings.max_in_flight_per_peer = std::max<uint32_t>(1, settings.max_in_flight_per_peer);
    settings.plan_batch = std::max<uint32_t>(1, settings.plan_batch);
    settings.cursor_every_blobs = std::max<uint32_t>(1, settings.cursor_every_blobs);
  }

  Store& store;
  WorkerPool& pool;
  std::shared_ptr<const erasure::Codec> codec;
  std::shared_ptr<const ReplicaTransform> transform;
  Registry& registry;
  RemoteFragments& remote;
  SyncSettings settings;
  Clock& clock;
  SyncObserver* observer;

  mutable std::mutex mu;
  mutable std::condition_variable changed;
  bool stopped = false;
  std::atomic<bool> stopping{false};  // = stopped, readable without the lock
  uint64_t outstanding = 0;           // pool jobs and fetches whose completion has not run
  uint64_t next_generation = 1;
  uint64_t next_attempt = 1;
  uint32_t active = 0;         // walk tasks fetching or verifying, over all shards
  uint32_t active_hinted = 0;  // hinted tasks fetching or verifying (their own slots)
  std::unordered_map<BlobId, HintCheck> checks;
  std::map<ShardId, Shard> shards;
  std::unordered_map<uint64_t, Attempt> attempts;
  std::unordered_map<NodeId, PeerState> peer_states;
  std::deque<Job> deferred;  // jobs the pool refused while full
  SyncStats stats;

  // ---- jobs ----

  // Queues `body` on the pool; it runs without the lock. Counted in
  // `outstanding` until it ran or was cancelled.
  void submit_locked(std::function<void()> body) {
    ++outstanding;
    Job job{std::move(body)};
    if (!deferred.empty() || !try_submit(job)) deferred.push_back(std::move(job));
  }

  bool try_submit(Job& job) {
    auto self = shared_from_this();
    auto body = job.run;
    auto s = pool.try_submit([self, body] { self->run_job(body); }, [self] { self->job_done(); });
    if (s) return true;
    if (s.error().code == Errc::busy) return false;
    // The pool is shutting down: the job will never run.
    --outstanding;
    changed.notify_all();
    return true;
  }

  void resubmit_deferred_locked() {
    while (!deferred.empty()) {
      if (!try_submit(deferred.front())) return;
      deferred.pop_front();
    }
  }

  void run_job(const std::function<void()>& body) {
    run_logged(kLog, body);
    job_done();
  }

  void job_done() {
    std::unique_lock lock(mu);
    --outstanding;
    changed.notify_all();
    if (!stopped) pump(lock);
  }

  // ---- shards ----

  Status add_shard(ShardId id) {
    std::unique_lock lock(mu);
    if (stopped) return make_error(Errc::cancelled, "sync engine stopped");
    if (shards.count(id) != 0) return {};
    Shard& s = shards[id];
    s.id = id;
    s.generation = next_generation++;
    s.first = store.params().first_index(id);
    s.planned_to = s.first;
    s.persisted = s.first;
    CAIRN_LOG(log::Level::info, kLog, "shard " << id.value << ": sync started");
    pump(lock);
    return {};
  }

  void remove_shard(ShardId id) {
    std::unique_lock lock(mu);
    auto it = shards.find(id);
    if (it == shards.end()) return;
    Outbox out;
    Shard& s = it->second;
    for (auto& [index, task] : s.tasks) {
      for (uint64_t a : task.attempts) {
        auto at = attempts.find(a);
        if (at != attempts.end() && at->second.handle != 0)
          out.cancels.push_back(at->second.handle);
      }
      release_slot_locked(task);
    }
    std::erase_if(checks, [&](const auto& c) { return c.second.shard == id; });
    if (s.cursor_loaded) persist_cursor_locked(s, /*force=*/true);
    shards.erase(it);
    changed.notify_all();
    flush(lock, out);
    pump(lock);
  }

  // Writes the shard's cursor when it moved far enough (or `force`).
  void persist_cursor_locked(Shard& s, bool force) {
    const BlobIndex cursor = s.cursor();
    if (cursor <= s.persisted) return;
    if (!force && cursor.value - s.persisted.value < settings.cursor_every_blobs && !s.synced())
      return;
    if (s.persisting) {
      s.persist_again = true;
      return;
    }
    s.persisting = true;
    const BlobIndex previous = s.persisted;
    s.persisted = cursor;
    auto self = shared_from_this();
    const ShardId id = s.id;
    const uint64_t gen = s.generation;
    submit_locked([self, id, gen, cursor, previous] {
      auto st = self->store.put_sync_cursor(id, SyncCursor{cursor, unix_ms()});
      std::unique_lock lock(self->mu);
      auto it = self->shards.find(id);
      if (!st) {
        CAIRN_LOG(log::Level::warn, kLog,
                  "shard " << id.value << ": writing the sync cursor: " << st.error().to_string());
      }
      if (it == self->shards.end() || it->second.generation != gen) return;
      Shard& sh = it->second;
      sh.persisting = false;
      if (!st) {
        sh.last_error = st.error().to_string();
        sh.persisted = previous;
      }
      if (sh.persist_again) {
        sh.persist_again = false;
        self->persist_cursor_locked(sh, true);
      }
    });
  }

  // ---- planning ----

  struct PlanResult {
    std::optional<BlobIndex> cursor;  // when loaded
    uint64_t known = 0;
    BlockNumber head;
    uint64_t held = 0;
    std::vector<RegisteredBlob> missing;
    bool recheck = false;  // a recheck of settled indexes: cursor and counts untouched
    uint64_t conflicts = 0;
    uint64_t already_held = 0;
    BlobIndex planned_to;
    std::optional<Error> error;
  };

  bool needs_plan(const Shard& s, TimePoint now) const {
    if (s.planning || now < s.plan_not_before) return false;
    if (!s.cursor_loaded || s.poll || !s.recheck.empty()) return true;
    return s.planned_to < s.end() && s.planned_tasks() < settings.plan_batch;
  }

  void start_plan_locked(Shard& s) {
    if (s.cursor_loaded && !s.recheck.empty()) {
      start_recheck_locked(s);
      return;
    }
    s.planning = true;
    s.poll = false;
    auto self = shared_from_this();
    const ShardId id = s.id;
    const uint64_t gen = s.generation;
    const bool load_cursor = !s.cursor_loaded;
    const BlobIndex from = s.planned_to;
    const BlobIndex first = s.first;
    const size_t limit =
        settings.plan_batch - std::min<size_t>(s.planned_tasks(), settings.plan_batch - 1);
    submit_locked([self, id, gen, load_cursor, from, first, limit] {
      if (self->stopping.load()) return;
      PlanResult r = self->plan(id, first, load_cursor, from, limit);
      std::unique_lock lock(self->mu);
      self->on_planned(lock, id, gen, std::move(r));
    });
  }

  // Looks at settled indexes again (refetch()). The persisted cursor is
  // moved below them first, so a crash before they are fetched again
  // cannot leave them behind the cursor.
  void start_recheck_locked(Shard& s) {
    s.planning = true;
    std::vector<uint64_t> indexes = std::move(s.recheck);
    s.recheck.clear();
    const uint64_t lowest = *std::min_element(indexes.begin(), indexes.end());
    const bool lower_cursor = s.persisted.value > lowest;
    if (lower_cursor) s.persisted = BlobIndex{lowest};
    auto self = shared_from_this();
    const ShardId id = s.id;
    const uint64_t gen = s.generation;
    submit_locked([self, id, gen, indexes, lowest, lower_cursor] {
      if (self->stopping.load()) return;
      PlanResult r;
      r.recheck = true;
      const auto run = [&]() -> Status {
        if (lower_cursor)
          CAIRN_TRY_STATUS(
              self->store.put_sync_cursor(id, SyncCursor{BlobIndex{lowest}, unix_ms()}));
        for (uint64_t index : indexes) {
          auto entries = self->registry.blobs(id, BlobIndex{index}, 1);
          if (!entries) return tl::unexpected(entries.error());
          if (entries->empty() || entries->front().index != BlobIndex{index})
            continue;  // not registered
          CAIRN_TRY_STATUS(self->classify(entries->front(), r));
        }
        return {};
      };
      if (auto st = run(); !st)
        r.error = with_context(st.error(), "shard " + std::to_string(id.value) + ": recheck");
      std::unique_lock lock(self->mu);
      self->on_planned(lock, id, gen, std::move(r));
    });
  }

  // Sorts one registered blob into held, conflicting or missing (deleting
  // an unreadable record so the blob is fetched again).
  Status classify(const RegisteredBlob& e, PlanResult& r) {
    auto held = store.get_blob_at(e.index);
    if (!held && held.error().code == Errc::corruption) {
      CAIRN_LOG(log::Level::warn, kLog,
                "index " << e.index.value << ": " << held.error().to_string()
                         << "; removing it to fetch it again");
      auto del = store.delete_blob(e.index);
      if (!del) return tl::unexpected(with_context(del.error(), "removing a corrupt blob record"));
      held = tl::unexpected(Error{Errc::not_found, "removed"});
    }
    if (held) {
      if (held->id == e.id) {
        ++r.already_held;
      } else {
        ++r.conflicts;
        CAIRN_LOG(log::Level::error, kLog,
                  "index " << e.index.value << ": the store holds blob " << held->id.hex()
                           << " but the registry lists " << e.id.hex() << "; left as it is");
      }
      return {};
    }
    if (held.error().code != Errc::not_found) {
      return tl::unexpected(
          with_context(held.error(), "checking index " + std::to_string(e.index.value)));
    }
    r.missing.push_back(e);
    return {};
  }

  // Runs on a worker: reads the registry and the store.
  PlanResult plan(ShardId id, BlobIndex first, bool load_cursor, BlobIndex from, size_t limit) {
    PlanResult r;
    const auto fail = [&](const Error& e, const std::string& what) {
      r.error = with_context(e, "shard " + std::to_string(id.value) + ": " + what);
      return std::move(r);
    };
    if (load_cursor) {
      auto c = store.get_sync_cursor(id);
      if (c) {
        from = std::max(c->next, first);
      } else if (c.error().code == Errc::not_found) {
        from = first;
      } else {
        // A damaged cursor only costs re-checking the shard against the store.
        CAIRN_LOG(log::Level::warn, kLog,
                  "shard " << id.value << ": sync cursor unreadable (" << c.error().to_string()
                           << "); starting over");
        from = first;
      }
      r.cursor = from;
    }
    auto count = registry.blob_count(id);
    if (!count) return fail(count.error(), "registry blob count");
    auto head = registry.head();
    if (!head) return fail(head.error(), "registry head");
    r.known = *count;
    r.head = *head;
    const BlobIndex end{first.value + r.known};
    if (from > end) {
      // The registry lists fewer blobs than the cursor covers (a replaced
      // dev chain): resume from the registry's end.
      CAIRN_LOG(log::Level::warn, kLog,
                "shard " << id.value << ": cursor " << from.value << " beyond the registry's "
                         << r.known << " blobs");
      from = end;
      if (r.cursor) r.cursor = end;
    }
    r.planned_to = from;

    auto listed = store.list_shard(id);
    if (!listed) return fail(listed.error(), "listing held blobs");
    r.held = static_cast<uint64_t>(
        std::count_if(listed->begin(), listed->end(), [&](BlobIndex i) { return i < end; }));
    if (from >= end) return r;

    auto entries = registry.blobs(id, from, std::min<uint64_t>(limit, end.value - from.value));
    if (!entries) return fail(entries.error(), "registry blobs from " + std::to_string(from.value));
    for (const RegisteredBlob& e : *entries) {
      if (e.index != r.planned_to) {
        return fail(Error{Errc::internal, "registry returned index " +
                                              std::to_string(e.index.value) + " where " +
                                              std::to_string(r.planned_to.value) + " was expected"},
                    "planning");
      }
      if (auto st = classify(e, r); !st) return fail(st.error(), "planning");
      r.planned_to = BlobIndex{e.index.value + 1};
    }
    return r;
  }

  void on_planned(std::unique_lock<std::mutex>& lock, ShardId id, uint64_t gen, PlanResult r) {
    auto it = shards.find(id);
    if (stopped || it == shards.end() || it->second.generation != gen) return;
    Shard& s = it->second;
    s.planning = false;
    const TimePoint now = clock.now();
    if (r.cursor) {
      s.cursor_loaded = true;
      s.planned_to = *r.cursor;
      s.persisted = *r.cursor;
    }
    if (r.recheck) {
      if (r.error) {
        s.last_error = r.error->to_string();
        CAIRN_LOG(log::Level::warn, kLog, s.last_error);
      }
      stats.already_held += r.already_held;
      s.conflicts += r.conflicts;
      const size_t added = add_tasks_locked(s, std::move(r.missing), /*front=*/true);
      s.held -= std::min<uint64_t>(s.held, added);  // they were counted as held
      changed.notify_all();
      pump(lock);
      return;
    }
    if (r.error) {
      s.last_error = r.error->to_string();
      const uint32_t shift = std::min(s.failed_plans++, kMaxBackoffShift);
      s.plan_not_before = now + milliseconds(uint64_t{settings.retry_backoff_ms} << shift);
      CAIRN_LOG(log::Level::warn, kLog, s.last_error);
      if (r.planned_to > s.planned_to) s.planned_to = r.planned_to;
    } else {
      s.failed_plans = 0;
      s.counted = true;
      s.planned_to = std::max(s.planned_to, r.planned_to);
    }
    if (!r.error || r.known > 0) {
      s.known = std::max(s.known, r.known);
      s.head = r.head;
      s.held = r.held;
    }
    s.conflicts += r.conflicts;
    stats.already_held += r.already_held;
    add_tasks_locked(s, std::move(r.missing), /*front=*/false);
    persist_cursor_locked(s, false);
    if (s.synced() && !s.reported_synced) {
      CAIRN_LOG(log::Level::info, kLog,
                "shard " << id.value << ": synced, " << s.held << " of " << s.known
                         << " blobs held, " << s.fetched_blobs << " fetched");
    }
    s.reported_synced = s.synced();
    changed.notify_all();
    pump(lock);
  }

  // Queues a fetch for every blob not already a task (front: before the
  // blobs already waiting). Returns how many were added.
  size_t add_tasks_locked(Shard& s, std::vector<RegisteredBlob> blobs, bool front) {
    size_t added = 0;
    for (RegisteredBlob& b : blobs) {
      const uint64_t index = b.index.value;
      if (s.tasks.count(index) != 0) continue;
      Task task;
      task.blob = std::move(b);
      s.tasks.emplace(index, std::move(task));
      if (front) {
        s.queue.push_front(index);
      } else {
        s.queue.push_back(index);
      }
      ++added;
    }
    return added;
  }

  // ---- fetching ----

  // The best peer for `task` now, if any: fewest expected milliseconds until
  // it answers (its latency times its queue, counting the new request),
  // never one that failed this blob, is avoided or refusing. When the best
  // one is full, none is returned: waiting for a fast peer's slot beats
  // handing the blob to a slow peer. `any_untried` tells whether some peer
  // could still serve the blob later in this round.
  // A hinted task asks its hint's peers first, in their order, before the
  // shard's (the announcer may not serve the shard; the hint slots bound
  // what it is asked at once).
  std::optional<NodeId> pick_peer(const Shard& s, const Task& task, TimePoint now,
                                  const NodeId* exclude, bool& any_untried) const {
    any_untried = false;
    if (task.hint) {
      for (const NodeId& p : task.preferred) {
        if (exclude != nullptr && p == *exclude) continue;
        if (std::find(task.failed_peers.begin(), task.failed_peers.end(), p) !=
            task.failed_peers.end())
          continue;
        auto found = peer_states.find(p);
        if (found != peer_states.end() && found->second.avoid_until > now) continue;
        any_untried = true;
        if (found != peer_states.end() && found->second.busy_until > now) continue;
        return p;
      }
    }
    std::optional<NodeId> best;
    double best_cost = 0;
    bool best_full = false;
    double fastest_known = 0;
    for (const NodeId& p : s.peers) {
      auto ps = peer_states.find(p);
      if (ps != peer_states.end() && ps->second.latency_ms > 0 &&
          (fastest_known == 0 || ps->second.latency_ms < fastest_known)) {
        fastest_known = ps->second.latency_ms;
      }
    }
    for (const NodeId& p : s.peers) {
      if (exclude != nullptr && p == *exclude) continue;
      if (std::find(task.failed_peers.begin(), task.failed_peers.end(), p) !=
          task.failed_peers.end())
        continue;
      auto found = peer_states.find(p);
      const PeerState none;
      const PeerState& ps = found == peer_states.end() ? none : found->second;
      if (ps.avoid_until > now) continue;
      any_untried = true;
      if (ps.busy_until > now) continue;
      // An unmeasured peer is assumed as fast as the fastest known one, so
      // every peer gets tried.
      const double latency =
          ps.latency_ms > 0 ? ps.latency_ms : (fastest_known > 0 ? fastest_known : 1.0);
      const double cost = latency * (ps.in_flight + 1);
      if (!best || cost < best_cost) {
        best = p;
        best_cost = cost;
        best_full = ps.in_flight >= settings.max_in_flight_per_peer;
      }
    }
    if (best_full) return std::nullopt;
    return best;
  }

  void start_attempt_locked(Shard& s, Task& task, const NodeId& peer, TimePoint now, Outbox& out) {
    const uint64_t id = next_attempt++;
    attempts.emplace(id, Attempt{s.id, s.generation, task.blob.index.value, peer, 0, now, false});
    task.attempts.push_back(id);
    PeerState& ps = peer_states[peer];
    ++ps.in_flight;
    ++outstanding;
    ++stats.fetches_started;
    FragmentRequest req;
    req.id = task.blob.id;
    req.index = task.blob.index;
    const uint32_t k = store.params().data_fragments;
    req.fragments.reserve(k);
    for (uint32_t f = 0; f < k; ++f)
      req.fragments.push_back(FragmentIndex{static_cast<uint8_t>(f)});
    req.at_least = k;
    out.launches.push_back(Launch{id, peer, std::move(req)});
  }

  // Assigns queued blobs to peers while slots are free: hinted ones first,
  // on their own slots.
  void schedule_locked(TimePoint now, Outbox& out) {
    for (auto& [id, s] : shards) {
      if (needs_plan(s, now)) start_plan_locked(s);
      if ((!s.queue.empty() || !s.hint_queue.empty()) &&
          (s.want_peers || now - s.peers_at >= kPeerRefresh)) {
        out.want_peers.push_back(id);
      }
      // A hinted blob may have peers of its own; it waits only for the
      // first peer list.
      while (!s.hint_queue.empty() && active_hinted < settings.max_hint_fetches &&
             (!s.peers.empty() || !s.want_peers)) {
        if (!schedule_front_locked(s, s.hint_queue, now, out)) break;
      }
      if (s.peers.empty()) continue;  // wait for peers rather than fail every blob
      while (!s.queue.empty() && active < settings.max_in_flight) {
        if (!schedule_front_locked(s, s.queue, now, out)) break;
      }
    }
  }

  // Starts the task at the front of `queue` with the best peer, or backs it
  // off when nobody is left to ask in this round. false: every usable peer
  // is busy, wait for a completion.
  bool schedule_front_locked(Shard& s, std::deque<uint64_t>& queue, TimePoint now, Outbox& out) {
    const uint64_t index = queue.front();
    auto t = s.tasks.find(index);
    if (t == s.tasks.end() || t->second.stage != Stage::queued) {
      queue.pop_front();
      return true;
    }
    Task& task = t->second;
    bool any_untried = false;
    auto peer = pick_peer(s, task, now, nullptr, any_untried);
    if (!peer) {
      if (any_untried) return false;
      queue.pop_front();
      back_off_locked(s, task, now, out);
      return true;
    }
    queue.pop_front();
    task.stage = Stage::fetching;
    task.hedged = false;
    task.hint_slot = task.hint.has_value();
    ++(task.hint_slot ? active_hinted : active);
    start_attempt_locked(s, task, *peer, now, out);
    return true;
  }

  // Nobody left to ask in this round (or the store refused the blob): wait,
  // then start over. A hint waits hint_retry_ms, until it is given up.
  void back_off_locked(Shard& s, Task& task, TimePoint now, Outbox& out) {
    release_slot_locked(task);
    task.stage = Stage::waiting;
    task.failed_peers.clear();
    s.want_peers = true;
    if (task.hint) {
      if (++task.hint->rounds < settings.max_hint_rounds) {
        task.retry_at = now + milliseconds(settings.hint_retry_ms);
        return;
      }
      CAIRN_LOG(log::Level::warn, kLog,
                "giving up the hint for index " << task.blob.index.value << " after "
                                                << task.hint->rounds
                                                << " rounds; the walk fetches it later");
      finish_hint_locked(s, task, HintOutcome::given_up, now, out);
    }
    const uint32_t shift = std::min(task.failed_rounds++, kMaxBackoffShift);
    task.retry_at = now + milliseconds(uint64_t{settings.retry_backoff_ms} << shift);
  }

  // Gives up the slot of a task that was fetching or verifying.
  void release_slot_locked(Task& task) {
    if (task.stage != Stage::fetching && task.stage != Stage::verifying) return;
    --(task.hint_slot ? active_hinted : active);
    task.hint_slot = false;
  }

  // Ends the task's hint: counted, and reported once the lock is released.
  void finish_hint_locked(Shard& s, Task& task, HintOutcome outcome, TimePoint now, Outbox& out) {
    if (!task.hint) return;
    count_hint_locked(outcome);
    out.hints_done.push_back(HintDone{s.id, task.blob, outcome, now - task.hint->started});
    task.hint.reset();
    --s.hinted;
  }

  void count_hint_locked(HintOutcome outcome) {
    switch (outcome) {
      case HintOutcome::stored:
        ++stats.hints_stored;
        break;
      case HintOutcome::already_held:
        ++stats.hints_already_held;
        break;
      case HintOutcome::rejected:
        ++stats.hints_rejected;
        break;
      case HintOutcome::given_up:
        ++stats.hints_dropped;
        break;
    }
  }

  // Schedules, then makes the calls the schedule produced without the lock.
  void pump(std::unique_lock<std::mutex>& lock) {
    for (int round = 0; round < 4 && !stopped; ++round) {
      Outbox out;
      resubmit_deferred_locked();
      schedule_locked(clock.now(), out);
      if (out.empty()) return;
      flush(lock, out);
    }
  }

  // Performs the outbox's calls unlocked; re-locks and records their results.
  void flush(std::unique_lock<std::mutex>& lock, Outbox& out) {
    if (out.empty()) return;
    lock.unlock();
    std::vector<std::pair<ShardId, std::vector<NodeId>>> peer_lists;
    for (ShardId id : out.want_peers) peer_lists.emplace_back(id, remote.peers(id));
    for (FetchHandle h : out.cancels) remote.cancel(h);
    for (auto& [peer, verdict] : out.reports) remote.report(peer, verdict);
    if (observer != nullptr) {
      for (const HintDone& d : out.hints_done) {
        observer->hint_done(d.shard, d.blob, d.outcome, d.waited);
      }
    }
    std::vector<std::pair<uint64_t, Result<FetchHandle>>> launched;
    launched.reserve(out.launches.size());
    auto self = shared_from_this();
    for (Launch& l : out.launches) {
      const uint64_t attempt = l.attempt;
      launched.emplace_back(
          attempt, remote.fetch(l.peer, l.request, [self, attempt](Result<FragmentReply> r) {
            self->on_fetched(attempt, std::move(r));
          }));
    }
    lock.lock();
    const TimePoint now = clock.now();
    for (auto& [id, peers] : peer_lists) {
      auto it = shards.find(id);
      if (it == shards.end()) continue;
      it->second.peers = std::move(peers);
      it->second.peers_at = now;
      it->second.want_peers = false;
    }
    for (auto& [attempt, handle] : launched) {
      auto at = attempts.find(attempt);
      if (handle) {
        if (at != attempts.end()) at->second.handle = *handle;
        continue;
      }
      // Refused at once: no callback will come.
      --outstanding;
      if (at == attempts.end()) continue;
      Attempt a = at->second;
      attempts.erase(at);
      PeerState& ps = peer_states[a.peer];
      if (ps.in_flight > 0) --ps.in_flight;
      const Errc code = handle.error().code;
      if (code == Errc::busy) ps.busy_until = now + kBusyPause;
      if (code == Errc::not_found || code == Errc::io_error) ps.pause_unreachable(now);
      Task* task = find_task(a);
      if (task == nullptr) continue;
      std::erase(task->attempts, attempt);
      if (!task->attempts.empty()) task->hedged = false;  // the hedge never left: try another
      if (code != Errc::busy) task->failed_peers.push_back(a.peer);
      if (code == Errc::not_found) shards.at(a.shard).want_peers = true;
      if (task->attempts.empty() && task->stage == Stage::fetching)
        requeue_locked(a.shard, *task, true);
    }
    changed.notify_all();
  }

  Task* find_task(const Attempt& a) {
    auto s = shards.find(a.shard);
    if (s == shards.end() || s->second.generation != a.generation) return nullptr;
    auto t = s->second.tasks.find(a.index);
    return t == s->second.tasks.end() ? nullptr : &t->second;
  }

  // Puts a task back in line (front: it was already due).
  void requeue_locked(ShardId shard, Task& task, bool front) {
    release_slot_locked(task);
    task.stage = Stage::queued;
    Shard& s = shards.at(shard);
    std::deque<uint64_t>& queue = task.hint ? s.hint_queue : s.queue;
    if (front) {
      queue.push_front(task.blob.index.value);
    } else {
      queue.push_back(task.blob.index.value);
    }
  }

  void on_fetched(uint64_t attempt, Result<FragmentReply> result) {
    std::unique_lock lock(mu);
    --outstanding;
    changed.notify_all();
    auto at = attempts.find(attempt);
    if (at == attempts.end()) return;
    const Attempt a = at->second;
    attempts.erase(at);
    const TimePoint now = clock.now();
    PeerState& ps = peer_states[a.peer];
    if (ps.in_flight > 0) --ps.in_flight;
    ps.busy_until = TimePoint{};  // it answered: it has room again
    if (result || result.error().code != Errc::io_error) ps.unreachable = 0;
    if (stopped) return;
    Outbox out;
    Task* task = find_task(a);
    if (task != nullptr) std::erase(task->attempts, attempt);

    if (result) {
      stats.wire_bytes += result->data.size();
      if (task != nullptr && task->hint) stats.hint_wire_bytes += result->data.size();
      const double ms = to_ms(now - a.started);
      ps.latency_ms =
          ps.latency_ms == 0 ? ms : ps.latency_ms + kLatencyWeight * (ms - ps.latency_ms);
      if (task != nullptr && task->stage == Stage::fetching) {
        task->stage = Stage::verifying;
        // The other attempt (a hedge, or the slow original) lost.
        for (uint64_t other : task->attempts) {
          auto o = attempts.find(other);
          if (o == attempts.end()) continue;
          if (o->second.handle != 0) out.cancels.push_back(o->second.handle);
          out.reports.emplace_back(o->second.peer, PeerVerdict::slow);
          PeerState& slow = peer_states[o->second.peer];
          slow.latency_ms = std::max(slow.latency_ms, to_ms(now - o->second.started));
        }
        start_verify_locked(a, task->blob, std::move(*result));
      }
    } else {
      const Error& e = result.error();
      if (e.code != Errc::cancelled) {
        ++stats.fetches_failed;
        const PeerVerdict v = verdict_of(e.code);
        out.reports.emplace_back(a.peer, v);
        if (v == PeerVerdict::slow) {
          ps.latency_ms = std::max(ps.latency_ms, to_ms(now - a.started));
        } else if (v == PeerVerdict::invalid_data) {
          avoid_locked(a.peer, now);
        } else if (e.code == Errc::busy) {
          ps.busy_until = now + kBusyPause;
        } else if (e.code == Errc::io_error) {
          ps.pause_unreachable(now);
        }
        CAIRN_LOG(log::Level::debug, kLog,
                  "index " << a.index << " from peer " << a.peer.hex().substr(0, 16) << ": "
                           << e.to_string());
        if (task != nullptr) {
          if (task->hint) ++stats.hint_fetches_failed;
          ++shards.at(a.shard).fetches_failed;
          // A busy peer may serve this blob later; any other failure rules
          // the peer out for this blob in this round.
          if (e.code != Errc::busy) task->failed_peers.push_back(a.peer);
          shards.at(a.shard).last_error = "index " + std::to_string(a.index) + " from peer " +
                                          a.peer.hex().substr(0, 16) + ": " + e.to_string();
        }
      }
      if (task != nullptr && task->stage == Stage::fetching && task->attempts.empty()) {
        requeue_locked(a.shard, *task, true);
      }
    }
    flush(lock, out);
    pump(lock);
  }

  void avoid_locked(const NodeId& peer, TimePoint now) {
    peer_states[peer].avoid_until = now + milliseconds(settings.bad_peer_avoid_ms);
  }

  void start_verify_locked(const Attempt& a, const RegisteredBlob& blob, FragmentReply reply) {
    auto self = shared_from_this();
    auto shared_reply = std::make_shared<FragmentReply>(std::move(reply));
    submit_locked([self, a, blob, shared_reply] {
      if (self->stopping.load()) return;
      auto verified = verify_fetched(*self->codec, blob, std::move(*shared_reply));
      Result<IngestResult> stored =
          verified ? ingest_committed(self->store, blob.index, std::move(*verified),
                                      self->transform.get())
                   : Result<IngestResult>(tl::unexpected(verified.error()));
      std::unique_lock lock(self->mu);
      self->on_verified(lock, a, blob, verified.has_value(), std::move(stored));
    });
  }

  void on_verified(std::unique_lock<std::mutex>& lock, const Attempt& a, const RegisteredBlob& blob,
                   bool verified, Result<IngestResult> stored) {
    if (stopped) return;
    const TimePoint now = clock.now();
    Outbox out;
    Task* task = find_task(a);
    Shard* s = task != nullptr ? &shards.at(a.shard) : nullptr;
    if (!verified && stored.error().code == Errc::too_many_losses) {
      // The peer answered with fewer fragments than a blob needs: it lacks
      // them, it did not lie. Ask someone else.
      ++stats.fetches_failed;
      out.reports.emplace_back(a.peer, PeerVerdict::unavailable);
      if (task != nullptr) {
        if (task->hint) ++stats.hint_fetches_failed;
        s->last_error = stored.error().to_string();
        task->failed_peers.push_back(a.peer);
        requeue_locked(a.shard, *task, true);
      }
    } else if (!verified) {
      ++stats.invalid_replies;
      if (task != nullptr && task->hint) ++stats.hint_invalid_replies;
      avoid_locked(a.peer, now);
      out.reports.emplace_back(a.peer, PeerVerdict::invalid_data);
      CAIRN_LOG(log::Level::warn, kLog,
                "peer " << a.peer.hex().substr(0, 16) << " sent bad data for index " << a.index
                        << ": " << stored.error().to_string() << "; avoiding it");
      if (task != nullptr) {
        s->last_error = stored.error().to_string();
        task->failed_peers.push_back(a.peer);
        requeue_locked(a.shard, *task, true);
      }
    } else if (!stored) {
      const Error& e = stored.error();
      out.reports.emplace_back(a.peer, PeerVerdict::good);
      if (e.code == Errc::conflict) {
        CAIRN_LOG(log::Level::error, kLog, "index " << a.index << ": " << e.to_string());
        if (task != nullptr) {
          ++s->conflicts;
          finish_hint_locked(*s, *task, HintOutcome::rejected, now, out);
          settle_locked(*s, a.index);
        }
      } else {
        ++stats.store_errors;
        CAIRN_LOG(log::Level::warn, kLog, "index " << a.index << ": storing: " << e.to_string());
        if (task != nullptr) {
          if (task->hint) ++stats.hint_store_errors;
          s->last_error = e.to_string();
          back_off_locked(*s, *task, now, out);
        }
      }
    } else {
      out.reports.emplace_back(a.peer, PeerVerdict::good);
      if (stored->outcome == PutOutcome::stored) {
        ++stats.blobs_fetched;
        stats.bytes_fetched += blob.length;
      } else {
        ++stats.already_held;
      }
      if (task != nullptr) {
        if (stored->outcome == PutOutcome::stored) {
          ++s->fetched_blobs;
          s->fetched_bytes += blob.length;
          s->rate.add(now, blob.length);
        }
        // A hinted blob beyond the registry's count is counted by the plan
        // that reaches it.
        if (blob.index < s->end()) s->held = std::min(s->held + 1, s->known);
        finish_hint_locked(
            *s, *task,
            stored->outcome == PutOutcome::stored ? HintOutcome::stored : HintOutcome::already_held,
            now, out);
        settle_locked(*s, a.index);
      }
    }
    changed.notify_all();
    flush(lock, out);
    pump(lock);
  }

  void settle_locked(Shard& s, uint64_t index) {
    auto t = s.tasks.find(index);
    if (t == s.tasks.end()) return;
    release_slot_locked(t->second);
    if (t->second.hint) --s.hinted;
    s.tasks.erase(t);
    persist_cursor_locked(s, false);
  }

  // ---- housekeeping ----

  void tick() {
    std::unique_lock lock(mu);
    if (stopped) return;
    const TimePoint now = clock.now();
    Outbox out;
    for (auto& [id, s] : shards) {
      if (s.synced() || (s.cursor_loaded && s.planned_to >= s.end() && !s.planning)) s.poll = true;
      if (!s.tasks.empty() && now - s.peers_at >= kPeerRefresh) out.want_peers.push_back(id);
      for (auto& [index, task] : s.tasks) {
        if (task.stage == Stage::waiting && task.retry_at <= now) {
          task.stage = Stage::queued;
          (task.hint ? s.hint_queue : s.queue).push_back(index);
        } else if (task.stage == Stage::fetching && settings.hedge_after_ms > 0 && !task.hedged &&
                   task.attempts.size() == 1) {
          auto at = attempts.find(task.attempts.front());
          if (at == attempts.end() ||
              now - at->second.started < milliseconds(settings.hedge_after_ms))
            continue;
          bool any_untried = false;
          auto peer = pick_peer(s, task, now, &at->second.peer, any_untried);
          if (!peer) continue;
          task.hedged = true;
          ++stats.fetches_hedged;
          start_attempt_locked(s, task, *peer, now, out);
        }
      }
    }
    for (auto& [id, c] : checks) {
      if (!c.checking && c.retry_at <= now) start_check_locked(id, c);
    }
    flush(lock, out);
    pump(lock);
  }

  // ---- hints ----

  uint64_t hints_held_locked() const {
    uint64_t n = checks.size();
    for (const auto& [id, s] : shards) n += s.hinted;
    return n;
  }

  Status hint(ShardId shard, BlobHint h) {
    std::unique_lock lock(mu);
    if (stopped) return make_error(Errc::cancelled, "sync engine stopped");
    if (store.params().shard_of(h.index) != shard) {
      return make_error(Errc::invalid_argument, "hint for index " + std::to_string(h.index.value) +
                                                    ": not in shard " +
                                                    std::to_string(shard.value));
    }
    auto it = shards.find(shard);
    if (it == shards.end()) {
      return make_error(Errc::not_found,
                        "hint: shard " + std::to_string(shard.value) + " is not synced here");
    }
    Shard& s = it->second;
    if (auto c = checks.find(h.id); c != checks.end()) {
      merge_peers(c->second.hint.peers, h.peers);
      return {};
    }
    auto t = s.tasks.find(h.index.value);
    const bool planned = t != s.tasks.end() && t->second.blob.id == h.id;
    if (planned && t->second.hint) {
      merge_peers(t->second.preferred, h.peers);
      return {};
    }
    if (hints_held_locked() >= settings.max_hints) {
      ++stats.hints_dropped;
      return make_error(Errc::busy, "hint for blob " + h.id.hex() + ": " +
                                        std::to_string(settings.max_hints) + " hints held");
    }
    ++stats.hints;
    const TimePoint now = clock.now();
    if (planned) {
      // Queued (or backing off) for the walk already: the registry listed
      // it, so no check is needed; it moves ahead.
      merge_peers(t->second.preferred, h.peers);
      attach_hint_locked(s, t->second, HintState{now, 0});
      pump(lock);
      return {};
    }
    const BlobId id = h.id;
    HintCheck& c = checks[id];
    c.shard = shard;
    c.generation = s.generation;
    c.hint = std::move(h);
    c.state = HintState{now, 0};
    start_check_locked(id, c);
    pump(lock);
    return {};
  }

  // Makes `task` hinted: on the hint slots, ahead of the walk.
  void attach_hint_locked(Shard& s, Task& task, HintState state) {
    task.hint = state;
    ++s.hinted;
    if (task.stage == Stage::waiting) {
      task.stage = Stage::queued;
      task.failed_peers.clear();
    }
    if (task.stage == Stage::queued) s.hint_queue.push_front(task.blob.index.value);
  }

  struct CheckResult {
    bool held = false;
    Result<RegisteredBlob> registered = make_error(Errc::not_found, "not looked up");
  };

  // Looks the hinted blob up in the store, then in the registry, on the pool.
  void start_check_locked(const BlobId& id, HintCheck& c) {
    c.checking = true;
    auto self = shared_from_this();
    const BlobIndex index = c.hint.index;
    submit_locked([self, id, index] {
      if (self->stopping.load()) return;
      CheckResult r;
      auto rec = self->store.get_blob(id);
      r.held = rec && rec->index == index;
      if (!r.held) r.registered = self->registry.lookup(id);
      std::unique_lock lock(self->mu);
      self->on_checked(lock, id, std::move(r));
    });
  }

  void on_checked(std::unique_lock<std::mutex>& lock, const BlobId& id, CheckResult r) {
    auto c = checks.find(id);
    if (stopped || c == checks.end()) return;
    auto it = shards.find(c->second.shard);
    if (it == shards.end() || it->second.generation != c->second.generation) {
      checks.erase(c);
      return;
    }
    Shard& s = it->second;
    HintCheck& check = c->second;
    check.checking = false;
    const TimePoint now = clock.now();
    Outbox out;
    const RegisteredBlob claimed{check.hint.index, id, check.hint.length};
    const auto done = [&](HintOutcome outcome, const RegisteredBlob& blob) {
      count_hint_locked(outcome);
      out.hints_done.push_back(HintDone{s.id, blob, outcome, now - check.state.started});
      checks.erase(c);
    };
    if (r.held) {
      done(HintOutcome::already_held, claimed);
    } else if (!r.registered) {
      // Not listed yet (the registry may lag the announcement), or the
      // lookup failed: look again later.
      s.last_error =
          "hint for blob " + id.hex().substr(0, 16) + ": " + r.registered.error().to_string();
      if (++check.state.rounds >= settings.max_hint_rounds) {
        CAIRN_LOG(log::Level::info, kLog, s.last_error << "; hint given up");
        done(HintOutcome::given_up, claimed);
      } else {
        check.retry_at = now + milliseconds(settings.hint_retry_ms);
      }
    } else if (r.registered->index != check.hint.index ||
               r.registered->length != check.hint.length) {
      CAIRN_LOG(log::Level::info, kLog,
                "hint for blob " << id.hex() << " at index " << check.hint.index.value
                                 << " disagrees with the registry (index "
                                 << r.registered->index.value << ", length " << r.registered->length
                                 << ")");
      done(HintOutcome::rejected, claimed);
    } else {
      const HintState state = check.state;
      std::vector<NodeId> peers = std::move(check.hint.peers);
      checks.erase(c);
      auto t = s.tasks.find(claimed.index.value);
      if (t == s.tasks.end()) {
        Task task;
        task.blob = *r.registered;
        t = s.tasks.emplace(claimed.index.value, std::move(task)).first;
        t->second.stage = Stage::waiting;  // attach_hint_locked queues it
      }
      Task& task = t->second;
      merge_peers(task.preferred, peers);
      if (!task.hint) attach_hint_locked(s, task, state);
    }
    changed.notify_all();
    flush(lock, out);
    pump(lock);
  }

  Status refetch(BlobIndex index) {
    std::unique_lock lock(mu);
    if (stopped) return make_error(Errc::cancelled, "sync engine stopped");
    const ShardId shard = store.params().shard_of(index);
    auto it = shards.find(shard);
    if (it == shards.end()) {
      return make_error(Errc::not_found, "index " + std::to_string(index.value) + ": shard " +
                                             std::to_string(shard.value) + " is not synced here");
    }
    Shard& s = it->second;
    // At or above the plan the blob is looked at anyway; in `tasks` it is under way.
    if (index >= s.planned_to || s.tasks.count(index.value) != 0) return {};
    if (std::find(s.recheck.begin(), s.recheck.end(), index.value) == s.recheck.end()) {
      s.recheck.push_back(index.value);
    }
    pump(lock);
    return {};
  }

  void registry_changed() {
    std::unique_lock lock(mu);
    if (stopped) return;
    for (auto& [id, s] : shards) s.poll = true;
    pump(lock);
  }

  void stop() {
    std::unique_lock lock(mu);
    if (!stopped) {
      stopped = true;
      Outbox out;
      stopping.store(true);
      for (auto& [id, a] : attempts) {
        if (a.handle != 0) {
          out.cancels.push_back(a.handle);
          a.cancel_sent = true;
        }
      }
      outstanding -= deferred.size();
      deferred.clear();
      flush(lock, out);
    }
    if (pool.on_worker_thread()) {
      CAIRN_LOG(log::Level::error, kLog, "SyncEngine::stop called on a pool worker; not waiting");
      return;
    }
    // Handles still being recorded by a concurrent flush() are cancelled as they
    // complete: every fetch has a deadline, so the wait ends.
    changed.wait(lock, [&] {
      for (auto& [id, a] : attempts) {
        if (a.handle != 0 && !a.cancel_sent) {
          // Cancel what appeared after the first sweep (launched concurrently).
          a.cancel_sent = true;
          const FetchHandle h = a.handle;
          lock.unlock();
          remote.cancel(h);
          lock.lock();
          return false;
        }
      }
      return outstanding == 0;
    });
    std::vector<std::pair<ShardId, BlobIndex>> cursors;
    for (auto& [id, s] : shards) {
      if (s.cursor_loaded && s.cursor() > s.persisted) cursors.emplace_back(id, s.cursor());
      s.persisted = s.cursor();
    }
    lock.unlock();
    for (auto& [id, cursor] : cursors) {
      auto st = store.put_sync_cursor(id, SyncCursor{cursor, unix_ms()});
      if (!st)
        CAIRN_LOG(log::Level::warn, kLog, "shard " << id.value << ": " << st.error().to_string());
    }
  }

  static SyncState state_of(const Shard& s) {
    if (!s.cursor_loaded) return SyncState::starting;
    if (s.synced()) return SyncState::synced;
    if (s.planning) return SyncState::fetching;
    for (const auto& [index, task] : s.tasks) {
      if (task.stage == Stage::fetching || task.stage == Stage::verifying)
        return SyncState::fetching;
    }
    return !s.queue.empty() && !s.peers.empty() ? SyncState::fetching : SyncState::waiting;
  }

  std::vector<SyncProgress> progress() const {
    std::lock_guard lock(mu);
    const TimePoint now = clock.now();
    std::vector<SyncProgress> out;
    for (const auto& [id, s] : shards) {
      SyncProgress p;
      p.shard = id;
      p.state = stopped ? SyncState::stopped : state_of(s);
      p.known = s.known;
      p.held = std::min(s.held, s.known);
      p.conflicts = s.conflicts;
      p.remaining = s.known - std::min(s.known, p.held + s.conflicts);
      p.cursor = s.cursor();
      p.fetched_blobs = s.fetched_blobs;
      p.fetched_bytes = s.fetched_bytes;
      p.fetches_failed = s.fetches_failed;
      p.bytes_per_second = s.rate.rate(now);
      for (const auto& [index, task] : s.tasks) p.in_flight += task.attempts.size();
      p.peers = static_cast<uint32_t>(s.peers.size());
      p.registry_head = s.head;
      p.last_error = s.last_error;
      out.push_back(std::move(p));
    }
    return out;
  }

  bool all_synced() const {
    for (const auto& [id, s] : shards) {
      if (!s.confirmed_synced()) return false;
    }
    return true;
  }
};

SyncEngine::SyncEngine(Store& store, WorkerPool& pool, std::shared_ptr<const erasure::Codec> codec,
                       std::shared_ptr<const ReplicaTransform> transform, Registry& registry,
                       RemoteFragments& remote, const SyncSettings& settings, Clock& clock,
                       SyncObserver* observer)
    : impl_(std::make_shared<Impl>(store, pool, std::move(codec), std::move(transform), registry,
                                   remote, settings, clock, observer)) {}

SyncEngine::~SyncEngine() { impl_->stop(); }

Status SyncEngine::add_shard(ShardId shard) { return impl_->add_shard(shard); }
void SyncEngine::remove_shard(ShardId shard) { impl_->remove_shard(shard); }
void SyncEngine::registry_changed() { impl_->registry_changed(); }
Status SyncEngine::refetch(BlobIndex index) { return impl_->refetch(index); }
Status SyncEngine::hint(ShardId shard, BlobHint hint) {
  return impl_->hint(shard, std::move(hint));
}
void SyncEngine::tick() { impl_->tick(); }
void SyncEngine::stop() { impl_->stop(); }

bool SyncEngine::wait_synced(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  return impl_->changed.wait_for(lock, timeout, [&] {
    return impl_->stopped || impl_->all_synced();
  }) && !impl_->stopped;
}

std::vector<SyncProgress> SyncEngine::progress() const { return impl_->progress(); }

SyncStats SyncEngine::stats() const {
  std::lock_guard lock(impl_->mu);
  SyncStats s = impl_->stats;
  s.hints_pending = impl_->hints_held_locked();
  return s;
}

}  // namespace cairn::shards
