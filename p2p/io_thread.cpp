#include "cairn/p2p/io_thread.hpp"

#include <pthread.h>

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <optional>
#include <thread>

namespace cairn::p2p {

struct IoThread::Impl {
  std::string name;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
};

IoThread::IoThread(std::string name) : impl_(std::make_unique<Impl>()) {
  impl_->name = std::move(name);
}

IoThread::~IoThread() { stop(); }

asio::io_context& IoThread::context() noexcept { return impl_->io; }

asio::any_io_executor IoThread::executor() { return impl_->io.get_executor(); }

void IoThread::start() {
  if (impl_->thread.joinable()) return;
  impl_->io.restart();
  impl_->work.emplace(impl_->io.get_executor());
  impl_->thread = std::thread([impl = impl_.get()] {
    pthread_setname_np(pthread_self(), impl->name.substr(0, 15).c_str());
    impl->io.run();
  });
}

void IoThread::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
}

bool IoThread::started() const noexcept { return impl_->thread.joinable(); }

bool IoThread::running_here() const noexcept {
  return impl_->thread.joinable() && impl_->thread.get_id() == std::this_thread::get_id();
}

}  // namespace cairn::p2p
