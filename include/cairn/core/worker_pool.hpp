#pragma once
// The one worker pool: a fixed set of threads running blocking or CPU-heavy
// work (RocksDB, ISA-L, sealing, fsync, signature checks) off the network
// and sequencer threads, fed by a bounded queue (STYLE.md, Concurrency).
// The pool owns its threads: shutdown() stops them and joins; nothing is
// detached. Header-only, so every module (shards, contracts, the node) may
// use it without depending on another module.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cairn/core/result.hpp"

namespace cairn {

struct WorkerPoolSettings {
  // Worker threads running blocking work (RocksDB, ISA-L, sealing, fsync).
  // Default 2: one per core of the reference machine; the network thread
  // mostly waits. More threads help when work waits on disk, not on CPU.
  uint32_t threads = 2;

  // Jobs that may wait in the queue. Default 256. A full queue makes
  // try_submit fail with Errc::busy so a network thread stops reading
  // instead of buffering without bound. Each queued ingest holds its
  // payload (up to blob_size, 128 KiB), so the bound is also a memory bound
  // (256 x 128 KiB = 32 MiB).
  uint32_t queue_capacity = 256;
};

class WorkerPool {
 public:
  using Job = std::function<void()>;

  enum class Shutdown {
    drain,   // run every queued job, then stop
    cancel,  // call the cancel callback of every queued job instead of running it
  };

  struct Stats {
    uint64_t completed = 0;  // jobs whose run callback returned (or threw)
    uint64_t cancelled = 0;  // jobs cancelled by shutdown
    uint64_t rejected = 0;   // try_submit calls refused with Errc::busy
    uint64_t failed = 0;     // run callbacks that threw (caught and counted)
  };

  // Starts max(1, settings.threads) threads; the queue holds at most
  // max(1, settings.queue_capacity) waiting jobs.
  explicit WorkerPool(const WorkerPoolSettings& settings)
      : capacity_(std::max<size_t>(1, settings.queue_capacity)),
        thread_count_(std::max<size_t>(1, settings.threads)) {
    workers_.reserve(thread_count_);
    worker_ids_.reserve(thread_count_);
    std::lock_guard lock(mu_);  // worker_ids_ is read under mu_ by on_worker_thread()
    for (size_t i = 0; i < thread_count_; ++i) {
      workers_.emplace_back([this] { worker_loop(); });
      worker_ids_.push_back(workers_.back().get_id());
    }
  }
  // A pool without threads of its own, for deterministic simulation: every
  // accepted job is handed to `post` (which queues a call on a simulation's
  // io_context), and runs there in turn with everything else. The queue
  // bound, the stats, exactly-once run-or-cancel and shutdown behave as with
  // threads; threads() is 0. shutdown(drain) runs what is still queued on
  // the calling thread. Single-threaded use: the thread running what `post`
  // queues is the one that submits and shuts down (other threads may only
  // submit), and nothing `post` queued may run after the pool is destroyed
  // (stop the io_context first, or let it run dry while the pool lives).
  WorkerPool(const WorkerPoolSettings& settings, std::function<void(Job)> post)
      : capacity_(std::max<size_t>(1, settings.queue_capacity)),
        thread_count_(0),
        post_(std::move(post)) {}

  // shutdown(Shutdown::cancel).
  ~WorkerPool() { (void)shutdown(Shutdown::cancel); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `run` without ever blocking (safe on a network thread).
  // Errc::busy when queue_capacity jobs already wait; Errc::cancelled once
  // shutdown has begun. On success exactly one of `run` (on a worker thread)
  // or `cancel` (on the thread calling shutdown) is invoked, exactly once.
  // Jobs must not throw: a throwing `run` is caught and counted in
  // stats().failed, and its caller hears nothing.
  Status try_submit(Job run, Job cancel = {}) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return make_error(Errc::cancelled, "worker pool is shutting down");
      if (queue_.size() >= capacity_) {
        ++stats_.rejected;
        return make_error(Errc::busy, "worker pool queue is full (" + std::to_string(capacity_) +
                                          " jobs waiting); retry later");
      }
      queue_.push_back(Entry{std::move(run), std::move(cancel)});
    }
    dispatch();
    return {};
  }

  // Like try_submit, but waits while the queue is full (for callers that
  // may block: CLI tools, sync drivers; never a network thread).
  // Errc::timeout when no slot frees within `timeout`; Errc::cancelled when
  // shutdown begins first; Errc::invalid_argument when called from one of
  // this pool's workers (waiting there could deadlock the pool).
  Status submit_wait(Job run, Job cancel = {},
                     std::chrono::milliseconds timeout = std::chrono::milliseconds::max()) {
    if (on_worker_thread()) {
      return make_error(Errc::invalid_argument,
                        "submit_wait called from a worker of the same pool; use try_submit");
    }
    {
      std::unique_lock lock(mu_);
      const auto ready = [&] { return stopping_ || queue_.size() < capacity_; };
      if (timeout == std::chrono::milliseconds::max()) {
        space_ready_.wait(lock, ready);
      } else if (!space_ready_.wait_for(lock, timeout, ready)) {
        return make_error(Errc::timeout, "worker pool queue stayed full for " +
                                             std::to_string(timeout.count()) + " ms");
      }
      if (stopping_) return make_error(Errc::cancelled, "worker pool is shutting down");
      queue_.push_back(Entry{std::move(run), std::move(cancel)});
    }
    dispatch();
    return {};
  }

