#include "node/context.hpp"

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <future>

namespace cairn::node {

ServedShards::ServedShards(std::optional<std::vector<ShardId>> list) : list_(std::move(list)) {
  if (list_) {
    std::sort(list_->begin(), list_->end());
    list_->erase(std::unique(list_->begin(), list_->end()), list_->end());
  }
}

bool ServedShards::serves(ShardId shard) const {
  return !list_ || std::binary_search(list_->begin(), list_->end(), shard);
}

std::vector<ShardId> ServedShards::current(uint32_t open) const {
  std::vector<ShardId> out;
  if (!list_) {
    const uint64_t end = std::min<uint64_t>(uint64_t{open} + kAutoLookahead, UINT32_MAX);
    for (uint64_t s = 0; s < end; ++s) out.push_back(ShardId{static_cast<uint32_t>(s)});
    return out;
  }
  return *list_;
}

void HolderCache::add(const BlobId& blob, const NodeId& node) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = holders_.try_emplace(blob);
  if (inserted) {
    order_.push_back(blob);
    if (order_.size() > kMaxBlobs) {
      holders_.erase(order_.front());
      order_.pop_front();
    }
  }
  auto& list = it->second;
  if (std::find(list.begin(), list.end(), node) == list.end() && list.size() < kMaxHolders) {
    list.push_back(node);
  }
}

std::vector<NodeId> HolderCache::get(const BlobId& blob) const {
  std::lock_guard lock(mu_);
  auto it = holders_.find(blob);
  return it == holders_.end() ? std::vector<NodeId>{} : it->second;
}

void NodeContext::post(std::function<void()> fn) const { asio::post(io, std::move(fn)); }

Status NodeContext::run_on_io(const std::function<void()>& fn) const {
  if (io_stopped.load()) return make_error(Errc::cancelled, "the node's network thread has stopped");
  if (driver != std::thread::id{} && driver == std::this_thread::get_id()) {
    fn();
    return {};
  }
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  asio::post(io, [&fn, done] {
    fn();
    done->set_value();
  });
  // The handler touches `fn` only when it runs, and it runs either before
  // the network thread exits or never (the io_context then destroys it
  // unrun): wait until one of the two is known.
  while (future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (io_stopped.load()) return make_error(Errc::cancelled, "the node's network thread has stopped");
  }
  return {};
}

Status NodeContext::submit(std::function<void()> job, std::function<void()> cancel) const {
  return pool.try_submit(std::move(job), std::move(cancel));
}

Status NodeContext::submit_wait(std::function<void()> job, std::function<void()> cancel,
                                std::chrono::milliseconds timeout) const {
  return pool.submit_wait(std::move(job), std::move(cancel), timeout);
}

uint64_t unix_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace cairn::node
