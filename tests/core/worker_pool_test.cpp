// The bounded worker pool: the queue bound is respected without blocking the
// submitter, every accepted job is run or cancelled exactly once, shutdown
// joins every thread.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <thread>
#include <vector>

#include "cairn/core/worker_pool.hpp"

namespace cairn {
namespace {

using namespace std::chrono_literals;

// A gate jobs wait on, so a test decides when they finish.
class Gate {
 public:
  void open() { promise_.set_value(); }
  void wait() const { future_.wait_for(10s); }

 private:
  std::promise<void> promise_;
  std::shared_future<void> future_ = promise_.get_future().share();
};

// Waits (bounded) until `cond` holds.
template <class Cond>
bool eventually(Cond cond) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(WorkerPool, FullQueueIsBusyAndNeverBlocks) {
  WorkerPool pool(WorkerPoolSettings{1, 2});
  Gate gate;
  std::atomic<int> ran{0};
  std::atomic<bool> started{false};
  ASSERT_TRUE(pool.try_submit([&] {
    started = true;
    gate.wait();
    ++ran;
  }));
  ASSERT_TRUE(eventually([&] { return started.load(); }));  // the one worker is busy
  ASSERT_TRUE(pool.try_submit([&] { ++ran; }));
  ASSERT_TRUE(pool.try_submit([&] { ++ran; }));
  EXPECT_EQ(pool.queued(), 2u);

  const auto before = std::chrono::steady_clock::now();
  auto refused = pool.try_submit([&] { ++ran; });
  EXPECT_LT(std::chrono::steady_clock::now() - before, 100ms);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::busy);
  EXPECT_EQ(pool.stats().rejected, 1u);

  gate.open();
  ASSERT_TRUE(eventually([&] { return ran.load() == 3; }));
  ASSERT_TRUE(pool.try_submit([&] { ++ran; }));  // space again
  ASSERT_TRUE(pool.shutdown(WorkerPool::Shutdown::drain));
  EXPECT_EQ(ran.load(), 4);
  EXPECT_EQ(pool.stats().completed, 4u);
}

TEST(WorkerPool, CancelShutdownCancelsQueuedJobsAndFinishesRunningOnes) {
  WorkerPool pool(WorkerPoolSettings{2, 16});
  Gate gate;
  std::atomic<int> running{0}, ran{0}, cancelled{0};
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(pool.try_submit(
        [&] {
          ++running;
          gate.wait();
          ++ran;
        },
        [&] { ++cancelled; }));
  }
  ASSERT_TRUE(eventually([&] { return running.load() == 2; }));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(pool.try_submit([&] { ++ran; }, [&] { ++cancelled; }));
  }
  std::thread opener([&] {
    std::this_thread::sleep_for(50ms);
    gate.open();
  });
  ASSERT_TRUE(pool.shutdown(WorkerPool::Shutdown::cancel));
  opener.join();
  EXPECT_EQ(ran.load(), 2);         // the two running jobs finished
  EXPECT_EQ(cancelled.load(), 10);  // the queued ones were cancelled, not run
  EXPECT_EQ(pool.stats().cancelled, 10u);
  EXPECT_EQ(pool.stats().completed, 2u);

  auto late = pool.try_submit([&] { ++ran; });
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::cancelled);
  EXPECT_TRUE(pool.shutdown());  // idempotent
}

TEST(WorkerPool, DrainShutdownRunsEveryQueuedJob) {
  WorkerPool pool(WorkerPoolSettings{2, 1000});
  std::atomic<int> ran{0}, cancelled{0};
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(pool.try_submit([&] { ++ran; }, [&] { ++cancelled; }));
  }
  ASSERT_TRUE(pool.shutdown(WorkerPool::Shutdown::drain));
  EXPECT_EQ(ran.load(), 500);
  EXPECT_EQ(cancelled.load(), 0);
}

