#include "cairn/contracts/chain_client.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <condition_variable>
#include <variant>

#include "cairn/core/log.hpp"

namespace cairn::contracts {
namespace {

// Recent registrations kept in memory (id -> index, size): 256 Ki entries of
// ~100 bytes, about 25 MiB; older ones are looked up on the chain.
constexpr size_t kRecentBlobs = size_t{1} << 18;
// Shards whose node lists are refreshed (0 .. open shards, capped): the
// registry API answers per shard, and a node rarely needs more.
constexpr uint32_t kMaxRefreshShards = 1024;
// A pause that lets registrations arriving together share one batch.
constexpr auto kBatchDelay = std::chrono::milliseconds(2);
// Heads waiting for the client's executor. A client that falls further behind
// (a slow JSON-RPC chain) skips heads: their events are then missed, and
// registrations resolve from receipts at a later head instead.
constexpr size_t kMaxQueuedHeads = 256;

std::string tx_error_message(const Receipt& r) {
  return std::string(tx_status_name(r.status)) + ": " + r.detail;
}

}  // namespace

// Runs the client's work on its executor: a drain of the task queue when
// tasks are posted, the batch and refresh timers. `life` outlives the client
// in handlers still queued on the executor; after stop() none of them
// touches the client.
struct ChainClient::Runner {
  struct Life {
    std::mutex mu;
    std::condition_variable cv;
    bool stopped = false;
    int running = 0;
  };

  Runner(const asio::any_io_executor& ex, Clock& clock)
      : executor(ex), batch_timer(clock.make_timer(ex)), refresh_timer(clock.make_timer(ex)) {}

  // Runs `fn` now unless the client stopped, counted as running so stop()
  // waits for it. Every handler of the client (posted tasks and timer
  // callbacks) goes through here.
  static void guarded(const std::shared_ptr<Life>& life, const std::function<void()>& fn) {
    {
      std::lock_guard lock(life->mu);
      if (life->stopped) return;
      ++life->running;
    }
    fn();
    std::lock_guard lock(life->mu);
    --life->running;
    life->cv.notify_all();
  }

  // Runs `fn` on the executor unless the client stopped first.
  void post(std::function<void()> fn) {
    asio::post(executor, [life = life, fn = std::move(fn)] { guarded(life, fn); });
  }

  // Arms `timer` to run `fn` (guarded) after `delay`.
  void arm(Timer& timer, Duration delay, std::function<void()> fn) {
    timer.expires_after(delay, [life = life, fn = std::move(fn)] { guarded(life, fn); });
  }

  // Marks the client stopped and waits for a handler that is running.
  void stop() {
    std::unique_lock lock(life->mu);
    life->stopped = true;
    life->cv.wait(lock, [&] { return life->running == 0; });
  }

  asio::any_io_executor executor;
  std::shared_ptr<Life> life = std::make_shared<Life>();
  std::unique_ptr<Timer> batch_timer;    // executor only
  std::unique_ptr<Timer> refresh_timer;  // executor only
};

ChainClient::ChainClient(std::shared_ptr<Chain> chain, const SigningKey& identity,
                         ChainClientSettings settings, const asio::any_io_executor& executor,
                         Clock& clock, ChainClientObserver* observer)
    : chain_(std::move(chain)),
      identity_(identity),
      settings_(settings),
      clock_(clock),
      observer_(observer),
      runner_(std::make_unique<Runner>(executor, clock)) {
  static ChainClientObserver ignore_all;
  if (!observer_) observer_ = &ignore_all;
}

ChainClient::~ChainClient() { stop(); }

Status ChainClient::start() {
  auto head = chain_->head();
  if (!head) return tl::unexpected(with_context(head.error(), "reading the chain head"));
  auto nonce = chain_->next_nonce(identity_.public_key());
  if (!nonce) return tl::unexpected(with_context(nonce.error(), "reading this node's nonce"));
  {
    std::lock_guard lock(mu_);
    head_ = *head;
    next_nonce_ = *nonce;
  }
  observer_->head(*head);
  refresh_registry();
  head_sub_ = chain_->subscribe_heads([this](const BlockHeader& h) {
    {
      std::lock_guard lock(mu_);
      if (queued_heads_ >= kMaxQueuedHeads) {
        CAIRN_LOG(log::Level::warn, "chain",
                  "chain client behind: skipping block " << h.number.value);
        return;
      }
      ++queued_heads_;
    }
    post([this, h] {
      {
        std::lock_guard lock(mu_);
        --queued_heads_;
      }
      process_head(h);
    });
  });
  post([this] { arm_refresh(settings_.registry_refresh); });
  return {};
}

void ChainClient::stop() {
  head_sub_.reset();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  runner_->stop();
  // No handler runs any more: the timers may go (the caller is the
  // executor's thread or no thread runs it, see the header).
  runner_->batch_timer.reset();
  runner_->refresh_timer.reset();
  // Whatever still waits is told so, outside the lock.
  std::map<BlobId, Waiting> left;
  {
    std::lock_guard lock(mu_);
    left.swap(waiting_);
    to_submit_.clear();
  }
  for (auto& [id, w] : left) {
    for (auto& d : w.done)
      d(make_error(Errc::cancelled,
                   "node stopping: registration of blob " + id.hex() + " abandoned"));
  }
}

void ChainClient::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
  }
  runner_->post([this, task = std::move(task)] {
    task();
    schedule();
  });
}

