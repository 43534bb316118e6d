#pragma once
// A fixed set of threads for data-parallel CPU work (signature checks of a
// transaction batch). parallel_for() runs on the workers and the calling
// thread and returns when every index is done; calls are serialised, so the
// pool never holds more than one job (its queue is bounded by construction).

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cairn::contracts {

class WorkerPool {
 public:
  // `threads` counts the caller too: threads - 1 workers are started.
  explicit WorkerPool(unsigned threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // fn(i) for every i in [0, n); fn must not throw.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);

 private:
  void worker_loop();
  void drain();

  std::mutex call_mu_;  // one job at a time
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  const std::function<void(size_t)>* fn_ = nullptr;
  size_t n_ = 0, next_ = 0, finished_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace cairn::contracts
