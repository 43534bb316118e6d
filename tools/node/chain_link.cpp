#include "node/chain_link.hpp"

#include <algorithm>
#include <variant>

#include "cairn/core/log.hpp"
#include "cairn/p2p/identity.hpp"

namespace cairn::node {
namespace {

// Recent registrations kept in memory (id -> index, size): 256 Ki entries of
// ~100 bytes, about 25 MiB; older ones are looked up on the chain.
constexpr size_t kRecentBlobs = size_t{1} << 18;
// Shards whose node lists are refreshed (0 .. open shards, capped): the
// registry API answers per shard, and a node rarely needs more.
constexpr uint32_t kMaxRefreshShards = 1024;
// A pause that lets registrations arriving together share one batch.
constexpr auto kBatchDelay = std::chrono::milliseconds(2);
// Heads waiting for the chain thread. A thread that falls further behind
// (a slow JSON-RPC chain) skips heads: their events are then missed, and
// registrations resolve from receipts at a later head instead.
constexpr size_t kMaxQueuedHeads = 256;

std::string tx_error_message(const contracts::Receipt& r) {
  return std::string(contracts::tx_status_name(r.status)) + ": " + r.detail;
}

}  // namespace

ChainLink::ChainLink(std::shared_ptr<contracts::Chain> chain, const SigningKey& identity,
                     ChainLinkSettings settings, metrics::Registry& metrics)
    : chain_(std::move(chain)),
      identity_(identity),
      settings_(settings),
      txs_submitted_(metrics.counter("cairn_chain_txs_submitted_total",
                                     "Transactions this node submitted to the chain.")),
      txs_failed_(metrics.counter("cairn_chain_txs_failed_total",
                                  "Transactions refused at admission or rejected by the contract.")),
      blobs_registered_(metrics.counter("cairn_chain_blob_registrations_total",
                                        "Blob registrations (PutBlob) this node saw resolve to an index.")),
      head_gauge_(metrics.gauge("cairn_chain_head", "Number of the latest block seen.")),
      head_time_gauge_(metrics.gauge("cairn_chain_head_timestamp_seconds",
                                     "Sequencer timestamp of the latest block seen, Unix seconds (time() minus it is the head's age).")),
      register_latency_(metrics.histogram("cairn_chain_register_seconds",
                                          "Time from asking to register a blob to knowing its index.",
                                          metrics::Histogram::latency_buckets())) {}

ChainLink::~ChainLink() { stop(); }

Status ChainLink::start() {
  auto head = chain_->head();
  if (!head) return tl::unexpected(with_context(head.error(), "reading the chain head"));
  auto nonce = chain_->next_nonce(identity_.public_key());
  if (!nonce) return tl::unexpected(with_context(nonce.error(), "reading this node's nonce"));
  {
    std::lock_guard lock(mu_);
    head_ = *head;
    next_nonce_ = *nonce;
    head_gauge_.set(static_cast<double>(head->number.value));
    head_time_gauge_.set(static_cast<double>(head->timestamp_ms) / 1000.0);
  }
  refresh_registry();
  head_sub_ = chain_->subscribe_heads([this](const contracts::BlockHeader& h) {
    {
      std::lock_guard lock(mu_);
      if (tasks_.size() >= kMaxQueuedHeads) {
        CAIRN_LOG(log::Level::warn, "node", "chain thread behind: skipping block " << h.number.value);
        return;
      }
    }
    post([this, h] { process_head(h); });
  });
  thread_ = std::thread([this] { run(); });
  return {};
}

void ChainLink::stop() {
  head_sub_.reset();
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Whatever still waits is told so, outside the lock.
  std::map<BlobId, Waiting> left;
  {
    std::lock_guard lock(mu_);
    left.swap(waiting_);
    to_submit_.clear();
    tasks_.clear();
  }
  for (auto& [id, w] : left) {
    for (auto& d : w.done) d(make_error(Errc::cancelled, "node stopping: registration of blob " + id.hex() + " abandoned"));
  }
}

void ChainLink::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_all();
}

