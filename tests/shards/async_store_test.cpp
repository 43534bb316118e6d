// Store operations on the worker pool: the completion is called exactly once
// off the caller's thread, a full pool refuses at once, shutdown cancels.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "cairn/shards/async_store.hpp"
#include "shards/store_testing.hpp"
#include "support/test_util.hpp"

namespace cairn::shards {
namespace {

using namespace std::chrono_literals;

template <class T>
struct Captured {
  std::promise<std::pair<Result<T>, std::thread::id>> promise;
  std::future<std::pair<Result<T>, std::thread::id>> future = promise.get_future();
  std::atomic<int> calls{0};

  Completion<T> completion() {
    return [this](Result<T> r) {
      if (++calls == 1) promise.set_value({std::move(r), std::this_thread::get_id()});
    };
  }
  std::pair<Result<T>, std::thread::id> get() {
    EXPECT_EQ(future.wait_for(10s), std::future_status::ready);
    return future.get();
  }
};

class AsyncStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::open(dir_.path(), testing::small_params());
    ASSERT_TRUE(s) << s.error().to_string();
    store_ = std::move(*s);
  }
  test::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(AsyncStoreTest, CompletionCarriesTheResultOnAWorkerThread) {
  auto rng = test::seeded_rng(21);
  auto blob = testing::synthetic_blob(testing::small_params(), BlobIndex{6}, rng);
  ASSERT_TRUE(store_->put_blob(blob.record, blob.spans()));

  WorkerPool pool(WorkerPoolSettings{2, 8});
  AsyncStore async(*store_, pool, nullptr);

  Captured<BlobRecord> record;
  ASSERT_TRUE(async.get_blob(blob.record.id, record.completion()));
  auto [r, thread] = record.get();
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, blob.record);
  EXPECT_NE(thread, std::this_thread::get_id());

  Captured<Bytes> fragment;
  ASSERT_TRUE(async.get_fragment(BlobIndex{6}, FragmentIndex{2}, fragment.completion()));
  auto [bytes, t2] = fragment.get();
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, blob.fragments[2]);

  Captured<bool> deleted;
  ASSERT_TRUE(async.delete_blob(BlobIndex{6}, deleted.completion()));
  auto [d, t3] = deleted.get();
  ASSERT_TRUE(d);
  EXPECT_TRUE(*d);

  Captured<Bytes> missing;
  ASSERT_TRUE(async.get_fragment(BlobIndex{6}, FragmentIndex{2}, missing.completion()));
  auto [m, t4] = missing.get();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::not_found);

  ASSERT_TRUE(pool.shutdown());
  EXPECT_EQ(record.calls.load() + fragment.calls.load() + deleted.calls.load() + missing.calls.load(), 4);
}

TEST_F(AsyncStoreTest, FullPoolRefusesAtOnceAndShutdownCancelsQueuedWork) {
  WorkerPool pool(WorkerPoolSettings{1, 1});
  AsyncStore async(*store_, pool, nullptr);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> started{false};
  Captured<int> blocker;
  ASSERT_TRUE(async.run<int>(
      [&](Store&) -> Result<int> {
        started = true;
        released.wait_for(10s);
        return 7;
      },
      blocker.completion()));
  while (!started) std::this_thread::sleep_for(1ms);

  Captured<uint64_t> queued;
  ASSERT_TRUE(async.run<uint64_t>([](Store& s) -> Result<uint64_t> { return s.blob_count(); },
                                  queued.completion()));
  std::atomic<int> refused_calls{0};
  auto refused = async.get_blob(BlobId{}, [&](Result<BlobRecord>) { ++refused_calls; });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::busy);

  std::thread opener([&] {
    std::this_thread::sleep_for(50ms);
    release.set_value();
  });
  ASSERT_TRUE(pool.shutdown(WorkerPool::Shutdown::cancel));
  opener.join();
  auto [b, bt] = blocker.get();
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, 7);
  auto [q, qt] = queued.get();
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code, Errc::cancelled);
  EXPECT_EQ(refused_calls.load(), 0);
  EXPECT_EQ(queued.calls.load(), 1);

  auto after = async.get_blob(BlobId{}, [&](Result<BlobRecord>) { ++refused_calls; });
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, Errc::cancelled);
  EXPECT_EQ(refused_calls.load(), 0);
}

TEST_F(AsyncStoreTest, ThrowingOperationBecomesInternalError) {
  WorkerPool pool(WorkerPoolSettings{1, 4});
  AsyncStore async(*store_, pool, nullptr);
  Captured<int> c;
  ASSERT_TRUE(async.run<int>([](Store&) -> Result<int> { throw std::runtime_error("disk on fire"); },
                             c.completion()));
  auto [r, t] = c.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::internal);
  EXPECT_NE(r.error().message.find("disk on fire"), std::string::npos);
}

}  // namespace
}  // namespace cairn::shards
