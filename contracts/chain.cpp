#include "cairn/contracts/chain.hpp"

#include <condition_variable>
#include <mutex>

namespace cairn::contracts {

ClockTick tick_of(const BlockHeader& header) {
  const Hash32 hash = header.hash();
  return ClockTick{header.number, hash, header.parent_hash, header.timestamp_ms,
                   block_randomness(hash)};
}

Result<Hash32> Chain::randomness(BlockNumber number) {
  auto h = header(number);
  if (!h) return tl::unexpected(h.error());
  return block_randomness(h->hash());
}

std::vector<Result<Hash32>> Chain::submit_many(std::span<const Bytes> signed_txs) {
  std::vector<Result<Hash32>> out;
  out.reserve(signed_txs.size());
  for (const Bytes& tx : signed_txs) out.push_back(submit(tx));
  return out;
}

Result<Receipt> Chain::wait_for_receipt(const Hash32& tx_hash, std::chrono::milliseconds timeout) {
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t heads = 0;
  };
  auto waiter = std::make_shared<Waiter>();
  // Subscribe before the first look so a block sealed in between still wakes us.
  Subscription sub = subscribe_heads([waiter](const BlockHeader&) {
    std::lock_guard lock(waiter->mu);
    ++waiter->heads;
    waiter->cv.notify_all();
  });
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  uint64_t seen = 0;
  for (;;) {
    auto r = receipt(tx_hash);
    if (!r) return tl::unexpected(r.error());
    if (*r) return std::move(**r);
    std::unique_lock lock(waiter->mu);
    // Also re-check every 250 ms: a backend may deliver heads late.
    const auto wake =
        std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(250));
    waiter->cv.wait_until(lock, wake, [&] { return waiter->heads != seen; });
    seen = waiter->heads;
    if (std::chrono::steady_clock::now() >= deadline) {
      lock.unlock();
      auto last = receipt(tx_hash);
      if (last && *last) return std::move(**last);
      return make_error(Errc::timeout, "transaction " + to_hex(tx_hash) + " not included within " +
                                           std::to_string(timeout.count()) + " ms");
    }
  }
}

Result<Receipt> Chain::submit_and_wait(ByteSpan signed_tx, std::chrono::milliseconds timeout) {
  auto hash = submit(signed_tx);
  if (!hash) return tl::unexpected(hash.error());
  return wait_for_receipt(*hash, timeout);
}

Result<ClockTick> Chain::latest_tick() {
  auto h = head();
  if (!h) return tl::unexpected(h.error());
  return tick_of(*h);
}

Result<ClockTick> Chain::tick(BlockNumber number) {
  auto h = header(number);
  if (!h) return tl::unexpected(h.error());
  return tick_of(*h);
}

Subscription Chain::subscribe_ticks(std::function<void(const ClockTick&)> on_tick) {
  return subscribe_heads(
      [on_tick = std::move(on_tick)](const BlockHeader& h) { on_tick(tick_of(h)); });
}

}  // namespace cairn::contracts