void ChainLink::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const bool reg_due = reg_wanted_ && !reg_tx_;
    if (tasks_.empty() && to_submit_.empty() && !reg_due) {
      cv_.wait_until(lock, next_refresh_, [&] {
        return stopping_ || !tasks_.empty() || !to_submit_.empty() || (reg_wanted_ && !reg_tx_);
      });
      if (stopping_) break;
    }
    if (!tasks_.empty()) {
      auto tasks = std::move(tasks_);
      tasks_.clear();
      lock.unlock();
      for (auto& t : tasks) t();
      lock.lock();
      continue;  // heads first: they resolve waiting registrations
    }
    if (!to_submit_.empty()) {
      // Let a burst gather into one batch unless the batch is already full.
      if (to_submit_.size() < settings_.register_batch) {
        cv_.wait_for(lock, kBatchDelay, [&] { return stopping_ || to_submit_.size() >= settings_.register_batch; });
        if (stopping_) break;
      }
      lock.unlock();
      submit_registrations();
      lock.lock();
      continue;
    }
    if (reg_wanted_ && !reg_tx_) {
      lock.unlock();
      submit_node_registration();
      lock.lock();
      continue;
    }
    if (std::chrono::steady_clock::now() >= next_refresh_) {
      lock.unlock();
      refresh_registry();
      lock.lock();
    }
  }
}

void ChainLink::register_blob(const BlobId& id, uint32_t size, RegisterDone done) {
  if (auto known = recent_blob(id)) {
    if (known->size == size) {
      done(*known);
      return;
    }
  }
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      // Told outside the lock below.
    } else {
      auto [it, inserted] = waiting_.try_emplace(id);
      it->second.done.push_back(std::move(done));
      if (inserted) {
        it->second.id = id;
        it->second.size = size;
        it->second.since = std::chrono::steady_clock::now();
        to_submit_.push_back(id);
        wake = true;
      }
      done = nullptr;
    }
  }
  if (done) {
    done(make_error(Errc::cancelled, "node stopping: cannot register blob " + id.hex()));
    return;
  }
  if (wake) cv_.notify_all();
}

void ChainLink::submit_registrations() {
  std::vector<std::pair<BlobId, uint32_t>> batch;
  {
    std::lock_guard lock(mu_);
    const size_t n = std::min<size_t>(to_submit_.size(), settings_.register_batch);
    for (size_t i = 0; i < n; ++i) {
      auto it = waiting_.find(to_submit_[i]);
      if (it != waiting_.end() && !it->second.tx) batch.emplace_back(it->first, it->second.size);
    }
    to_submit_.erase(to_submit_.begin(), to_submit_.begin() + static_cast<std::ptrdiff_t>(n));
  }
  if (batch.empty()) return;
  const Hash32& chain_id = chain_->info().chain_id;
  std::vector<Bytes> txs;
  txs.reserve(batch.size());
  for (const auto& [id, size] : batch) {
    txs.push_back(contracts::make_put_blob(identity_, chain_id, next_nonce_++, id, size));
  }
  auto results = chain_->submit_many(txs);
  txs_submitted_.inc(batch.size());
  std::vector<std::pair<BlobId, Error>> failed;
  bool refetch_nonce = false;
  {
    std::lock_guard lock(mu_);
    const uint64_t at = head_ ? head_->number.value : 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      auto it = waiting_.find(batch[i].first);
      if (it == waiting_.end()) continue;
      const auto& r = i < results.size() ? results[i]
                                         : Result<Hash32>(make_error(Errc::internal, "chain returned fewer results"));
      if (r) {
        it->second.tx = *r;
        it->second.submitted_at = at;
      } else if (r.error().code == Errc::busy || r.error().code == Errc::conflict ||
                 r.error().code == Errc::timeout || r.error().code == Errc::io_error) {
        // Mempool full, a nonce race, or the chain briefly unreachable: try
        // again with the next batch (a fresh nonce).
        if (r.error().code == Errc::conflict) refetch_nonce = true;
        to_submit_.push_back(it->first);
      } else {
        failed.emplace_back(it->first, r.error());
      }
    }
  }
  if (refetch_nonce) {
    if (auto n = chain_->next_nonce(identity_.public_key()); n) next_nonce_ = std::max(next_nonce_, *n);
  }
  for (auto& [id, err] : failed) {
    txs_failed_.inc();
    resolve(id, tl::unexpected(with_context(err, "registering blob " + id.hex())));
  }
}

