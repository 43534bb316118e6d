#include "cairn/contracts/chain.hpp"

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