void ChainClient::arm_refresh(Duration delay) {
  if (!runner_->refresh_timer) return;
  runner_->arm(*runner_->refresh_timer, delay, [this] {
    refresh_registry();
    schedule();
    arm_refresh(settings_.registry_refresh);
  });
}

// Executor. What is due after a task: a full batch goes at once, a partial
// one after kBatchDelay (so a burst shares one submit_many), then this
// node's RegisterNode, then a registry refresh that a block asked for.
void ChainClient::schedule() {
  for (;;) {
    size_t queued = 0;
    bool reg_due = false;
    bool refresh = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      queued = to_submit_.size();
      reg_due = reg_wanted_ && !reg_tx_;
      refresh = refresh_wanted_;
      refresh_wanted_ = false;
    }
    // Full batches go back to back while the chain admits them; once it
    // puts some back (mempool full, chain unreachable) the rest waits for
    // the batch timer, so heads keep being processed meanwhile.
    if (queued >= settings_.register_batch && submit_registrations()) continue;
    if (queued > 0 && runner_->batch_timer && !runner_->batch_timer->armed()) {
      runner_->arm(*runner_->batch_timer, kBatchDelay, [this] {
        submit_registrations();
        schedule();
      });
    }
    if (reg_due) submit_node_registration();
    if (refresh) {
      // Now, and the periodic one counts again from here.
      refresh_registry();
      arm_refresh(settings_.registry_refresh);
    }
    return;
  }
}

void ChainClient::register_blob(const BlobId& id, uint32_t size, RegisterDone done) {
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
        it->second.since = clock_.now();
        to_submit_.push_back(id);
        // The executor hears of the first of a batch (arms the batch
        // timer) and of a full batch (submitted at once).
        wake = to_submit_.size() == 1 || to_submit_.size() == settings_.register_batch;
      }
      done = nullptr;
    }
  }
  if (done) {
    done(make_error(Errc::cancelled, "node stopping: cannot register blob " + id.hex()));
    return;
  }
  if (wake) post([] {});
}

bool ChainClient::submit_registrations() {
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
  if (batch.empty()) return true;
  const Hash32& chain_id = chain_->info().chain_id;
  std::vector<Bytes> txs;
  txs.reserve(batch.size());
  for (const auto& [id, size] : batch) {
    txs.push_back(make_put_blob(identity_, chain_id, next_nonce_++, id, size));
  }
  auto results = chain_->submit_many(txs);
  observer_->txs_submitted(batch.size());
  std::vector<std::pair<BlobId, Error>> failed;
  bool refetch_nonce = false;
  bool retry = false;
  {
    std::lock_guard lock(mu_);
    const uint64_t at = head_ ? head_->number.value : 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      auto it = waiting_.find(batch[i].first);
      if (it == waiting_.end()) continue;
      const auto& r =
          i < results.size()
              ? results[i]
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
        retry = true;
      } else {
        failed.emplace_back(it->first, r.error());
      }
    }
  }
  if (refetch_nonce) {
    if (auto n = chain_->next_nonce(identity_.public_key()); n)
      next_nonce_ = std::max(next_nonce_, *n);
  }
  for (auto& [id, err] : failed) {
    observer_->tx_failed();
    resolve(id, tl::unexpected(with_context(err, "registering blob " + id.hex())));
  }
  return !retry;
}

void ChainClient::resolve(const BlobId& id, Result<BlobRecord> result) {
  std::vector<RegisterDone> done;
  double seconds = 0;
  {
    std::lock_guard lock(mu_);
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return;
    done = std::move(it->second.done);
    seconds = std::chrono::duration<double>(clock_.now() - it->second.since).count();
    waiting_.erase(it);
  }
  if (result) observer_->blob_registered(seconds);
  for (auto& d : done) d(result);
}