void ChainLink::resolve(const BlobId& id, Result<contracts::BlobRecord> result) {
  std::vector<RegisterDone> done;
  {
    std::lock_guard lock(mu_);
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return;
    done = std::move(it->second.done);
    if (result) {
      register_latency_.observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.since).count());
    }
    waiting_.erase(it);
  }
  if (result) blobs_registered_.inc();
  for (auto& d : done) d(result);
}

void ChainLink::remember_blob(const contracts::BlobRecord& blob) {
  std::lock_guard lock(mu_);
  if (recent_.emplace(blob.commitment, blob).second) {
    recent_order_.push_back(blob.commitment);
    if (recent_order_.size() > kRecentBlobs) {
      recent_.erase(recent_order_.front());
      recent_order_.pop_front();
    }
  }
}

void ChainLink::process_head(const contracts::BlockHeader& header) {
  {
    std::lock_guard lock(mu_);
    if (head_ && header.number <= head_->number && header.number.value != 0) {
      // An older or repeated head (a polling client after a restart): only
      // its events matter, and they were processed.
      return;
    }
    head_ = header;
  }
  head_gauge_.set(static_cast<double>(header.number.value));
  head_time_gauge_.set(static_cast<double>(header.timestamp_ms) / 1000.0);
  if (const uint32_t open = open_shards(); open != last_open_) {
    // A shard opened: its node list matters now (replica caps, reads).
    last_open_ = open;
    std::lock_guard lock(mu_);
    next_refresh_ = {};
  }

  auto events = chain_->events(header.number);
  if (!events) {
    CAIRN_LOG(log::Level::warn, "node", "reading events of block " << header.number.value << ": "
                                                                     << events.error().to_string());
  } else {
    for (const contracts::Event& e : *events) {
      if (const auto* b = std::get_if<contracts::BlobRegistered>(&e)) {
        contracts::BlobRecord rb{b->index, b->commitment, b->size, header.number};
        remember_blob(rb);
        resolve(rb.commitment, rb);
      } else if (const auto* n = std::get_if<contracts::NodeRegistered>(&e)) {
        std::lock_guard lock(mu_);
        if (n->node_id == identity_.public_key() && n->endpoint == reg_endpoint_ && n->shards == reg_shards_) {
          registered_ = true;
        }
        next_refresh_ = {};  // refresh the registry at the next idle moment
      }
    }
  }

  // Registrations still waiting whose transaction should be in a block by
  // now: PutBlob of a commitment registered earlier emits no event (the
  // receipt carries the index), a rejected one only a receipt.
  std::vector<std::pair<BlobId, Hash32>> check;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, w] : waiting_) {
      if (w.tx && w.submitted_at < header.number.value) check.emplace_back(id, *w.tx);
    }
  }
  for (const auto& [id, tx] : check) {
    auto receipt = chain_->receipt(tx);
    if (!receipt) continue;  // transient: next head
    if (!*receipt) {
      std::lock_guard lock(mu_);
      auto it = waiting_.find(id);
      if (it != waiting_.end() && header.number.value - it->second.submitted_at > settings_.resubmit_after_blocks) {
        // Lost (a chain restart dropped its mempool): submit again.
        it->second.tx.reset();
        to_submit_.push_back(id);
      }
      continue;
    }
    const contracts::Receipt& r = **receipt;
    if (!r.ok() || !r.blob_index) {
      txs_failed_.inc();
      resolve(id, make_error(Errc::conflict, "registering blob " + id.hex() + ": " + tx_error_message(r)));
      continue;
    }
    auto rec = chain_->blob_by_index(*r.blob_index);
    if (!rec || !*rec) continue;  // transient: next head
    contracts::BlobRecord rb = **rec;
    remember_blob(rb);
    resolve(id, rb);
  }

  // Our own RegisterNode.
  std::optional<Hash32> reg_tx;
  {
    std::lock_guard lock(mu_);
    if (reg_tx_ && !registered_ && reg_submitted_at_ < header.number.value) reg_tx = reg_tx_;
  }
  if (reg_tx) {
    auto receipt = chain_->receipt(*reg_tx);
    if (receipt && *receipt) {
      std::lock_guard lock(mu_);
      if ((*receipt)->ok()) {
        registered_ = true;
      } else {
        CAIRN_LOG(log::Level::error, "node", "RegisterNode rejected: " << tx_error_message(**receipt));
        txs_failed_.inc();
        reg_wanted_ = false;
      }
    } else if (receipt) {
      std::lock_guard lock(mu_);
      if (header.number.value - reg_submitted_at_ > settings_.resubmit_after_blocks) reg_tx_.reset();
    }
  }
  for (auto& l : head_listeners_) l(header);
}

