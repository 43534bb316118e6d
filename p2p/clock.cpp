#include "cairn/p2p/clock.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <queue>
#include <vector>

namespace cairn::p2p {
namespace {

// ---- real time -------------------------------------------------------------

class SteadyTimer final : public Timer {
 public:
  explicit SteadyTimer(const asio::any_io_executor& ex)
      : timer_(ex), generation_(std::make_shared<uint64_t>(0)) {}
  ~SteadyTimer() override { cancel(); }

  void expires_after(Duration delay, std::function<void()> fn) override {
    const uint64_t gen = ++*generation_;
    armed_ = true;
    timer_.expires_after(delay < Duration::zero() ? Duration::zero() : delay);
    // The generation check makes re-arming and cancel() final even when the
    // previous completion is already queued on the executor.
    timer_.async_wait([this, weak = std::weak_ptr<uint64_t>(generation_), gen,
                       fn = std::move(fn)](const std::error_code& ec) {
      auto g = weak.lock();
      if (ec || !g || *g != gen) return;
      armed_ = false;
      fn();
    });
  }

  void cancel() noexcept override {
    ++*generation_;
    armed_ = false;
    timer_.cancel();
  }

  bool armed() const noexcept override { return armed_; }

 private:
  asio::steady_timer timer_;
  std::shared_ptr<uint64_t> generation_;
  bool armed_ = false;
};

class SteadyClock final : public Clock {
 public:
  TimePoint now() const noexcept override { return std::chrono::steady_clock::now(); }
  std::unique_ptr<Timer> make_timer(const asio::any_io_executor& executor) override {
    return std::make_unique<SteadyTimer>(executor);
  }
};

}  // namespace

Clock& real_clock() {
  static SteadyClock clock;
  return clock;
}

// ---- virtual time ----------------------------------------------------------

namespace {
struct ManualTimerState {
  asio::any_io_executor executor;
  uint64_t generation = 0;
  bool armed = false;
  std::function<void()> fn;
};
}  // namespace

struct ManualClock::Impl {
  explicit Impl(asio::io_context& c) : ctx(c) {}

  struct Event {
    TimePoint when;
    uint64_t seq;
    std::weak_ptr<ManualTimerState> state;
    uint64_t generation;
    bool operator>(const Event& o) const noexcept {
      return when != o.when ? when > o.when : seq > o.seq;
    }
  };

  asio::io_context& ctx;
  // Read by now() from any thread (a simulation's blocked callers); written
  // only by the driver.
  std::atomic<TimePoint> now{TimePoint{}};
  uint64_t seq = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> heap;

  static bool live(const Event& e) {
    auto st = e.state.lock();
    return st && st->armed && st->generation == e.generation;
  }

  void drop_stale() {
    while (!heap.empty() && !live(heap.top())) heap.pop();
  }

  void settle() {
    for (;;) {
      ctx.restart();
      if (ctx.poll() == 0) break;
    }
  }

  // Fires the earliest live event (time moves to its deadline).
  void fire_top() {
    Event e = heap.top();
    heap.pop();
    auto st = e.state.lock();
    if (!st || !st->armed || st->generation != e.generation) return;
    now.store(e.when);
    st->armed = false;
    auto fn = std::move(st->fn);
    st->fn = nullptr;
    const uint64_t gen = e.generation;
    asio::post(st->executor, [weak = e.state, gen, fn = std::move(fn)] {
      auto s = weak.lock();
      // Cancelled or re-armed after it fired but before it ran: drop it.
      if (!s || s->generation != gen || s->armed) return;
      fn();
    });
    settle();
  }
};

namespace {
class ManualTimer final : public Timer {
 public:
  ManualTimer(std::weak_ptr<ManualClock::Impl> clock, const asio::any_io_executor& ex)
      : clock_(std::move(clock)), state_(std::make_shared<ManualTimerState>()) {
    state_->executor = ex;
  }
  ~ManualTimer() override { cancel(); }

  void expires_after(Duration delay, std::function<void()> fn) override {
    auto clock = clock_.lock();
    if (!clock) return;  // the simulation is gone: nothing will ever fire
    state_->generation++;
    state_->armed = true;
    state_->fn = std::move(fn);
    const Duration d = delay < Duration::zero() ? Duration::zero() : delay;
    clock->heap.push({clock->now.load() + d, clock->seq++, state_, state_->generation});
  }

  void cancel() noexcept override {
    state_->generation++;
    state_->armed = false;
    state_->fn = nullptr;
  }

  bool armed() const noexcept override { return state_->armed; }

 private:
  std::weak_ptr<ManualClock::Impl> clock_;
  std::shared_ptr<ManualTimerState> state_;
};
}  // namespace

ManualClock::ManualClock(asio::io_context& ctx) : impl_(std::make_shared<Impl>(ctx)) {}
ManualClock::~ManualClock() = default;

TimePoint ManualClock::now() const noexcept { return impl_->now.load(); }
Duration ManualClock::elapsed() const noexcept { return impl_->now.load().time_since_epoch(); }

std::unique_ptr<Timer> ManualClock::make_timer(const asio::any_io_executor& executor) {
  return std::make_unique<ManualTimer>(impl_, executor);
}

void ManualClock::settle() { impl_->settle(); }

bool ManualClock::next_deadline(TimePoint& out) const noexcept {
  impl_->drop_stale();
  if (impl_->heap.empty()) return false;
  out = impl_->heap.top().when;
  return true;
}

uint64_t ManualClock::advance(Duration d) {
  auto& im = *impl_;
  const TimePoint target = im.now.load() + (d < Duration::zero() ? Duration::zero() : d);
  uint64_t fired = 0;
  im.settle();
  for (;;) {
    im.drop_stale();
    if (im.heap.empty() || im.heap.top().when > target) break;
    im.fire_top();
    ++fired;
  }
  im.now.store(target);
  im.settle();
  return fired;
}

bool ManualClock::run_until(const std::function<bool()>& done, Duration limit) {
  auto& im = *impl_;
  const TimePoint deadline = im.now.load() + limit;
  im.settle();
  if (done()) return true;
  for (;;) {
    im.drop_stale();
    if (im.heap.empty() || im.heap.top().when > deadline) {
      im.now.store(deadline);
      im.settle();
      return done();
    }
    im.fire_top();
    if (done()) return true;
  }
}

}  // namespace cairn::p2p
