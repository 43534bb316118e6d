#include "cairn/contracts/devchain.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "cairn/contracts/contract.hpp"
#include "cairn/core/worker_pool.hpp"
#include "chain_store.hpp"
#include "keyed_hash.hpp"
#include "subscribers.hpp"

namespace cairn::contracts {
namespace {

class SystemTime final : public TimeSource {
 public:
  uint64_t now_ms() override {
    using namespace std::chrono;
    return static_cast<uint64_t>(
        duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
  }
};

struct PendingTx {
  Transaction tx;
  Bytes raw;
  Hash32 hash{};
};

// A decoded, signature-checked transaction ready for admission, or why not.
struct Checked {
  std::optional<PendingTx> tx;
  Error error;
};

Checked check(ByteSpan raw, const Hash32& chain_id) {
  Checked c;
  auto tx = Transaction::decode(raw);
  if (!tx) {
    c.error = Error{Errc::invalid_argument, "malformed: " + tx.error().message};
    return c;
  }
  if (!verify_tx_signature(*tx, chain_id)) {
    c.error =
        Error{Errc::verification_failed, "bad_signature: signature does not verify for sender " +
                                             tx->sender.hex() + " on chain " + to_hex(chain_id)};
    return c;
  }
  c.tx = PendingTx{std::move(*tx), Bytes(raw.begin(), raw.end()), tx_hash(raw)};
  return c;
}

// Within one block, each sender's transactions are applied in nonce order
// (they may have arrived out of order over concurrent connections); the
// interleaving of senders keeps arrival order.
void order_nonces_per_sender(std::vector<PendingTx>& batch) {
  std::unordered_map<NodeId, std::vector<size_t>, KeyedHash> positions;
  for (size_t i = 0; i < batch.size(); ++i) positions[batch[i].tx.sender].push_back(i);
  for (auto& [sender, pos] : positions) {
    if (pos.size() < 2) continue;
    std::vector<PendingTx> mine;
    mine.reserve(pos.size());
    for (size_t p : pos) mine.push_back(std::move(batch[p]));
    std::stable_sort(mine.begin(), mine.end(), [](const PendingTx& a, const PendingTx& b) {
      return a.tx.nonce < b.tx.nonce;
    });
    for (size_t k = 0; k < pos.size(); ++k) batch[pos[k]] = std::move(mine[k]);
  }
}

Hash32 tx_root_of(const std::vector<Hash32>& tx_hashes) {
  std::vector<Hash32> leaves;
  leaves.reserve(tx_hashes.size());
  for (const Hash32& h : tx_hashes) leaves.push_back(erasure::merkle_leaf_hash(h));
  return erasure::merkle_root(leaves);
}

tl::unexpected<Error> chain_failed() {
  return make_error(Errc::io_error,
                    "dev chain stopped after failing to persist a block; restart it to recover");
}

}  // namespace

std::shared_ptr<TimeSource> system_time() {
  static auto t = std::make_shared<SystemTime>();
  return t;
}

struct DevChain::Impl {
  DevChainSettings settings;
  SigningKey sequencer;
  ChainInfo info;
  std::shared_ptr<TimeSource> time;
  std::unique_ptr<ChainStore> store;

  // Guards state and head. Block production holds it exclusively from the
  // first applied transaction until the block is persisted, so readers never
  // see state that is not on disk.
  mutable std::shared_mutex state_mu;
  ContractState state;
  BlockHeader head_header;

  // Guards the mempool. Lock order: pool_mu, then state_mu.
  mutable std::mutex pool_mu;
  std::deque<PendingTx> pending;
  std::unordered_set<Hash32, KeyedHash> pending_hashes;
  // Drained into the block being produced; still count as pending so a
  // resubmission cannot slip in before their nonces are recorded.
  std::unordered_set<Hash32, KeyedHash> inflight_hashes;
  std::unordered_map<NodeId, uint64_t, KeyedHash> max_pending_nonce;

