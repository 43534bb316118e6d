#pragma once
// The subscriber list behind every subscribe_*(): one publisher thread calls
// publish(); subscriptions may be dropped from any thread, including from
// inside their own callback. Dropping waits for a running invocation of that
// callback (unless called from it), so an owner can safely destroy what the
// callback touches right after the Subscription is gone.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cairn/contracts/chain.hpp"

namespace cairn::contracts {

template <class T>
class Subscribers {
 public:
  Subscribers() : core_(std::make_shared<Core>()) {}

  Subscription add(std::function<void(const T&)> fn) {
    uint64_t id = 0;
    {
      std::lock_guard lock(core_->mu);
      id = ++core_->next_id;
      core_->entries.push_back(
          Entry{id, std::make_shared<std::function<void(const T&)>>(std::move(fn))});
    }
    return Subscription([weak = std::weak_ptr<Core>(core_), id] {
      if (auto core = weak.lock()) core->remove(id);
    });
  }

  // Calls every callback in subscription order on the calling thread. A
  // callback that throws is skipped (exceptions do not reach the publisher).
  void publish(const T& value) {
    std::vector<Entry> snapshot;
    {
      std::lock_guard lock(core_->mu);
      snapshot = core_->entries;
    }
    for (const Entry& e : snapshot) {
      {
        std::lock_guard lock(core_->mu);
        if (!core_->contains(e.id)) continue;
        core_->firing = e.id;
        core_->firing_thread = std::this_thread::get_id();
      }
      try {
        (*e.fn)(value);
      } catch (...) {
      }
      std::lock_guard lock(core_->mu);
      core_->firing = 0;
      core_->cv.notify_all();
    }
  }

  bool empty() const {
    std::lock_guard lock(core_->mu);
    return core_->entries.empty();
  }

 private:
  struct Entry {
    uint64_t id;
    std::shared_ptr<std::function<void(const T&)>> fn;
  };
  struct Core {
    mutable std::mutex mu;
    std::condition_variable cv;
    std::vector<Entry> entries;
    uint64_t next_id = 0;
    uint64_t firing = 0;
    std::thread::id firing_thread;

    bool contains(uint64_t id) const {
      for (const Entry& e : entries) {
        if (e.id == id) return true;
      }
      return false;
    }
    void remove(uint64_t id) {
      std::unique_lock lock(mu);
      std::erase_if(entries, [id](const Entry& e) { return e.id == id; });
      if (firing == id && firing_thread != std::this_thread::get_id()) {
        cv.wait(lock, [&] { return firing != id; });
      }
    }
  };
  std::shared_ptr<Core> core_;
};

}  // namespace cairn::contracts