void ChainClient::remember_blob(const BlobRecord& blob) {
  std::lock_guard lock(mu_);
  if (recent_.emplace(blob.commitment, blob).second) {
    recent_order_.push_back(blob.commitment);
    if (recent_order_.size() > kRecentBlobs) {
      recent_.erase(recent_order_.front());
      recent_order_.pop_front();
    }
  }
}

void ChainClient::process_head(const BlockHeader& header) {
  {
    std::lock_guard lock(mu_);
    if (head_ && header.number <= head_->number && header.number.value != 0) {
      // An older or repeated head (a polling client after a restart): only
      // its events matter, and they were processed.
      return;
    }
    head_ = header;
  }
  observer_->head(header);
  if (const uint32_t open = open_shards(); open != last_open_) {
    // A shard opened: its node list matters now (replica caps, reads).
    last_open_ = open;
    std::lock_guard lock(mu_);
    refresh_wanted_ = true;
  }

  auto events = chain_->events(header.number);
  if (!events) {
    CAIRN_LOG(
        log::Level::warn, "chain",
        "reading events of block " << header.number.value << ": " << events.error().to_string());
  } else {
    for (const Event& e : *events) {
      if (const auto* b = std::get_if<BlobRegistered>(&e)) {
        BlobRecord rb{b->index, b->commitment, b->size, header.number};
        remember_blob(rb);
        resolve(rb.commitment, rb);
      } else if (const auto* n = std::get_if<NodeRegistered>(&e)) {
        std::lock_guard lock(mu_);
        if (n->node_id == identity_.public_key() && n->endpoint == reg_endpoint_ &&
            n->shards == reg_shards_) {
          registered_ = true;
        }
        refresh_wanted_ = true;  // refresh the registry after this head
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
      if (it != waiting_.end() &&
          header.number.value - it->second.submitted_at > settings_.resubmit_after_blocks) {
        // Lost (a chain restart dropped its mempool): submit again.
        it->second.tx.reset();
        to_submit_.push_back(id);
      }
      continue;
    }
    const Receipt& r = **receipt;
    if (!r.ok() || !r.blob_index) {
      observer_->tx_failed();
      resolve(id, make_error(Errc::conflict,
                             "registering blob " + id.hex() + ": " + tx_error_message(r)));
      continue;
    }
    auto rec = chain_->blob_by_index(*r.blob_index);
    if (!rec || !*rec) continue;  // transient: next head
    const BlobRecord& rb = **rec;
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
        CAIRN_LOG(log::Level::error, "chain",
                  "RegisterNode rejected: " << tx_error_message(**receipt));
        observer_->tx_failed();
        reg_wanted_ = false;
      }
    } else if (receipt) {
      std::lock_guard lock(mu_);
      if (header.number.value - reg_submitted_at_ > settings_.resubmit_after_blocks)
        reg_tx_.reset();
    }
  }
  for (auto& l : head_listeners_) l(header);
}

void ChainClient::set_registration(std::string endpoint, std::vector<ShardId> shards) {
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
  post([] {});
}

bool ChainClient::registered() const {
  std::lock_guard lock(mu_);
  return registered_;
}

void ChainClient::submit_tx(TxBuilder build, std::function<void(Result<Hash32>)> done) {
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
    observer_->txs_submitted(1);
    if (!r) {
      observer_->tx_failed();
      if (r.error().code == Errc::conflict) {
        if (auto n = chain_->next_nonce(identity_.public_key()); n)
          next_nonce_ = std::max(next_nonce_, *n);
      }
    }
    done(std::move(r));
  });
}

void ChainClient::submit_node_registration() {
  std::string endpoint;
  std::vector<ShardId> shards;
  {
    std::lock_guard lock(mu_);
    if (!reg_wanted_ || reg_tx_) return;
    endpoint = reg_endpoint_;
    shards = reg_shards_;
  }
  // Already registered exactly so (a restart): nothing to submit.
  if (auto known = node(identity_.public_key());
      known && known->endpoint == endpoint && known->shards == shards) {
    std::lock_guard lock(mu_);
    registered_ = true;
    reg_tx_ = Hash32{};
    return;
  }
  Bytes tx =
      make_register_node(identity_, chain_->info().chain_id, next_nonce_++, endpoint, shards);
  auto r = chain_->submit(tx);
  observer_->txs_submitted(1);
  if (!r) {
    observer_->tx_failed();
    CAIRN_LOG(log::Level::warn, "chain",
              "RegisterNode not admitted (retrying): " << r.error().to_string());
    if (r.error().code == Errc::conflict) {
      if (auto n = chain_->next_nonce(identity_.public_key()); n)
        next_nonce_ = std::max(next_nonce_, *n);
    }
  }
  std::lock_guard lock(mu_);
  if (r) {
    reg_tx_ = *r;
    reg_submitted_at_ = head_ ? head_->number.value : 0;
    CAIRN_LOG(
        log::Level::info, "chain",
        "RegisterNode submitted: endpoint " << endpoint << ", " << shards.size() << " shard(s)");
  } else {
    // The all-zero hash marks "not admitted": refresh_registry() clears it,
    // so the next attempt comes with the next registry refresh.
    reg_tx_ = Hash32{};
    reg_submitted_at_ = 0;
    registered_ = false;
  }
}