  // Stops accepting work, then drains or cancels the queue, waits for running
  // jobs and joins every thread. Idempotent; concurrent callers all return
  // after the threads are joined. Errc::invalid_argument when called from one
  // of this pool's workers (a thread cannot join itself); the pool is then
  // left to its owner's shutdown.
  Status shutdown(Shutdown mode = Shutdown::drain) {
    if (on_worker_thread()) {
      return make_error(Errc::invalid_argument, "worker pool shutdown called from its own worker");
    }
    std::lock_guard join_lock(join_mu_);
    std::deque<Entry> dropped;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      if (mode == Shutdown::cancel) dropped.swap(queue_);
    }
    work_ready_.notify_all();
    space_ready_.notify_all();
    for (auto& entry : dropped) {
      try {
        if (entry.cancel) entry.cancel();
      } catch (...) {
        // A cancel callback must not throw; nothing can be reported to anyone.
      }
    }
    if (!dropped.empty()) {
      std::lock_guard lock(mu_);
      stats_.cancelled += dropped.size();
    }
    for (auto& t : workers_) {
      if (t.joinable()) t.join();
    }
    if (post_) {
      *alive_ = false;
      while (run_one()) {
      }
    }
    return {};
  }

  size_t queued() const {
    std::lock_guard lock(mu_);
    return queue_.size();
  }
  size_t capacity() const noexcept { return capacity_; }
  size_t threads() const noexcept { return thread_count_; }
  Stats stats() const {
    std::lock_guard lock(mu_);
    return stats_;
  }
  // True on a thread owned by this pool (for a pool without threads: while
  // one of its jobs runs).
  bool on_worker_thread() const noexcept {
    const auto self = std::this_thread::get_id();
    std::lock_guard lock(mu_);
    if (post_) return running_posted_ && posted_runner_ == self;
    return std::find(worker_ids_.begin(), worker_ids_.end(), self) != worker_ids_.end();
  }

 private:
  struct Entry {
    Job run;
    Job cancel;
  };

  // Wakes a worker, or (without threads) queues one run_one() call.
  void dispatch() {
    if (!post_) {
      work_ready_.notify_one();
      return;
    }
    post_([this, alive = alive_] {
      if (*alive) (void)run_one();
    });
  }

  // Without threads: runs the oldest queued job on this thread. False when
  // the queue was empty.
  bool run_one() {
    Entry entry;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) return false;
      entry = std::move(queue_.front());
      queue_.pop_front();
      running_posted_ = true;
      posted_runner_ = std::this_thread::get_id();
    }
    run_entry(entry);
    return true;
  }

  void worker_loop() {
    for (;;) {
      Entry entry;
      {
        std::unique_lock lock(mu_);
        work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and nothing left to drain
        entry = std::move(queue_.front());
        queue_.pop_front();
      }
      run_entry(entry);
    }
  }

  // Runs a job taken off the queue and counts it.
  void run_entry(Entry& entry) {
    space_ready_.notify_one();
    bool threw = false;
    try {
      if (entry.run) entry.run();
    } catch (...) {
      threw = true;
    }
    std::lock_guard lock(mu_);
    running_posted_ = false;
    ++stats_.completed;
    if (threw) ++stats_.failed;
  }

  const size_t capacity_;
  const size_t thread_count_;
  mutable std::mutex mu_;
  std::condition_variable work_ready_;
  std::condition_variable space_ready_;
  std::deque<Entry> queue_;
  bool stopping_ = false;
  Stats stats_;
  std::mutex join_mu_;  // serializes shutdown callers
  std::vector<std::thread> workers_;
  std::vector<std::thread::id> worker_ids_;
  // Without threads: where jobs go, whether the pool still takes the calls
  // it queued there, and who runs the job running now.
  std::function<void(Job)> post_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool running_posted_ = false;
  std::thread::id posted_runner_;
};

// fn(i) for every i in [0, n), on the calling thread and up to
// pool.threads() of the pool's workers; returns when every index is done.
// Indexes are claimed `grain` at a time (amortises the claim over the work).
// The workers only help: helper jobs go in with try_submit, and when the
// queue is full, the pool is shutting down or its workers are busy (this
// thread may be one of them), the caller does the remaining indexes alone,
// so it never deadlocks. fn must not throw; it is not called after
// parallel_for returns (a helper that starts late finds nothing to claim).
inline void parallel_for(WorkerPool& pool, size_t n, const std::function<void(size_t)>& fn,
                         size_t grain = 16) {
  grain = std::max<size_t>(1, grain);
  if (n <= grain) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  struct Shared {
    const std::function<void(size_t)>* fn;
    size_t n, grain;
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::condition_variable done_cv;
    size_t finished = 0;
    void drain() {
      for (;;) {
        const size_t begin = next.fetch_add(grain);
        if (begin >= n) return;
        const size_t end = std::min(n, begin + grain);
        for (size_t i = begin; i < end; ++i) (*fn)(i);
        std::lock_guard lock(mu);
        finished += end - begin;
        if (finished == n) done_cv.notify_all();
      }
    }
  };
  auto shared = std::make_shared<Shared>();
  shared->fn = &fn;
  shared->n = n;
  shared->grain = grain;
  const size_t helpers = std::min(pool.threads(), (n + grain - 1) / grain - 1);
  for (size_t h = 0; h < helpers; ++h) {
    if (!pool.try_submit([shared] { shared->drain(); })) break;
  }
  shared->drain();
  std::unique_lock lock(shared->mu);
  shared->done_cv.wait(lock, [&] { return shared->finished == shared->n; });
}

}  // namespace cairn