void ChainLink::set_registration(std::string endpoint, std::vector<ShardId> shards) {
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  {
    std::lock_guard lock(mu_);
    if (reg_wanted_ && endpoint == reg_endpoint_ && shards == reg_shards_) return;
    reg_endpoint_ = std::move(endpoint);
    reg_shards_ = std::move(shards);
    reg_wanted_ = true;
    reg_tx_.reset();
    registered_ = false;
  }
  cv_.notify_all();
}

bool ChainLink::registered() const {
  std::lock_guard lock(mu_);
  return registered_;
}

void ChainLink::submit_tx(TxBuilder build, std::function<void(Result<Hash32>)> done) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      done(make_error(Errc::cancelled, "node stopping: transaction not submitted"));
      return;
    }
  }
  post([this, build = std::move(build), done = std::move(done)] {
    const Bytes tx = build(next_nonce_++);
    auto r = chain_->submit(tx);
    txs_submitted_.inc();
    if (!r) {
      txs_failed_.inc();
      if (r.error().code == Errc::conflict) {
        if (auto n = chain_->next_nonce(identity_.public_key()); n) next_nonce_ = std::max(next_nonce_, *n);
      }
    }
    done(std::move(r));
  });
}

void ChainLink::submit_node_registration() {
  std::string endpoint;
  std::vector<ShardId> shards;
  {
    std::lock_guard lock(mu_);
    if (!reg_wanted_ || reg_tx_) return;
    endpoint = reg_endpoint_;
    shards = reg_shards_;
  }
  // Already registered exactly so (a restart): nothing to submit.
  if (auto known = node(identity_.public_key()); known && known->endpoint == endpoint && known->shards == shards) {
    std::lock_guard lock(mu_);
    registered_ = true;
    reg_tx_ = Hash32{};
    return;
  }
  Bytes tx = contracts::make_register_node(identity_, chain_->info().chain_id, next_nonce_++, endpoint, shards);
  auto r = chain_->submit(tx);
  txs_submitted_.inc();
  if (!r) {
    txs_failed_.inc();
    CAIRN_LOG(log::Level::warn, "node", "RegisterNode not admitted (retrying): " << r.error().to_string());
    if (r.error().code == Errc::conflict) {
      if (auto n = chain_->next_nonce(identity_.public_key()); n) next_nonce_ = std::max(next_nonce_, *n);
    }
  }
  std::lock_guard lock(mu_);
  if (r) {
    reg_tx_ = *r;
    reg_submitted_at_ = head_ ? head_->number.value : 0;
    CAIRN_LOG(log::Level::info, "node", "RegisterNode submitted: endpoint " << endpoint << ", "
                                                                            << shards.size() << " shard(s)");
  } else {
    // The all-zero hash marks "not admitted": refresh_registry() clears it,
    // so the next attempt comes with the next registry refresh.
    reg_tx_ = Hash32{};
    reg_submitted_at_ = 0;
    registered_ = false;
  }
}

void ChainLink::refresh_registry() {
  const uint64_t open = open_shards();
  const uint64_t end = std::min<uint64_t>(open + settings_.refresh_ahead_shards, kMaxRefreshShards);
  std::map<uint32_t, std::vector<contracts::NodeRecord>> fresh;
  for (uint32_t s = 0; s < end; ++s) {
    auto nodes = chain_->nodes(ShardId{s});
    if (!nodes) {
      CAIRN_LOG(log::Level::warn, "node", "refreshing the node registry: " << nodes.error().to_string());
      break;
    }
    fresh[s] = std::move(*nodes);
  }
  std::lock_guard lock(mu_);
  for (auto& [s, list] : fresh) shard_nodes_[s] = std::move(list);
  next_refresh_ = std::chrono::steady_clock::now() + settings_.registry_refresh;
  // A failed RegisterNode submission is retried here.
  if (reg_wanted_ && reg_tx_ && *reg_tx_ == Hash32{} && !registered_) reg_tx_.reset();
}

