#pragma once
// A fixed set of threads running blocking work (RocksDB, ISA-L, sealing,
// fsync) off the network thread, fed by a bounded queue (STYLE.md,
// Concurrency). The pool owns its threads: shutdown() stops them and joins;
// nothing is detached.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "cairn/core/result.hpp"
#include "cairn/shards/settings.hpp"

namespace cairn::shards {

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
  explicit WorkerPool(const WorkerPoolSettings& settings);
  // shutdown(Shutdown::cancel).
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `run` without ever blocking (safe on a network thread).
  // Errc::busy when queue_capacity jobs already wait; Errc::cancelled once
  // shutdown has begun. On success exactly one of `run` (on a worker thread)
  // or `cancel` (on the thread calling shutdown) is invoked, exactly once.
  // Jobs must not throw: a throwing `run` is caught and counted in
  // stats().failed, and its caller hears nothing.
  Status try_submit(Job run, Job cancel = {});

  // Like try_submit, but waits while the queue is full (for callers that
  // may block: CLI tools, sync drivers; never a network thread).
  // Errc::timeout when no slot frees within `timeout`; Errc::cancelled when
  // shutdown begins first; Errc::invalid_argument when called from one of
  // this pool's workers (waiting there could deadlock the pool).
  Status submit_wait(Job run, Job cancel = {},
                     std::chrono::milliseconds timeout = std::chrono::milliseconds::max());

  // Stops accepting work, then drains or cancels the queue, waits for running
  // jobs and joins every thread. Idempotent; concurrent callers all return
  // after the threads are joined. Errc::invalid_argument when called from one
  // of this pool's workers (a thread cannot join itself); the pool is then
  // left to its owner's shutdown.
  Status shutdown(Shutdown mode = Shutdown::drain);

  size_t queued() const;
  size_t capacity() const noexcept { return capacity_; }
  size_t threads() const noexcept { return thread_count_; }
  Stats stats() const;
  // True on a thread owned by this pool.
  bool on_worker_thread() const noexcept;

 private:
  struct Entry {
    Job run;
    Job cancel;
  };
  void worker_loop();

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
};

}  // namespace cairn::shards