TEST(WorkerPool, DestructorCancelsWhatIsQueued) {
  std::atomic<int> ran{0}, cancelled{0};
  Gate gate;
  std::atomic<bool> started{false};
  {
    WorkerPool pool(WorkerPoolSettings{1, 8});
    ASSERT_TRUE(pool.try_submit([&] {
      started = true;
      gate.wait();
      ++ran;
    }));
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool.try_submit([&] { ++ran; }, [&] { ++cancelled; }));
    gate.open();
  }
  // Whatever the worker had not dequeued was cancelled; nothing was lost.
  EXPECT_EQ(ran.load() + cancelled.load(), 6);
  EXPECT_GE(ran.load(), 1);
}

TEST(WorkerPool, SubmitWaitBlocksUntilSpaceOrTimesOutOrIsCancelled) {
  WorkerPool pool(WorkerPoolSettings{1, 1});
  Gate gate;
  std::atomic<bool> started{false};
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.try_submit([&] {
    started = true;
    gate.wait();
  }));
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  ASSERT_TRUE(pool.try_submit([&] { ++ran; }));  // fills the queue

  auto timed_out = pool.submit_wait([&] { ++ran; }, {}, 30ms);
  ASSERT_FALSE(timed_out);
  EXPECT_EQ(timed_out.error().code, Errc::timeout);

  auto waiter = std::async(std::launch::async, [&] { return pool.submit_wait([&] { ++ran; }); });
  EXPECT_EQ(waiter.wait_for(50ms), std::future_status::timeout);  // still waiting for space
  gate.open();
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(waiter.get());
  ASSERT_TRUE(eventually([&] { return ran.load() == 2; }));

  // A waiter is released with Errc::cancelled when shutdown begins.
  Gate gate2;
  std::atomic<bool> started2{false};
  ASSERT_TRUE(pool.try_submit([&] {
    started2 = true;
    gate2.wait();
  }));
  ASSERT_TRUE(eventually([&] { return started2.load(); }));
  ASSERT_TRUE(pool.try_submit([] {}));
  auto blocked = std::async(std::launch::async, [&] { return pool.submit_wait([] {}); });
  EXPECT_EQ(blocked.wait_for(50ms), std::future_status::timeout);
  std::thread opener([&] {
    std::this_thread::sleep_for(50ms);
    gate2.open();
  });
  ASSERT_TRUE(pool.shutdown(WorkerPool::Shutdown::cancel));
  opener.join();
  ASSERT_EQ(blocked.wait_for(10s), std::future_status::ready);
  auto r = blocked.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::cancelled);
}

TEST(WorkerPool, WorkersCannotWaitOnOrShutDownTheirOwnPool) {
  WorkerPool pool(WorkerPoolSettings{1, 4});
  std::promise<std::pair<Errc, Errc>> result;
  ASSERT_TRUE(pool.try_submit([&] {
    auto wait = pool.submit_wait([] {});
    auto stop = pool.shutdown();
    result.set_value({wait ? Errc::ok : wait.error().code, stop ? Errc::ok : stop.error().code});
  }));
  auto f = result.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  const auto [wait, stop] = f.get();
  EXPECT_EQ(wait, Errc::invalid_argument);
  EXPECT_EQ(stop, Errc::invalid_argument);
  EXPECT_FALSE(pool.on_worker_thread());
}

TEST(WorkerPool, ThrowingJobIsCountedAndThePoolKeepsWorking) {
  WorkerPool pool(WorkerPoolSettings{1, 4});
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.try_submit([] { throw std::runtime_error("boom"); }));
  ASSERT_TRUE(pool.try_submit([&] { ++ran; }));
  ASSERT_TRUE(pool.shutdown(WorkerPool::Shutdown::drain));
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(pool.stats().failed, 1u);
  EXPECT_EQ(pool.stats().completed, 2u);
}

TEST(WorkerPool, ManySubmittersEveryJobRunsOrIsCancelledExactlyOnce) {
  WorkerPool pool(WorkerPoolSettings{2, 8});
  constexpr int kSubmitters = 4, kJobs = 2000;
  std::atomic<int> ran{0}, cancelled{0}, accepted{0}, busy{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < kSubmitters; ++t) {
    submitters.emplace_back([&] {
      for (int i = 0; i < kJobs; ++i) {
        auto s = pool.try_submit([&] { ++ran; }, [&] { ++cancelled; });
        if (s) {
          ++accepted;
        } else if (s.error().code == Errc::busy) {
          ++busy;
          std::this_thread::yield();
        }
      }
    });
  }
  for (auto& t : submitters) t.join();
  ASSERT_TRUE(pool.shutdown(WorkerPool::Shutdown::cancel));
  EXPECT_EQ(accepted.load() + busy.load(), kSubmitters * kJobs);
  EXPECT_EQ(ran.load() + cancelled.load(), accepted.load());
  EXPECT_EQ(pool.stats().rejected, static_cast<uint64_t>(busy.load()));
}