  std::mutex produce_mu;  // one block at a time
  std::atomic<bool> failed{false};
  Subscribers<BlockHeader> subscribers;
  std::unique_ptr<WorkerPool> verify_pool;

  // The block producer (start/stop): used only on its executor, or while no
  // thread runs that executor.
  Clock* clock = nullptr;
  std::unique_ptr<Timer> block_timer;
  TimePoint next_block{};
  std::function<void(const Error&)> on_error;

  Impl(const DevChainSettings& s, const SigningKey& key, const ChainInfo& i,
       std::shared_ptr<TimeSource> t, std::unique_ptr<ChainStore> st)
      : settings(s),
        sequencer(key),
        info(i),
        time(std::move(t)),
        store(std::move(st)),
        state(i.params, i.chain_id) {}

  Status replay();
  // Admission checks that need the mempool and the state; pool_mu held.
  Status admit_locked(PendingTx&& tx);
  Result<BlockHeader> produce();
  void arm_block_timer();
  void on_block_timer();
};

Status DevChain::Impl::replay() {
  auto head_number = store->head_number();
  if (!head_number) return tl::unexpected(head_number.error());
  auto genesis = store->header(0);
  if (!genesis) return tl::unexpected(genesis.error());
  if (genesis->hash() != info.genesis_hash) {
    return make_error(Errc::corruption,
                      "dev chain database: block 0 does not match the genesis record");
  }
  BlockHeader previous = *genesis;
  for (uint64_t n = 1; n <= *head_number; ++n) {
    auto h = store->header(n);
    if (!h) return tl::unexpected(h.error());
    auto body = store->body(n);
    if (!body) return tl::unexpected(body.error());
    auto txs = decode_body(*body);
    if (!txs) return tl::unexpected(with_context(txs.error(), "block " + std::to_string(n)));
    auto mismatch = [&](const std::string& what) {
      return make_error(Errc::corruption, "dev chain database: block " + std::to_string(n) +
                                              " does not replay to its header: " + what);
    };
    if (h->number.value != n || h->parent_hash != previous.hash()) return mismatch("parent link");
    state.begin_block(BlockContext{h->number, h->timestamp_ms});
    std::vector<Hash32> hashes;
    hashes.reserve(txs->size());
    for (size_t i = 0; i < txs->size(); ++i) {
      const Bytes& raw = (*txs)[i];
      auto tx = Transaction::decode(raw);
      if (!tx) return mismatch("transaction " + std::to_string(i) + ": " + tx.error().message);
      hashes.push_back(tx_hash(raw));
      // Signatures were checked on admission, and tx_root (checked below,
      // under the sequencer's signature) pins these exact bytes.
      state.apply(*tx, hashes.back(), static_cast<uint32_t>(i));
    }
    const BlockRoots roots = state.end_block();
    if (h->tx_count != hashes.size() || h->tx_root != tx_root_of(hashes))
      return mismatch("tx_root");
    if (h->blob_count != roots.blob_count || h->blobs_root != roots.blobs_root) {
      return mismatch("blobs_root");
    }
    if (h->response_count != roots.response_count || h->responses_root != roots.responses_root) {
      return mismatch("responses_root");
    }
    previous = *h;
  }
  head_header = previous;
  return verify_header(head_header, info.sequencer);
}

Result<std::unique_ptr<DevChain>> DevChain::open(const DevChainSettings& settings,
                                                 const SigningKey& sequencer,
                                                 std::optional<erasure::NetworkParams> params,
                                                 std::shared_ptr<TimeSource> time) {
  if (params) {
    if (auto v = params->validate(); !v) return tl::unexpected(v.error());
  }
  if (settings.max_block_txs == 0 || settings.max_mempool_txs == 0) {
    return make_error(Errc::invalid_argument,
                      "dev chain: max_block_txs and max_mempool_txs must be > 0");
  }
  auto store = ChainStore::open(settings.db_path, settings.sync_writes);
  if (!store) return tl::unexpected(store.error());
  auto existing = (*store)->genesis();
  if (!existing) return tl::unexpected(existing.error());

  ChainInfo info;
  bool fresh = false;
  if (*existing) {
    info = **existing;
    if (info.sequencer != sequencer.public_key()) {
      return make_error(Errc::conflict, "dev chain in " + settings.db_path +
                                            " belongs to sequencer " + info.sequencer.hex() +
                                            ", not " + sequencer.public_key().hex());
    }
    if (params && *params != info.params) {
      return make_error(Errc::conflict,
                        "dev chain in " + settings.db_path +
                            " was created with other network parameters; start it without "
                            "parameter flags or use a fresh data dir");
    }
  } else {
    fresh = true;
    info.sequencer = sequencer.public_key();
    info.params = params.value_or(erasure::NetworkParams::defaults());
    info.genesis_time_ms = time->now_ms();
    info.chain_id = compute_chain_id(info.sequencer, info.params, info.genesis_time_ms);
  }

  BlockHeader genesis;
  if (fresh) {
    genesis.chain_id = info.chain_id;
    genesis.number = BlockNumber{0};
    genesis.timestamp_ms = info.genesis_time_ms;
    genesis.tx_root = erasure::merkle_root({});
    genesis.blobs_root = erasure::merkle_root({});
    genesis.responses_root = erasure::merkle_root({});
    sign_header(genesis, sequencer);
    info.genesis_hash = genesis.hash();
    if (auto s = (*store)->write_genesis(info, genesis); !s) return tl::unexpected(s.error());
  }

  auto impl = std::make_unique<Impl>(settings, sequencer, info, std::move(time), std::move(*store));
  if (auto s = impl->replay(); !s) return tl::unexpected(s.error());
  unsigned threads = settings.verify_threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  // The sequencer thread checks too, so threads - 1 workers; a queue of
  // that many helper jobs is all parallel_for submits at once.
  if (threads > 1)
    impl->verify_pool = std::make_unique<WorkerPool>(WorkerPoolSettings{threads - 1, threads - 1});
  return std::unique_ptr<DevChain>(new DevChain(std::move(impl)));
}

DevChain::DevChain(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DevChain::~DevChain() { stop(); }

void DevChain::start(const asio::any_io_executor& executor, Clock& clock,
                     std::function<void(const Error&)> on_error) {
  if (impl_->block_timer) return;
  impl_->clock = &clock;
  impl_->on_error = std::move(on_error);
  impl_->block_timer = clock.make_timer(executor);
  impl_->next_block = clock.now() + std::chrono::milliseconds(impl_->info.params.block_time_ms);
  impl_->arm_block_timer();
}

void DevChain::Impl::arm_block_timer() {
  block_timer->expires_after(next_block - clock->now(), [this] { on_block_timer(); });
}

void DevChain::Impl::on_block_timer() {
  Result<BlockHeader> produced = make_error(Errc::internal, "block not produced");
  try {
    produced = produce();
  } catch (const std::exception& e) {
    failed = true;
    produced = make_error(Errc::internal, std::string("producing a block: ") + e.what());
  }
  if (!produced) {
    if (on_error) on_error(produced.error());
    return;
  }
  const auto interval = std::chrono::milliseconds(info.params.block_time_ms);
  next_block += interval;
  // After a stall (suspend, slow disk) resume the cadence instead of
  // bursting out the missed blocks.
  if (next_block < clock->now()) next_block = clock->now() + interval;
  arm_block_timer();
}

void DevChain::stop() { impl_->block_timer.reset(); }

Result<BlockHeader> DevChain::produce_block() { return impl_->produce(); }

Result<BlockHeader> DevChain::Impl::produce() {
  std::lock_guard produce_lock(produce_mu);
  if (failed) return chain_failed();

  std::vector<PendingTx> batch;
  {
    std::lock_guard lock(pool_mu);
    const size_t n = std::min(pending.size(), settings.max_block_txs);
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      inflight_hashes.insert(pending.front().hash);
      pending_hashes.erase(pending.front().hash);
      batch.push_back(std::move(pending.front()));
      pending.pop_front();
    }
  }
  order_nonces_per_sender(batch);

  BlockHeader header;
  {
    std::unique_lock lock(state_mu);
    header.chain_id = info.chain_id;
    header.number = BlockNumber{head_header.number.value + 1};
    header.parent_hash = head_header.hash();
    header.timestamp_ms = std::max(head_header.timestamp_ms, time->now_ms());
    state.begin_block(BlockContext{header.number, header.timestamp_ms});
    std::vector<Receipt> receipts;
    std::vector<Hash32> hashes;
    std::vector<ByteSpan> raws;
    receipts.reserve(batch.size());
    hashes.reserve(batch.size());
    raws.reserve(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      receipts.push_back(state.apply(batch[i].tx, batch[i].hash, static_cast<uint32_t>(i)));
      hashes.push_back(batch[i].hash);
      raws.push_back(batch[i].raw);
    }
    const BlockRoots roots = state.end_block();
    header.tx_root = tx_root_of(hashes);
    header.tx_count = static_cast<uint32_t>(hashes.size());
    header.blobs_root = roots.blobs_root;
    header.blob_count = roots.blob_count;
    header.responses_root = roots.responses_root;
    header.response_count = roots.response_count;
    sign_header(header, sequencer);
    if (auto s = store->commit_block(header, raws, receipts); !s) {
      // The state now runs ahead of the disk: refuse everything until a
      // reopen replays the persisted blocks.
      failed = true;
      return tl::unexpected(s.error());
    }
    head_header = header;
  }
  {
    std::lock_guard lock(pool_mu);
    for (const PendingTx& t : batch) inflight_hashes.erase(t.hash);
  }
  subscribers.publish(header);
  return header;
}

Status DevChain::Impl::admit_locked(PendingTx&& tx) {
  if (pending_hashes.count(tx.hash) != 0 || inflight_hashes.count(tx.hash) != 0) {
    return make_error(Errc::conflict,
                      "duplicate_pending: transaction " + to_hex(tx.hash) + " is already pending");
  }
  std::optional<uint64_t> last;
  {
    std::shared_lock lock(state_mu);
    last = state.last_nonce(tx.tx.sender);
  }
  if (last && tx.tx.nonce <= *last) {
    return make_error(Errc::conflict, "stale_nonce: nonce " + std::to_string(tx.tx.nonce) +
                                          " is not above " + std::to_string(*last) +
                                          ", the sender's last included nonce");
  }
  if (pending.size() >= settings.max_mempool_txs) {
    return make_error(Errc::busy, "mempool_full: " + std::to_string(pending.size()) +
                                      " transactions pending; retry after the next block");
  }
  auto [it, inserted] = max_pending_nonce.try_emplace(tx.tx.sender, tx.tx.nonce);
  if (!inserted) it->second = std::max(it->second, tx.tx.nonce);
  pending_hashes.insert(tx.hash);
  pending.push_back(std::move(tx));
  return {};
}

Result<Hash32> DevChain::submit(ByteSpan signed_tx) {
  Checked c = check(signed_tx, impl_->info.chain_id);
  if (!c.tx) return tl::unexpected(std::move(c.error));
  const Hash32 hash = c.tx->hash;
  std::lock_guard lock(impl_->pool_mu);
  if (impl_->failed) return chain_failed();
  if (auto s = impl_->admit_locked(std::move(*c.tx)); !s) return tl::unexpected(s.error());
  return hash;
}

std::vector<Result<Hash32>> DevChain::submit_many(std::span<const Bytes> signed_txs) {
  std::vector<Checked> checked(signed_txs.size());
  const Hash32 chain_id = impl_->info.chain_id;
  const auto check_one = [&](size_t i) {
    try {
      checked[i] = check(signed_txs[i], chain_id);
    } catch (const std::exception& e) {
      checked[i].error = Error{Errc::internal, e.what()};
    }
  };
  if (impl_->verify_pool) {
    // 16 per claim: amortises the claim over ~0.5 ms of ed25519 work.
    parallel_for(*impl_->verify_pool, signed_txs.size(), check_one, 16);
  } else {
    for (size_t i = 0; i < signed_txs.size(); ++i) check_one(i);
  }
  std::vector<Result<Hash32>> out;
  out.reserve(signed_txs.size());
  std::lock_guard lock(impl_->pool_mu);
  for (Checked& c : checked) {
    if (!c.tx) {
      out.push_back(tl::unexpected(std::move(c.error)));
      continue;
    }
    if (impl_->failed) {
      out.push_back(chain_failed());
      continue;
    }
    const Hash32 hash = c.tx->hash;
    if (auto s = impl_->admit_locked(std::move(*c.tx)); !s) {
      out.push_back(tl::unexpected(s.error()));
    } else {
      out.push_back(hash);
    }
  }
  return out;
}

size_t DevChain::mempool_size() const {
  std::lock_guard lock(impl_->pool_mu);
  return impl_->pending.size();
}

Hash32 DevChain::state_digest() const {
  std::shared_lock lock(impl_->state_mu);
  return impl_->state.digest();
}

const ChainInfo& DevChain::info() const { return impl_->info; }

Result<BlockHeader> DevChain::head() {
  std::shared_lock lock(impl_->state_mu);
  return impl_->head_header;
}

Result<BlockHeader> DevChain::header(BlockNumber number) {
  {
    std::shared_lock lock(impl_->state_mu);
    if (number > impl_->head_header.number) {
      return make_error(Errc::not_found, "block " + std::to_string(number.value) +
                                             " is beyond the head " +
                                             std::to_string(impl_->head_header.number.value));
    }
    if (number == impl_->head_header.number) return impl_->head_header;
  }
  return impl_->store->header(number.value);
}

Result<std::vector<BlockHeader>> DevChain::headers(BlockNumber from, uint32_t count) {
  uint64_t head = 0;
  {
    std::shared_lock lock(impl_->state_mu);
    head = impl_->head_header.number.value;
  }
  std::vector<BlockHeader> out;
  for (uint64_t n = from.value; n <= head && out.size() < count; ++n) {
    auto h = impl_->store->header(n);
    if (!h) return tl::unexpected(h.error());
    out.push_back(*h);
  }
  return out;
}

Subscription DevChain::subscribe_heads(std::function<void(const BlockHeader&)> on_head) {
  return impl_->subscribers.add(std::move(on_head));
}

Result<std::optional<Receipt>> DevChain::receipt(const Hash32& tx_hash) {
  return impl_->store->receipt(tx_hash);
}

Result<uint64_t> DevChain::next_nonce(const NodeId& sender) {
  std::lock_guard pool_lock(impl_->pool_mu);
  std::optional<uint64_t> highest;
  {
    std::shared_lock lock(impl_->state_mu);
    highest = impl_->state.last_nonce(sender);
  }
  if (auto it = impl_->max_pending_nonce.find(sender); it != impl_->max_pending_nonce.end()) {
    highest = std::max(highest.value_or(0), it->second);
  }
  if (!highest) return uint64_t{0};
  if (*highest == UINT64_MAX) {
    return make_error(Errc::conflict, "sender " + sender.hex() + " has used every nonce");
  }
  return *highest + 1;
}

Result<std::optional<BlobRecord>> DevChain::blob_by_id(const BlobId& commitment) {
  std::shared_lock lock(impl_->state_mu);
  return impl_->state.blob_by_id(commitment);
}

Result<std::optional<BlobRecord>> DevChain::blob_by_index(BlobIndex index) {
  std::shared_lock lock(impl_->state_mu);
  return impl_->state.blob_by_index(index);
}

Result<std::vector<BlobRecord>> DevChain::blobs(BlobIndex from, uint32_t count) {
  if (count > kMaxBlobRange) {
    return make_error(Errc::invalid_argument, "a blob range holds at most " +
                                                  std::to_string(kMaxBlobRange) +
                                                  " blobs; asked for " + std::to_string(count));
  }
  std::vector<BlobRecord> out;
  std::shared_lock lock(impl_->state_mu);
  const uint64_t end = impl_->state.blob_count();
  for (uint64_t i = from.value; i < end && out.size() < count; ++i) {
    auto rec = impl_->state.blob_by_index(BlobIndex{i});
    if (!rec) break;
    out.push_back(std::move(*rec));
  }
  return out;
}

Result<uint64_t> DevChain::blob_count() {
  std::shared_lock lock(impl_->state_mu);
  return impl_->state.blob_count();
}

Result<uint64_t> DevChain::blob_count(ShardId shard) {
  std::shared_lock lock(impl_->state_mu);
  return impl_->state.blob_count(shard);
}

Result<std::vector<NodeRecord>> DevChain::nodes(ShardId shard) {
  std::shared_lock lock(impl_->state_mu);
  return impl_->state.nodes(shard);
}

Result<std::vector<ResponseRecord>> DevChain::responses(ShardId shard, Epoch epoch) {
  std::shared_lock lock(impl_->state_mu);
  return impl_->state.responses(shard, epoch);
}

Result<std::vector<Bytes>> DevChain::block_transactions(BlockNumber number) {
  auto body = impl_->store->body(number.value);
  if (!body) return tl::unexpected(body.error());
  return decode_body(*body);
}

Result<std::vector<Event>> DevChain::events(BlockNumber number) {
  auto txs = block_transactions(number);
  if (!txs) return tl::unexpected(txs.error());
  std::vector<Event> out;
  for (const Bytes& raw : *txs) {
    auto r = impl_->store->receipt(tx_hash(raw));
    if (!r) return tl::unexpected(r.error());
    if (!*r) {
      return make_error(Errc::corruption,
                        "dev chain database: receipt missing for a transaction of block " +
                            std::to_string(number.value));
    }
    for (Event& e : (*r)->events) out.push_back(std::move(e));
  }
  return out;
}

Result<BlobInclusion> DevChain::blob_inclusion(BlobIndex index, BlockNumber block) {
  auto h = header(block);
  if (!h) return tl::unexpected(h.error());
  std::shared_lock lock(impl_->state_mu);
  if (index.value >= h->blob_count) {
    return make_error(Errc::not_found, "blob " + std::to_string(index.value) +
                                           " was not registered at block " +
                                           std::to_string(block.value));
  }
  auto proof = impl_->state.blob_proof(index, h->blob_count);
  if (!proof) return tl::unexpected(proof.error());
  return BlobInclusion{*impl_->state.blob_by_index(index), block, std::move(*proof)};
}

Result<ResponseInclusion> DevChain::response_inclusion(const NodeId& node, ShardId shard,
                                                       Epoch epoch) {
  std::shared_lock lock(impl_->state_mu);
  auto record = impl_->state.response(node, shard, epoch);
  if (!record) {
    return make_error(Errc::not_found, "node " + node.hex() + " anchored no response for shard " +
                                           std::to_string(shard.value) + " epoch " +
                                           std::to_string(epoch.value));
  }
  auto proof = impl_->state.response_proof(record->anchored_in, record->leaf_index);
  if (!proof) return tl::unexpected(proof.error());
  return ResponseInclusion{*record, std::move(*proof)};
}

}  // namespace cairn::contracts
