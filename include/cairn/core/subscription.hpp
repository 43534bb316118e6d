#pragma once
// A registration that undoes itself: the owner of a callback (a head
// subscription on the chain, a message handler on a p2p Host) holds a
// Subscription; destroying or reset()ting it runs the cancel function once.
// What "cancelled" guarantees (e.g. no callback running after reset()
// returns) is the contract of whoever hands the Subscription out. Move-only.

#include <functional>
#include <utility>

namespace cairn {

class Subscription {
 public:
  Subscription() = default;
  explicit Subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  Subscription(Subscription&& o) noexcept : cancel_(std::move(o.cancel_)) { o.cancel_ = nullptr; }
  Subscription& operator=(Subscription&& o) noexcept {
    if (this != &o) {
      reset();
      cancel_ = std::move(o.cancel_);
      o.cancel_ = nullptr;
    }
    return *this;
  }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { reset(); }

  // Runs the cancel function (once); no-op when empty.
  void reset() noexcept {
    if (cancel_) {
      auto c = std::move(cancel_);
      cancel_ = nullptr;
      c();
    }
  }
  explicit operator bool() const noexcept { return static_cast<bool>(cancel_); }

 private:
  std::function<void()> cancel_;
};

}  // namespace cairn