TEST(WorkerPool, ParallelForRunsEveryIndexOnceEvenWhenNoWorkerCanHelp) {
  WorkerPool pool(WorkerPoolSettings{3, 8});
  std::vector<std::atomic<int>> hits(1000);
  parallel_for(
      pool, hits.size(), [&](size_t i) { ++hits[i]; }, 7);
  for (const auto& h : hits) EXPECT_EQ(h.load(), 1);

  // From the pool's only worker, with every helper stuck behind it in the
  // queue: the caller does all the work and returns (no deadlock).
  WorkerPool single(WorkerPoolSettings{1, 4});
  std::atomic<size_t> sum{0};
  std::promise<void> done;
  ASSERT_TRUE(single.try_submit([&] {
    parallel_for(
        single, 500, [&](size_t i) { sum += i; }, 10);
    done.set_value();
  }));
  ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(sum.load(), size_t{500 * 499 / 2});
}

// Without threads (a simulation's pool): jobs run only where `post` queued
// them, in order, within the same queue bound; shutdown drains or cancels
// on the calling thread, and calls queued after it run nothing.
TEST(WorkerPool, PoolWithoutThreadsRunsJobsWherePostPutsThem) {
  std::deque<WorkerPool::Job> posted;
  WorkerPool pool(WorkerPoolSettings{0, 3},
                  [&](WorkerPool::Job j) { posted.push_back(std::move(j)); });
  EXPECT_EQ(pool.threads(), 0u);
  std::vector<int> ran;
  bool inside = false;
  ASSERT_TRUE(pool.try_submit([&] {
    inside = pool.on_worker_thread();
    ran.push_back(1);
  }));
  ASSERT_TRUE(pool.try_submit([&] { ran.push_back(2); }));
  ASSERT_TRUE(pool.try_submit([&] { ran.push_back(3); }));
  auto full = pool.try_submit([&] { ran.push_back(4); });
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, Errc::busy);
  EXPECT_TRUE(ran.empty()) << "a job ran before its posted call";
  EXPECT_EQ(posted.size(), 3u);
  EXPECT_FALSE(pool.on_worker_thread());
  while (!posted.empty()) {
    auto j = std::move(posted.front());
    posted.pop_front();
    j();
  }
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(inside);
  EXPECT_EQ(pool.stats().completed, 3u);

  bool cancelled = false;
  ASSERT_TRUE(pool.try_submit([&] { ran.push_back(5); }));
  ASSERT_TRUE(pool.try_submit([&] { ran.push_back(6); }, [&] { cancelled = true; }));
  EXPECT_TRUE(pool.shutdown(WorkerPool::Shutdown::drain));
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3, 5, 6})) << "drain runs what is queued";
  EXPECT_FALSE(cancelled);
  for (auto& j : posted) j();  // the calls queued for 5 and 6 find nothing
  EXPECT_EQ(ran.size(), 5u);
  EXPECT_EQ(pool.try_submit([] {}).error().code, Errc::cancelled);
}

TEST(WorkerPool, PoolWithoutThreadsCancelShutdownCancelsWhatIsQueued) {
  std::deque<WorkerPool::Job> posted;
  int cancelled = 0, ran = 0;
  {
    WorkerPool pool(WorkerPoolSettings{0, 8},
                    [&](WorkerPool::Job j) { posted.push_back(std::move(j)); });
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(pool.try_submit([&] { ++ran; }, [&] { ++cancelled; }));
  }  // the destructor cancels
  for (auto& j : posted) j();
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(cancelled, 4);
}

}  // namespace
}  // namespace cairn