std::vector<contracts::NodeRecord> ChainLink::nodes(ShardId shard) const {
  std::lock_guard lock(mu_);
  auto it = shard_nodes_.find(shard.value);
  return it == shard_nodes_.end() ? std::vector<contracts::NodeRecord>{} : it->second;
}

size_t ChainLink::serving_count(ShardId shard, const NodeId& self, bool self_serves) const {
  std::lock_guard lock(mu_);
  size_t count = 0;
  bool self_listed = false;
  if (auto it = shard_nodes_.find(shard.value); it != shard_nodes_.end()) {
    count = it->second.size();
    for (const auto& n : it->second) self_listed = self_listed || n.node_id == self;
  }
  return count + (self_serves && !self_listed ? 1 : 0);
}

std::optional<contracts::NodeRecord> ChainLink::node(const NodeId& id) const {
  std::lock_guard lock(mu_);
  for (const auto& [s, list] : shard_nodes_) {
    for (const auto& n : list) {
      if (n.node_id == id) return n;
    }
  }
  return std::nullopt;
}

std::optional<contracts::BlobRecord> ChainLink::recent_blob(const BlobId& id) const {
  std::lock_guard lock(mu_);
  auto it = recent_.find(id);
  if (it == recent_.end()) return std::nullopt;
  return it->second;
}

Result<contracts::BlobRecord> ChainLink::lookup_blob(const BlobId& id) {
  if (auto known = recent_blob(id)) return *known;
  auto rec = chain_->blob_by_id(id);
  if (!rec) return tl::unexpected(with_context(rec.error(), "looking up blob " + id.hex() + " on the chain"));
  if (!*rec) return make_error(Errc::not_found, "blob " + id.hex() + " is not registered on the chain");
  contracts::BlobRecord rb = **rec;
  remember_blob(rb);
  return rb;
}

Result<contracts::BlobRecord> ChainLink::lookup_index(BlobIndex index) {
  auto rec = chain_->blob_by_index(index);
  if (!rec) return tl::unexpected(with_context(rec.error(), "looking up blob index " + std::to_string(index.value)));
  if (!*rec) return make_error(Errc::not_found, "no blob registered at index " + std::to_string(index.value));
  contracts::BlobRecord rb = **rec;
  remember_blob(rb);
  return rb;
}

std::optional<contracts::BlockHeader> ChainLink::head() const {
  std::lock_guard lock(mu_);
  return head_;
}

uint32_t ChainLink::open_shards() const {
  std::lock_guard lock(mu_);
  const uint64_t count = head_ ? head_->blob_count : 0;
  const uint64_t per = std::max<uint64_t>(1, chain_->info().params.blobs_per_shard);
  return static_cast<uint32_t>(std::min<uint64_t>(count / per + 1, UINT32_MAX));
}

void ChainLink::on_head(HeadListener listener) { head_listeners_.push_back(std::move(listener)); }

Result<std::vector<p2p::PeerRecord>> ChainLink::endpoints_for_shard(ShardId shard) {
  std::vector<p2p::PeerRecord> out;
  {
    std::lock_guard lock(mu_);
    auto it = shard_nodes_.find(shard.value);
    if (it != shard_nodes_.end()) {
      for (const auto& n : it->second) {
        if (n.node_id == identity_.public_key() || n.endpoint.empty()) continue;
        std::vector<ShardId> shards = n.shards;
        if (shards.size() > p2p::kMaxPxShards) shards.resize(p2p::kMaxPxShards);
        out.push_back(p2p::PeerRecord{n.node_id, n.endpoint, std::move(shards)});
      }
    }
  }
  if (out.empty()) return make_error(Errc::not_found, "no node registered for shard " + std::to_string(shard.value));
  return out;
}

}  // namespace cairn::node
