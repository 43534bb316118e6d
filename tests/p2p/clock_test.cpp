#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "cairn/p2p/clock.hpp"

using namespace std::chrono_literals;

namespace cairn::p2p {
namespace {

TEST(ManualClock, FiresTimersInDeadlineOrderAtExactTimes) {
  asio::io_context ctx;
  ManualClock clock(ctx);
  std::vector<std::pair<int, Duration>> fired;
  auto a = clock.make_timer(ctx.get_executor());
  auto b = clock.make_timer(ctx.get_executor());
  auto c = clock.make_timer(ctx.get_executor());
  a->expires_after(300ms, [&] { fired.emplace_back(1, clock.elapsed()); });
  b->expires_after(100ms, [&] { fired.emplace_back(2, clock.elapsed()); });
  c->expires_after(100ms, [&] { fired.emplace_back(3, clock.elapsed()); });
  EXPECT_EQ(clock.advance(250ms), 2u);
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0], (std::pair<int, Duration>{2, 100ms}));  // ties in arming order
  EXPECT_EQ(fired[1], (std::pair<int, Duration>{3, 100ms}));
  EXPECT_EQ(clock.elapsed(), 250ms);
  clock.advance(1s);
  ASSERT_EQ(fired.size(), 3u);
  EXPECT_EQ(fired[2], (std::pair<int, Duration>{1, 300ms}));
}

TEST(ManualClock, CancelRearmAndDestroyAreFinal) {
  asio::io_context ctx;
  ManualClock clock(ctx);
  int hits = 0;
  auto t = clock.make_timer(ctx.get_executor());
  t->expires_after(10ms, [&] { hits += 100; });
  t->expires_after(20ms, [&] { hits += 1; });  // replaces the first arming
  EXPECT_TRUE(t->armed());
  clock.advance(15ms);
  EXPECT_EQ(hits, 0);
  clock.advance(10ms);
  EXPECT_EQ(hits, 1);
  EXPECT_FALSE(t->armed());

  t->expires_after(5ms, [&] { hits += 10; });
  t->cancel();
  clock.advance(1s);
  EXPECT_EQ(hits, 1);

  auto u = clock.make_timer(ctx.get_executor());
  u->expires_after(5ms, [&] { hits += 1000; });
  u.reset();
  clock.advance(1s);
  EXPECT_EQ(hits, 1);
}

TEST(ManualClock, WorkTriggeredByATimerRunsBeforeTimeMovesOn) {
  asio::io_context ctx;
  ManualClock clock(ctx);
  auto t1 = clock.make_timer(ctx.get_executor());
  auto t2 = clock.make_timer(ctx.get_executor());
  std::vector<std::string> log;
  t1->expires_after(1s, [&] {
    log.push_back("t1@" + std::to_string(clock.elapsed().count()));
    asio::post(ctx, [&] {
      log.push_back("posted@" + std::to_string(clock.elapsed().count()));
      // Armed from inside the cascade: zero delay fires at the same instant.
      t2->expires_after(0s,
                        [&] { log.push_back("t2@" + std::to_string(clock.elapsed().count())); });
    });
  });
  clock.advance(2s);
  const std::string at1 = std::to_string(Duration(1s).count());
  EXPECT_EQ(log, (std::vector<std::string>{"t1@" + at1, "posted@" + at1, "t2@" + at1}));
}

TEST(ManualClock, RunUntilStopsAtTheFirstInstantThePredicateHolds) {
  asio::io_context ctx;
  ManualClock clock(ctx);
  int ticks = 0;
  auto t = clock.make_timer(ctx.get_executor());
  std::function<void()> tick = [&] {
    ++ticks;
    t->expires_after(250ms, tick);
  };
  t->expires_after(250ms, tick);
  EXPECT_TRUE(clock.run_until([&] { return ticks == 3; }, 10s));
  EXPECT_EQ(clock.elapsed(), 750ms);
  EXPECT_FALSE(clock.run_until([&] { return ticks == 100; }, 1s));
  EXPECT_EQ(clock.elapsed(), 1750ms);
  EXPECT_EQ(ticks, 7);
}

TEST(SteadyClock, TimerFiresOnTheExecutorAndCancelIsFinal) {
  asio::io_context ctx;
  Clock& clock = real_clock();
  int hits = 0;
  auto t = clock.make_timer(ctx.get_executor());
  auto u = clock.make_timer(ctx.get_executor());
  const TimePoint start = clock.now();
  t->expires_after(20ms, [&] { ++hits; });
  u->expires_after(10ms, [&] { hits += 100; });
  u->cancel();
  ctx.run();
  EXPECT_EQ(hits, 1);
  EXPECT_GE(clock.now() - start, 20ms);
}

}  // namespace
}  // namespace cairn::p2p
