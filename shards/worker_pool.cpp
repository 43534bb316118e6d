#include "cairn/shards/worker_pool.hpp"

#include <algorithm>
#include <exception>

namespace cairn::shards {

WorkerPool::WorkerPool(const WorkerPoolSettings& settings)
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

WorkerPool::~WorkerPool() { (void)shutdown(Shutdown::cancel); }

bool WorkerPool::on_worker_thread() const noexcept {
  const auto self = std::this_thread::get_id();
  std::lock_guard lock(mu_);
  return std::find(worker_ids_.begin(), worker_ids_.end(), self) != worker_ids_.end();
}

Status WorkerPool::try_submit(Job run, Job cancel) {
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
  work_ready_.notify_one();
  return {};
}

Status WorkerPool::submit_wait(Job run, Job cancel, std::chrono::milliseconds timeout) {
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
  work_ready_.notify_one();
  return {};
}

void WorkerPool::worker_loop() {
  for (;;) {
    Entry entry;
    {
      std::unique_lock lock(mu_);
      work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to drain
      entry = std::move(queue_.front());
      queue_.pop_front();
    }
    space_ready_.notify_one();
    bool threw = false;
    try {
      if (entry.run) entry.run();
    } catch (...) {
      threw = true;
    }
    std::lock_guard lock(mu_);
    ++stats_.completed;
    if (threw) ++stats_.failed;
  }
}

Status WorkerPool::shutdown(Shutdown mode) {
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
  return {};
}

size_t WorkerPool::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

WorkerPool::Stats WorkerPool::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace cairn::shards
