#pragma once
// One thread running an io_context: the threads a composition owns and hands
// to its components as executors (a dev chain's block producer, a node's
// chain client). Components take the executor; they never start threads of
// their own, so a simulation can run them all on one io_context instead.

#include <memory>
#include <string>

#include "cairn/core/asio_fwd.hpp"

namespace cairn::p2p {

class IoThread {
 public:
  // `name` names the thread (pthread name, at most 15 characters kept).
  explicit IoThread(std::string name);
  ~IoThread();  // stop()
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  asio::io_context& context() noexcept;
  asio::any_io_executor executor();

  // Starts the thread; it runs handlers until stop(). Idempotent.
  void start();
  // Ends the thread once the handler running now returns, and joins it.
  // Handlers and timers still queued stay queued (they run after the next
  // start(), or never): components on this executor are stopped after it,
  // from the controlling thread. Idempotent; not from the thread itself.
  void stop();
  // True between start() and stop().
  bool started() const noexcept;
  // True on the thread itself.
  bool running_here() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::p2p