void ChainClient::refresh_registry() {
  const uint64_t open = open_shards();
  const uint64_t end = std::min<uint64_t>(open + settings_.refresh_ahead_shards, kMaxRefreshShards);
  std::map<uint32_t, std::vector<NodeRecord>> fresh;
  for (uint32_t s = 0; s < end; ++s) {
    auto nodes = chain_->nodes(ShardId{s});
    if (!nodes) {
      CAIRN_LOG(log::Level::warn, "chain",
                "refreshing the node registry: " << nodes.error().to_string());
      break;
    }
    fresh[s] = std::move(*nodes);
  }
  std::lock_guard lock(mu_);
  for (auto& [s, list] : fresh) shard_nodes_[s] = std::move(list);
  // A failed RegisterNode submission is retried here.
  if (reg_wanted_ && reg_tx_ && *reg_tx_ == Hash32{} && !registered_) reg_tx_.reset();
}

std::vector<NodeRecord> ChainClient::nodes(ShardId shard) const {
  std::lock_guard lock(mu_);
  auto it = shard_nodes_.find(shard.value);
  return it == shard_nodes_.end() ? std::vector<NodeRecord>{} : it->second;
}

size_t ChainClient::serving_count(ShardId shard, const NodeId& self, bool self_serves) const {
  std::lock_guard lock(mu_);
  size_t count = 0;
  bool self_listed = false;
  if (auto it = shard_nodes_.find(shard.value); it != shard_nodes_.end()) {
    count = it->second.size();
    for (const auto& n : it->second) self_listed = self_listed || n.node_id == self;
  }
  return count + (self_serves && !self_listed ? 1 : 0);
}

std::optional<NodeRecord> ChainClient::node(const NodeId& id) const {
  std::lock_guard lock(mu_);
  for (const auto& [s, list] : shard_nodes_) {
    for (const auto& n : list) {
      if (n.node_id == id) return n;
    }
  }
  return std::nullopt;
}

std::optional<BlobRecord> ChainClient::recent_blob(const BlobId& id) const {
  std::lock_guard lock(mu_);
  auto it = recent_.find(id);
  if (it == recent_.end()) return std::nullopt;
  return it->second;
}

Result<BlobRecord> ChainClient::lookup_blob(const BlobId& id) {
  if (auto known = recent_blob(id)) return *known;
  auto rec = chain_->blob_by_id(id);
  if (!rec)
    return tl::unexpected(
        with_context(rec.error(), "looking up blob " + id.hex() + " on the chain"));
  if (!*rec)
    return make_error(Errc::not_found, "blob " + id.hex() + " is not registered on the chain");
  const BlobRecord& rb = **rec;
  remember_blob(rb);
  return rb;
}

Result<BlobRecord> ChainClient::lookup_index(BlobIndex index) {
  auto rec = chain_->blob_by_index(index);
  if (!rec)
    return tl::unexpected(
        with_context(rec.error(), "looking up blob index " + std::to_string(index.value)));
  if (!*rec)
    return make_error(Errc::not_found,
                      "no blob registered at index " + std::to_string(index.value));
  const BlobRecord& rb = **rec;
  remember_blob(rb);
  return rb;
}

std::optional<BlockHeader> ChainClient::head() const {
  std::lock_guard lock(mu_);
  return head_;
}

uint32_t ChainClient::open_shards() const {
  std::lock_guard lock(mu_);
  const uint64_t count = head_ ? head_->blob_count : 0;
  const uint64_t per = std::max<uint64_t>(1, chain_->info().params.blobs_per_shard);
  return static_cast<uint32_t>(std::min<uint64_t>(count / per + 1, UINT32_MAX));
}

void ChainClient::on_head(HeadListener listener) { head_listeners_.push_back(std::move(listener)); }

}  // namespace cairn::contracts
