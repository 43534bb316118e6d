#include "node/challenger.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>

#include "cairn/contracts/chain.hpp"
#include "cairn/contracts/tx.hpp"
#include "cairn/core/log.hpp"
#include "cairn/p2p/gossip_node.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/sampling/assemble.hpp"
#include "cairn/sampling/proof.hpp"
#include "cairn/sampling/walk.hpp"
#include "cairn/shards/prover.hpp"
#include "node/wire.hpp"

namespace cairn::node {

namespace {

using SteadyClock = std::chrono::steady_clock;

// How long a proof request waits for the bodies of anchored responses this
// node lacks (asked of their nodes) before assembling without them.
constexpr auto kProofFetchWait = std::chrono::seconds(3);

std::string short_id(const NodeId& id) { return id.hex().substr(0, 16); }

std::string epoch_name(ShardId shard, Epoch epoch) {
  return "shard " + std::to_string(shard.value) + " epoch " + std::to_string(epoch.value);
}

// This node's replica in its store, with blobs_root paths from the chain.
shards::StoreProver store_prover(const shards::Store& store, const NodeId& self, contracts::Chain& chain) {
  return shards::StoreProver(store, self, [&chain](BlobIndex index, BlockNumber block, uint64_t) {
    auto inc = chain.blob_inclusion(index, block);
    if (!inc) return Result<erasure::MerkleProof>(tl::unexpected(inc.error()));
    return Result<erasure::MerkleProof>(std::move(inc->proof));
  });
}

double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

}  // namespace

struct Challenger::Own {
  enum class Phase { walking, submit, submitting, anchoring, opening, done, failed };
  ShardId shard;
  Epoch epoch;
  Phase phase = Phase::walking;
  std::shared_ptr<sampling::WalkTranscript> transcript;
  Hash32 commitment{};
  std::optional<Hash32> tx;
  uint64_t submitted_at = 0;  // head when the anchor was admitted
  BlockNumber anchored_in{};
  uint64_t blob_count = 0;
  double walk_seconds = 0;
  bool no_blobs = false;
  std::string detail;
};

Challenger::Challenger(NodeContext& ctx)
    : ctx_(ctx),
      epoch_blocks_(std::max<uint32_t>(1, ctx.params.epoch_blocks)),
      deadline_blocks_(ctx.params.deadline_blocks),
      produced_(ctx.metrics.counter("cairn_challenge_responses_produced_total",
                                    "Walks of this node's replica completed (commitments to anchor).")),
      anchored_(ctx.metrics.counter("cairn_challenge_responses_anchored_total",
                                    "This node's responses anchored on chain within the deadline.")),
      own_failed_(ctx.metrics.counter("cairn_challenge_own_failures_total",
                                      "Epochs in which this node produced no anchored, opened response.")),
      verified_(
          ctx.metrics.counter("cairn_challenge_responses_verified_total", "Peers' responses verified valid and kept.")),
      invalid_(ctx.metrics.counter("cairn_challenge_responses_invalid_total",
                                   "Peers' responses that failed verification (the node was charged).")),
      missing_(ctx.metrics.counter("cairn_challenge_responses_missing_total",
                                   "Registered nodes of a served shard with no valid anchored response in an epoch.")),
      fetched_(ctx.metrics.counter("cairn_challenge_responses_fetched_total",
                                   "Peers' responses asked of their nodes because gossip did not bring them.")),
      dropped_(ctx.metrics.counter("cairn_challenge_responses_dropped_total",
                                   "Gossiped responses dropped because the verification queue was full.")),
      walk_seconds_(ctx.metrics.histogram("cairn_challenge_walk_seconds",
                                          "Time of this node's sequential walk over its replica of one shard.",
                                          metrics::Histogram::latency_buckets())),
      verify_seconds_(ctx.metrics.histogram("cairn_challenge_verify_seconds",
                                            "Time to verify one peer's response (chain reads included).",
                                            metrics::Histogram::latency_buckets())),
      own_pool_(WorkerPoolSettings{1, kMaxOwnPhases}) {
  // Fixed by the chain's genesis: what a dashboard draws the walk time against.
  const double block_seconds = static_cast<double>(ctx.params.block_time_ms) / 1000.0;
  ctx.metrics
      .gauge("cairn_challenge_deadline_seconds",
             "Time an epoch's response has to be anchored in (deadline_blocks x block time).")
      .set(static_cast<double>(ctx.params.deadline_blocks) * block_seconds);
  ctx.metrics.gauge("cairn_challenge_epoch_seconds", "Length of a challenge epoch (epoch_blocks x block time).")
      .set(static_cast<double>(epoch_blocks_) * block_seconds);
  ctx.metrics.gauge_fn("cairn_challenge_verify_queue", "Peers' responses waiting for or under verification.", [this] {
    std::lock_guard lock(mu_);
    return static_cast<double>(verifying_);
  });
}

Challenger::~Challenger() { ctx_.metrics.remove_fns("cairn_challenge_verify_queue"); }

void Challenger::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  // Queued phases are cancelled (their cancel callbacks fail the epoch); a
  // running one finishes first.
  (void)own_pool_.shutdown(WorkerPool::Shutdown::cancel);
}

// ---- the driver ----

void Challenger::on_head(const contracts::BlockHeader& head) {
  head_number_.store(head.number.value);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    head_ = head;
    if (driving_) {
      again_ = true;
      return;
    }
    driving_ = true;
    again_ = false;
  }
  schedule();
}

void Challenger::schedule() {
  const auto released = [this] {
    std::lock_guard lock(mu_);
    driving_ = false;
  };
  // Busy pool: the next head schedules again (nothing is lost: every step
  // works from the latest head).
  if (auto st = own_pool_.try_submit([this] { drive(); }, released); !st) released();
}

void Challenger::drive() {
  for (;;) {
    contracts::BlockHeader head;
    {
      std::lock_guard lock(mu_);
      if (stopping_ || !head_) {
        driving_ = false;
        return;
      }
      head = *head_;
      again_ = false;
    }
    step(head);
    std::lock_guard lock(mu_);
    if (!again_ || stopping_) {
      driving_ = false;
      return;
    }
  }
}

std::vector<ShardId> Challenger::open_served_shards() const {
  const uint32_t open = ctx_.chain.open_shards();
  std::vector<ShardId> out;
  for (ShardId s : ctx_.served.current(open)) {
    if (s.value < open) out.push_back(s);
  }
  return out;
}

void Challenger::step(const contracts::BlockHeader& head) {
  const uint64_t n = head.number.value;
  if (first_head_ == UINT64_MAX) first_head_ = n;
  const uint64_t e = n / epoch_blocks_;
  const uint64_t off = n % epoch_blocks_;
  const auto& cs = ctx_.settings.challenge;
  const std::vector<ShardId> shards = open_served_shards();

  // 1. A new epoch: walk every served shard. An anchor needs a block
  //    e*E < b <= e*E + D, so starting later than e*E + D - 1 is pointless.
  if (cs.enabled && off < deadline_blocks_) {
    for (ShardId s : shards) {
      std::shared_ptr<Own> own;
      {
        std::lock_guard lock(mu_);
        auto& slot = own_[{s.value, e}];
        if (slot) continue;
        slot = std::make_shared<Own>();
        slot->shard = s;
        slot->epoch = Epoch{e};
        own = slot;
      }
      start_walk(own);
    }
  }

  // 2. Anchors in flight: receipts, resubmissions.
  std::vector<std::shared_ptr<Own>> owns;
  {
    std::lock_guard lock(mu_);
    for (auto& [key, own] : own_) owns.push_back(own);
  }
  for (auto& own : owns) {
    Own::Phase phase;
    {
      std::lock_guard lock(mu_);
      phase = own->phase;
    }
    const uint64_t window_end = own->epoch.value * epoch_blocks_ + deadline_blocks_;
    if (phase == Own::Phase::submit) {
      if (n < window_end) {
        submit_anchor(own);
      } else {
        std::lock_guard lock(mu_);
        fail(*own, "the anchor was not admitted before the deadline (block " + std::to_string(window_end) + ")" +
                       (own->detail.empty() ? "" : ": " + own->detail));
      }
    } else if (phase == Own::Phase::anchoring) {
      check_anchor(own, n);
    }
  }

  // 3. Peers' responses that waited for this node's chain view.
  std::vector<std::pair<std::shared_ptr<sampling::Response>, Done>> ready;
  {
    std::lock_guard lock(mu_);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->first->anchor_block.value <= n) {
        ready.push_back(std::move(*it));
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Verified on the worker pool like any other (this thread is kept for
  // this node's own deadline work); they stay counted in verifying_.
  for (auto& [r, done] : ready) (void)submit_verify(std::move(r), std::move(done));

  // 3b. One block before an epoch settles, ask for the bodies of anchored
  //     responses that gossip did not bring.
  const uint64_t fetch_at = deadline_blocks_ + 1;
  if (n >= fetch_at && (n - fetch_at) % epoch_blocks_ == 0 && cs.settle_blocks > 1) {
    const Epoch ef{(n - fetch_at) / epoch_blocks_};
    for (ShardId s : shards) fetch_missing(s, ef, {});
  }

  // 4. Record the epochs whose results have settled.
  const uint64_t settle = deadline_blocks_ + cs.settle_blocks;
  if (n >= settle) {
    const uint64_t done = (n - settle) / epoch_blocks_;
    for (ShardId s : shards) {
      uint64_t from = done;
      {
        std::lock_guard lock(mu_);
        if (auto it = evaluated_.find(s.value); it != evaluated_.end()) {
          if (it->second >= done) continue;
          from = std::max(it->second + 1, done > 0 ? done - 1 : 0);  // at most two behind
        }
        evaluated_[s.value] = done;
      }
      for (uint64_t ev = from; ev <= done; ++ev) {
        // An epoch that began before this node followed the chain: it saw
        // none of its gossip and has no result of its own to report.
        if (ev * epoch_blocks_ >= first_head_) evaluate(s, Epoch{ev});
      }
      prune(s, Epoch{e});
    }
  }
}

// ---- this node's response ----

void Challenger::start_walk(const std::shared_ptr<Own>& own) {
  run_phase(own, "the walk", [this, own] { walk(own); });
}

void Challenger::run_phase(const std::shared_ptr<Own>& own, const char* what, std::function<void()> job) {
  auto st = own_pool_.try_submit(std::move(job), [this, own, what] {
    std::lock_guard lock(mu_);
    fail(*own, std::string("the node stopped before ") + what);
  });
  if (!st) {
    std::lock_guard lock(mu_);
    fail(*own, std::string("the challenge thread refused ") + what + ": " + st.error().to_string());
  }
}

void Challenger::walk(const std::shared_ptr<Own>& own) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
  }
  auto challenge = challenge_for(own->shard, own->epoch);
  if (!challenge) {
    std::lock_guard lock(mu_);
    if (challenge.error().code == Errc::not_found) {
      own->no_blobs = true;
      own->phase = Own::Phase::done;
    } else {
      fail(*own, "reading the challenge: " + challenge.error().to_string());
    }
    return;
  }
  contracts::Chain& chain = ctx_.chain.chain();
  shards::StoreProver prover = store_prover(ctx_.store, ctx_.self, chain);
  const auto t0 = SteadyClock::now();
  auto transcript = sampling::run_walk(*challenge, ctx_.self, prover);
  const double secs = seconds_since(t0);
  if (!transcript) {
    std::lock_guard lock(mu_);
    fail(*own, "walking the replica of " + std::to_string(challenge->blob_count) +
                   " blob(s): " + transcript.error().to_string());
    return;
  }
  walk_seconds_.observe(secs);
  produced_.inc();
  auto shared = std::make_shared<sampling::WalkTranscript>(std::move(*transcript));
  const Hash32 commitment = shared->commitment();
  CAIRN_LOG(log::Level::debug, "challenge",
            epoch_name(own->shard, own->epoch) << ": walked " << challenge->blob_count << " blob(s) in " << secs * 1000
                                               << " ms; anchoring " << to_hex(commitment).substr(0, 16));
  {
    std::lock_guard lock(mu_);
    own->transcript = std::move(shared);
    own->commitment = commitment;
    own->blob_count = challenge->blob_count;
    own->walk_seconds = secs;
    own->phase = Own::Phase::submit;
  }
  submit_anchor(own);
}

void Challenger::submit_anchor(const std::shared_ptr<Own>& own) {
  Hash32 commitment;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || own->phase != Own::Phase::submit) return;
    own->phase = Own::Phase::submitting;
    commitment = own->commitment;
  }
  const SigningKey key = ctx_.identity;
  const Hash32 chain_id = ctx_.chain.info().chain_id;
  const ShardId shard = own->shard;
  const Epoch epoch = own->epoch;
  ctx_.chain.submit_tx(
      [key, chain_id, shard, epoch, commitment](uint64_t nonce) {
        return contracts::make_submit_response(key, chain_id, nonce, shard, epoch, commitment);
      },
      [this, own](Result<Hash32> tx) {
        std::lock_guard lock(mu_);
        if (own->phase != Own::Phase::submitting) return;
        if (tx) {
          own->tx = *tx;
          own->submitted_at = head_number_.load();
          own->phase = Own::Phase::anchoring;
        } else {
          // Retried by the driver at the next block while the window is open.
          own->detail = tx.error().to_string();
          own->phase = Own::Phase::submit;
          CAIRN_LOG(log::Level::warn, "challenge",
                    epoch_name(own->shard, own->epoch) << ": SubmitResponse not admitted: " << own->detail);
        }
      });
}

void Challenger::check_anchor(const std::shared_ptr<Own>& own, uint64_t head) {
  Hash32 tx;
  uint64_t submitted_at = 0;
  {
    std::lock_guard lock(mu_);
    if (!own->tx) return;
    tx = *own->tx;
    submitted_at = own->submitted_at;
  }
  const uint64_t window_end = own->epoch.value * epoch_blocks_ + deadline_blocks_;
  contracts::Chain& chain = ctx_.chain.chain();
  auto receipt = chain.receipt(tx);
  if (!receipt) {
    CAIRN_LOG(log::Level::warn, "challenge",
              epoch_name(own->shard, own->epoch) << ": reading the anchor's receipt: " << receipt.error().to_string());
    return;
  }
  std::optional<BlockNumber> anchored_in;
  if (!*receipt) {
    if (head < window_end) {
      // Lost or stuck (a mempool dropped it): a fresh copy with a new nonce.
      // Should both land, the second is refused as duplicate_response.
      if (head >= submitted_at + ctx_.settings.challenge.resubmit_blocks) {
        {
          std::lock_guard lock(mu_);
          if (own->phase == Own::Phase::anchoring) own->phase = Own::Phase::submit;
        }
        submit_anchor(own);
      }
    } else if (head > window_end + ctx_.settings.challenge.settle_blocks) {
      std::lock_guard lock(mu_);
      fail(*own, "SubmitResponse " + to_hex(tx).substr(0, 16) + " got no receipt by block " + std::to_string(head));
    }
    return;
  }
  const contracts::Receipt& r = **receipt;
  if (r.ok()) {
    anchored_in = r.block;
  } else if (r.status == contracts::TxStatus::duplicate_response) {
    // An earlier copy landed: it is the anchor if it holds this commitment.
    auto inc = chain.response_inclusion(ctx_.self, own->shard, own->epoch);
    if (inc && inc->record.response_hash == own->commitment) anchored_in = inc->record.anchored_in;
  }
  if (!anchored_in) {
    std::lock_guard lock(mu_);
    fail(*own, "SubmitResponse rejected in block " + std::to_string(r.block.value) + ": " +
                   std::string(contracts::tx_status_name(r.status)) + (r.detail.empty() ? "" : " (" + r.detail + ")"));
    return;
  }
  anchored_.inc();
  {
    std::lock_guard lock(mu_);
    own->anchored_in = *anchored_in;
    own->phase = Own::Phase::opening;
  }
  run_phase(own, "the opening", [this, own] { open(own); });
}

void Challenger::open(const std::shared_ptr<Own>& own) {
  std::shared_ptr<sampling::WalkTranscript> transcript;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    transcript = own->transcript;
  }
  contracts::Chain& chain = ctx_.chain.chain();
  auto randomness = chain.randomness(own->anchored_in);
  if (!randomness) {
    std::lock_guard lock(mu_);
    fail(*own, "reading the anchor block's randomness: " + randomness.error().to_string());
    return;
  }
  shards::StoreProver prover = store_prover(ctx_.store, ctx_.self, chain);
  auto response = sampling::open_response(*transcript, own->anchored_in, *randomness, prover, ctx_.identity);
  if (!response) {
    std::lock_guard lock(mu_);
    fail(*own, "opening the response: " + response.error().to_string());
    return;
  }
  if (auto st = ctx_.store.put_response(own->shard, own->epoch, ctx_.self, response->encode()); !st) {
    std::lock_guard lock(mu_);
    fail(*own, "keeping the response: " + st.error().to_string());
    return;
  }
  {
    std::lock_guard lock(mu_);
    verdicts_[{own->shard.value, own->epoch.value}].valid.insert(ctx_.self);
    own->phase = Own::Phase::done;
    own->transcript.reset();
  }
  CAIRN_LOG(log::Level::debug, "challenge",
            epoch_name(own->shard, own->epoch)
                << ": response anchored in block " << own->anchored_in.value << ", opened and gossiped");
  publish(own->shard, wire::encode_response_message(*response));
}

void Challenger::fail(Own& own, std::string why) {
  if (own.phase == Own::Phase::failed || own.phase == Own::Phase::done) return;
  own.phase = Own::Phase::failed;
  own.detail = std::move(why);
  own.transcript.reset();
  own_failed_.inc();
  CAIRN_LOG(log::Level::warn, "challenge", epoch_name(own.shard, own.epoch) << ": no response: " << own.detail);
}

void Challenger::publish(ShardId shard, Bytes message) {
  ctx_.post([this, shard, message = std::move(message)]() mutable {
    if (ctx_.gossip == nullptr) return;
    if (auto id = ctx_.gossip->publish(shard, std::move(message)); !id) {
      CAIRN_LOG(log::Level::warn, "challenge",
                "gossiping a response on shard " << shard.value << ": " << id.error().to_string());
    }
  });
}

// ---- peers' responses ----

p2p::Validation Challenger::validate(const NodeId&, ShardId shard, ByteSpan data) {
  auto r = wire::decode_response_message(data, shard);
  if (!r) {
    CAIRN_LOG(log::Level::debug, "challenge",
              "rejecting a response on shard " << shard.value << ": " << r.error().to_string());
    return r.error().code == Errc::unsupported ? p2p::Validation::ignore : p2p::Validation::reject;
  }
  if (r->node == ctx_.self) return p2p::Validation::ignore;
  // An epoch far from the head is stale (or from a node ahead of this
  // node's chain view): not worth verifying, not the sender's fault.
  const uint64_t current = head_number_.load() / epoch_blocks_;
  if (r->epoch.value > current + 1 || r->epoch.value + ctx_.settings.challenge.retain_epochs < current) {
    return p2p::Validation::ignore;
  }
  // Anchored outside its epoch's window it can never count (and a far
  // anchor block would park it in waiting_ for good, holding a slot of the
  // verification queue): the signer's fault.
  const uint64_t start = r->epoch.value * epoch_blocks_;
  if (r->anchor_block.value <= start || r->anchor_block.value > start + deadline_blocks_) {
    return p2p::Validation::reject;
  }
  std::lock_guard lock(mu_);
  if (auto v = verdicts_.find({shard.value, r->epoch.value}); v != verdicts_.end() && v->second.valid.count(r->node)) {
    return p2p::Validation::ignore;  // already hold a valid one of this node
  }
  return p2p::Validation::accept;
}

void Challenger::received(const NodeId&, ShardId shard, const std::shared_ptr<const Bytes>& data) {
  // The validator decoded these very bytes and checked their signature.
  auto r = wire::decode_response_message(*data, shard, /*check_signature=*/false);
  if (!r) return;
  (void)enqueue(std::make_shared<sampling::Response>(std::move(*r)), {});
}

bool Challenger::enqueue(std::shared_ptr<sampling::Response> response, Done done) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || verifying_ >= ctx_.settings.challenge.max_verify_queue) {
      if (!stopping_) dropped_.inc();
      if (done) done();
      return false;
    }
    ++verifying_;
  }
  return submit_verify(std::move(response), std::move(done));
}

bool Challenger::submit_verify(std::shared_ptr<sampling::Response> response, Done done) {
  auto shared_done = std::make_shared<Done>(std::move(done));
  auto st = ctx_.submit([this, response, shared_done] { verify(response, std::move(*shared_done)); },
                        [this, shared_done] {
                          verify_done();
                          if (*shared_done) (*shared_done)();
                        });
  if (!st) {
    dropped_.inc();
    verify_done();
    if (*shared_done) (*shared_done)();
    return false;
  }
  return true;
}

void Challenger::verify_done() {
  std::lock_guard lock(mu_);
  if (verifying_ > 0) --verifying_;
}

void Challenger::verify(std::shared_ptr<sampling::Response> response, Done done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && response->anchor_block.value > head_number_.load()) {
      waiting_.emplace_back(std::move(response), std::move(done));  // still counted in verifying_
      return;
    }
    if (stopping_) response.reset();
  }
  if (response) verify_one(*response);
  verify_done();
  if (done) done();
}

void Challenger::verify_one(const sampling::Response& resp) {
  {
    std::lock_guard lock(mu_);
    auto v = verdicts_.find({resp.shard.value, resp.epoch.value});
    if (v != verdicts_.end() && v->second.valid.count(resp.node)) return;  // a copy already judged valid
  }
  const auto t0 = SteadyClock::now();
  const std::string who = "node " + short_id(resp.node) + " " + epoch_name(resp.shard, resp.epoch);
  contracts::Chain& chain = ctx_.chain.chain();
  auto challenge = challenge_for(resp.shard, resp.epoch);
  if (!challenge) {
    if (challenge.error().code == Errc::not_found) {
      judge_invalid(resp, "answers an epoch in which the shard held no blob");
    } else {
      CAIRN_LOG(log::Level::warn, "challenge", who << ": cannot verify now: " << challenge.error().to_string());
    }
    return;
  }
  auto inc = chain.response_inclusion(resp.node, resp.shard, resp.epoch);
  if (!inc) {
    if (inc.error().code == Errc::not_found) {
      judge_invalid(resp, "no response of this node is anchored on chain");
    } else {
      CAIRN_LOG(log::Level::warn, "challenge", who << ": reading its anchor: " << inc.error().to_string());
    }
    return;
  }
  if (inc->record.response_hash != resp.commitment()) {
    judge_invalid(resp, "its commitment is not the anchored response hash");
  } else if (inc->record.anchored_in != resp.anchor_block) {
    judge_invalid(resp, "names anchor block " + std::to_string(resp.anchor_block.value) +
                            "; the chain anchored it in " + std::to_string(inc->record.anchored_in.value));
  } else if (auto randomness = chain.randomness(resp.anchor_block); !randomness) {
    CAIRN_LOG(log::Level::warn, "challenge",
              who << ": reading the anchor randomness: " << randomness.error().to_string());
  } else if (auto st = sampling::verify_response(*challenge, resp, *randomness); !st) {
    judge_invalid(resp, st.error().message);
  } else if (auto put = ctx_.store.put_response(resp.shard, resp.epoch, resp.node, resp.encode()); !put) {
    CAIRN_LOG(log::Level::warn, "challenge", who << ": keeping its valid response: " << put.error().to_string());
  } else {
    verified_.inc();
    std::lock_guard lock(mu_);
    verdicts_[{resp.shard.value, resp.epoch.value}].valid.insert(resp.node);
  }
  verify_seconds_.observe(seconds_since(t0));
}

// ---- fetching responses gossip did not bring ----

namespace {

// challenge_response_request: version, shard, epoch, node (docs/node-protocol.md).
constexpr uint8_t kFetchVersion = 1;
constexpr size_t kFetchRequestBytes = 1 + 4 + 8 + 32;

Bytes encode_fetch(ShardId shard, Epoch epoch, const NodeId& node) {
  Bytes out{kFetchVersion};
  append_be<uint32_t>(out, shard.value);
  append_be<uint64_t>(out, epoch.value);
  append(out, node.bytes);
  return out;
}

}  // namespace

void Challenger::serve(const NodeId&, ByteSpan payload, p2p::Responder responder) {
  ByteReader r(payload);
  uint8_t version = 0;
  ShardId shard;
  Epoch epoch;
  NodeId node;
  if (payload.size() != kFetchRequestBytes || !r.read_be(version) || version != kFetchVersion ||
      !r.read_be(shard.value) || !r.read_be(epoch.value) || !r.read(node.bytes)) {
    (void)responder.fail(p2p::ResponseStatus::invalid_request, "challenge response request: malformed");
    return;
  }
  auto shared = std::make_shared<p2p::Responder>(std::move(responder));
  auto job = [this, shared, shard, epoch, node] {
    auto value = ctx_.store.get_response(shard, epoch, node);
    ctx_.post([shared, value = std::move(value)] {
      if (value) {
        (void)shared->respond(*value);
      } else if (value.error().code == Errc::not_found) {
        (void)shared->fail(p2p::ResponseStatus::not_found, "no valid response of that node kept here");
      } else {
        (void)shared->fail(p2p::ResponseStatus::internal_error, value.error().message);
      }
    });
  };
  if (auto st = ctx_.submit(job); !st) (void)shared->fail(p2p::ResponseStatus::busy, "worker pool busy");
}

struct Challenger::Batch {
  explicit Batch(size_t n, Done d) : remaining(n), done(std::move(d)) {}
  std::mutex mu;
  size_t remaining;
  Done done;
  void one() {
    Done fire;
    {
      std::lock_guard lock(mu);
      if (remaining == 0 || --remaining > 0) return;
      fire = std::move(done);
    }
    if (fire) fire();
  }
};

void Challenger::fetch_missing(ShardId shard, Epoch epoch, Done done) {
  auto anchored = ctx_.chain.chain().responses(shard, epoch);
  std::vector<NodeId> wanted;
  if (anchored) {
    std::lock_guard lock(mu_);
    const auto v = verdicts_.find({shard.value, epoch.value});
    for (const auto& rec : *anchored) {
      if (rec.node_id == ctx_.self) continue;
      if (v != verdicts_.end() && (v->second.valid.count(rec.node_id) || v->second.invalid.count(rec.node_id)))
        continue;
      wanted.push_back(rec.node_id);
    }
  }
  // Kept before a restart (verdicts are in memory only).
  for (auto it = wanted.begin(); it != wanted.end();) {
    it = ctx_.store.get_response(shard, epoch, *it) ? wanted.erase(it) : it + 1;
  }
  if (wanted.empty()) {
    if (done) done();
    return;
  }
  auto batch = std::make_shared<Batch>(wanted.size(), std::move(done));
  ctx_.post([this, shard, epoch, wanted, batch] {
    for (const NodeId& node : wanted) {
      if (ctx_.rr == nullptr) {
        batch->one();
        continue;
      }
      auto id = ctx_.rr->request(node, p2p::MessageType::challenge_response_request, encode_fetch(shard, epoch, node),
                                 [this, shard, epoch, node, batch](Result<Bytes> answer) {
                                   if (!answer) {
                                     batch->one();
                                     return;
                                   }
                                   auto r = sampling::Response::decode(*answer);
                                   if (!r || r->node != node || r->shard != shard || r->epoch != epoch) {
                                     batch->one();
                                     return;
                                   }
                                   fetched_.inc();
                                   (void)enqueue(std::make_shared<sampling::Response>(std::move(*r)),
                                                 [batch] { batch->one(); });
                                 });
      if (!id) batch->one();  // not connected (a stopped node): it stays missing
    }
  });
}

void Challenger::judge_invalid(const sampling::Response& resp, const std::string& why) {
  invalid_.inc();
  CAIRN_LOG(log::Level::warn, "challenge",
            "invalid response of node " << short_id(resp.node) << " for " << epoch_name(resp.shard, resp.epoch) << ": "
                                        << why);
  {
    std::lock_guard lock(mu_);
    verdicts_[{resp.shard.value, resp.epoch.value}].invalid[resp.node] = why;
  }
  // The response is signed by its node: charge that node, whichever peer
  // relayed it (relays only checked the signature, as the validator does).
  const double penalty = ctx_.settings.challenge.invalid_response_penalty;
  if (penalty <= 0) return;
  const NodeId node = resp.node;
  ctx_.post([this, node, penalty] {
    if (ctx_.gossip == nullptr) return;
    ctx_.gossip->host().adjust_score(node, -penalty, "invalid storage-challenge response");
  });
}

// ---- epoch results ----

Result<sampling::EpochChallenge> Challenger::challenge_for(ShardId shard, Epoch epoch) {
  const Key key{shard.value, epoch.value};
  {
    std::lock_guard lock(mu_);
    if (auto it = challenges_.find(key); it != challenges_.end()) return it->second;
    if (empty_.count(key)) {
      return make_error(Errc::not_found, epoch_name(shard, epoch) + ": the shard held no blob at block " +
                                             std::to_string(epoch.value * epoch_blocks_));
    }
  }
  auto header = ctx_.chain.chain().header(BlockNumber{epoch.value * epoch_blocks_});
  if (!header) return tl::unexpected(with_context(header.error(), "reading block e*E of " + epoch_name(shard, epoch)));
  auto challenge = sampling::make_epoch_challenge(ctx_.params, shard, epoch, *header);
  std::lock_guard lock(mu_);
  if (!challenge) {
    if (challenge.error().code == Errc::not_found) empty_.insert(key);
    return challenge;
  }
  challenges_.emplace(key, *challenge);
  return challenge;
}

void Challenger::evaluate(ShardId shard, Epoch epoch) {
  auto challenge = challenge_for(shard, epoch);
  if (!challenge) return;  // nothing to prove (or the chain is unreachable: the next epoch reports)
  const Key key{shard.value, epoch.value};
  const uint64_t start = epoch.value * epoch_blocks_;
  EpochChallengeStatus st;
  st.shard = shard;
  st.epoch = epoch;
  st.start_block = BlockNumber{start};
  st.blob_count = challenge->blob_count;

  std::set<NodeId> valid;
  if (auto kept = ctx_.store.responses(shard, epoch, sampling::kMaxProofResponses); kept) {
    for (const auto& r : kept->records) valid.insert(r.node);
  }
  std::set<NodeId> anchored;
  if (auto on_chain = ctx_.chain.chain().responses(shard, epoch); on_chain) {
    for (const auto& r : *on_chain) anchored.insert(r.node_id);
  }
  std::map<NodeId, std::string> invalid;
  // For the log line: ok (anchored and opened), failed (tried and did not
  // make it; the line gives the reason), none (challenges off, or the node
  // was not running when the epoch began).
  const char* own_result = "none";
  {
    std::lock_guard lock(mu_);
    if (auto v = verdicts_.find(key); v != verdicts_.end()) invalid = v->second.invalid;
    if (!ctx_.settings.challenge.enabled) {
      st.own = "disabled";
    } else if (auto it = own_.find(key); it == own_.end()) {
      st.own = "failed";
      st.own_detail = "the node was not running at block " + std::to_string(start);
    } else {
      const Own& own = *it->second;
      st.walk_seconds = own.walk_seconds;
      st.anchored_in = own.anchored_in;
      if (own.phase == Own::Phase::done) {
        st.own = "anchored";
        own_result = "ok";
      } else {
        st.own = "failed";
        own_result = "failed";
        st.own_detail = own.phase == Own::Phase::failed ? own.detail : "not finished when the epoch settled";
      }
    }
    // The transcripts of finished epochs are no longer needed.
    for (auto it = own_.begin(); it != own_.end();) {
      if (it->first.first == shard.value && it->first.second <= epoch.value) {
        it = own_.erase(it);
      } else {
        ++it;
      }
    }
  }
  st.valid = static_cast<uint32_t>(valid.size());
  // Expected: the nodes the registry listed for the shard when the epoch began.
  std::map<NodeId, std::string> endpoints;
  for (const auto& rec : ctx_.chain.nodes(shard)) {
    if (rec.registered_in.value <= start) endpoints[rec.node_id] = rec.endpoint;
  }
  for (const auto& [node, why] : invalid) {
    if (valid.count(node)) continue;
    const auto ep = endpoints.find(node);
    st.invalid.push_back({node, ep == endpoints.end() ? std::string() : ep->second, why});
  }
  for (const auto& [node, endpoint] : endpoints) {
    if (valid.count(node) || invalid.count(node)) continue;
    std::string why = anchored.count(node) ? "anchored a response, but no valid response body reached this node"
                                           : "no response anchored by the deadline";
    if (node == ctx_.self && !st.own_detail.empty()) why = st.own_detail;
    st.missing.push_back({node, endpoint, std::move(why)});
  }
  missing_.inc(st.missing.size());
  // The epoch's one info line; everything per response or step is debug.
  CAIRN_LOG(log::Level::info, "challenge",
            epoch_name(shard, epoch) << ": " << st.valid << " responses counted, " << st.invalid.size() << " invalid, "
                                     << st.missing.size() << " missing; own " << own_result
                                     << (std::string_view(own_result) == "failed" ? " (" + st.own_detail + ")" : "")
                                     << "; walk "
                                     << (st.walk_seconds > 0 ? std::to_string(std::llround(st.walk_seconds * 1000))
                                                             : std::string("-"))
                                     << " ms of a " << deadline_blocks_ * ctx_.params.block_time_ms << " ms deadline");
  std::lock_guard lock(mu_);
  auto& history = history_[shard.value];
  history.push_back(std::move(st));
  while (history.size() > kChallengeHistoryEpochs) history.pop_front();
}

void Challenger::prune(ShardId shard, Epoch current) {
  const uint64_t retain = ctx_.settings.challenge.retain_epochs;
  if (current.value <= retain) return;
  const uint64_t before = current.value - retain;
  if (auto st = ctx_.store.prune_responses(shard, Epoch{before}); !st) {
    CAIRN_LOG(log::Level::warn, "challenge",
              "pruning the responses of shard " << shard.value << ": " << st.error().to_string());
  }
  std::lock_guard lock(mu_);
  const auto old = [&](const Key& k) { return k.first == shard.value && k.second < before; };
  std::erase_if(verdicts_, [&](const auto& kv) { return old(kv.first); });
  std::erase_if(challenges_, [&](const auto& kv) { return old(kv.first); });
  std::erase_if(empty_, old);
}

std::vector<EpochChallengeStatus> Challenger::status() const {
  std::lock_guard lock(mu_);
  std::vector<EpochChallengeStatus> out;
  for (const auto& [shard, history] : history_) {
    if (!history.empty()) out.push_back(history.back());
  }
  return out;
}

std::vector<EpochChallengeStatus> Challenger::history() const {
  std::lock_guard lock(mu_);
  std::vector<EpochChallengeStatus> out;
  for (const auto& [shard, history] : history_) out.insert(out.end(), history.begin(), history.end());
  return out;
}

// ---- proofs ----

Result<ProofFile> Challenger::proof(ShardId shard, Epoch epoch) {
  const auto head = ctx_.chain.head();
  const uint64_t n = head ? head->number.value : 0;
  const uint64_t start = epoch.value * epoch_blocks_;
  const uint64_t settled = start + deadline_blocks_ + ctx_.settings.challenge.settle_blocks;
  if (n < settled) {
    return make_error(Errc::conflict, epoch_name(shard, epoch) + " has not finished: its responses settle at block " +
                                          std::to_string(settled) + ", the head is block " + std::to_string(n));
  }
  const uint64_t current = n / epoch_blocks_;
  if (epoch.value + ctx_.settings.challenge.retain_epochs < current) {
    return make_error(Errc::not_found, epoch_name(shard, epoch) +
                                           ": its responses were pruned (this node keeps the last " +
                                           std::to_string(ctx_.settings.challenge.retain_epochs) + " epochs)");
  }
  auto challenge = challenge_for(shard, epoch);
  if (!challenge) return tl::unexpected(challenge.error());
  contracts::Chain& chain = ctx_.chain.chain();
  auto headers = chain.headers(BlockNumber{start}, static_cast<uint32_t>(deadline_blocks_ + 1));
  if (!headers)
    return tl::unexpected(with_context(headers.error(), "reading the headers of " + epoch_name(shard, epoch)));
  // Anchored responses whose body gossip did not bring: ask their nodes,
  // briefly (an unreachable node stays out of the count).
  {
    auto fetched = std::make_shared<std::promise<void>>();
    auto arrived = fetched->get_future();
    fetch_missing(shard, epoch, [fetched] { fetched->set_value(); });
    arrived.wait_for(kProofFetchWait);
  }
  auto kept = ctx_.store.responses(shard, epoch, sampling::kMaxProofResponses);
  if (!kept) return tl::unexpected(with_context(kept.error(), "reading the kept responses"));
  std::vector<sampling::AnchoredResponse> candidates;
  for (const auto& rec : kept->records) {
    auto response = sampling::Response::decode(rec.value);
    if (!response) continue;
    auto inc = chain.response_inclusion(rec.node, shard, epoch);
    if (!inc) continue;
    candidates.push_back({std::move(*response), std::move(inc->proof)});
  }
  if (candidates.empty()) {
    return make_error(Errc::not_found, epoch_name(shard, epoch) + ": this node holds no valid anchored response");
  }
  auto assembled =
      sampling::assemble_replica_proof(chain.info(), shard, epoch, std::move(*headers), std::move(candidates));
  if (!assembled) return tl::unexpected(assembled.error());
  ProofFile file;
  file.shard = shard;
  file.epoch = epoch;
  file.replicas = static_cast<uint32_t>(assembled->proof.entries.size());
  file.bytes = assembled->proof.encode();
  return file;
}

Result<ProofFile> Challenger::latest_proof(const BlobId& id) {
  auto reg = ctx_.chain.lookup_blob(id);
  if (!reg) return tl::unexpected(reg.error());
  const ShardId shard = ctx_.params.shard_of(reg->index);
  const auto head = ctx_.chain.head();
  const uint64_t n = head ? head->number.value : 0;
  const uint64_t settle = deadline_blocks_ + ctx_.settings.challenge.settle_blocks;
  // The first epoch whose start block already lists the blob.
  const uint64_t first = (reg->registered_in.value + epoch_blocks_ - 1) / epoch_blocks_;
  const uint64_t first_settled = first * epoch_blocks_ + settle;
  if (n < first_settled) {
    return make_error(Errc::conflict, "blob " + id.hex() + " was registered in block " +
                                          std::to_string(reg->registered_in.value) + "; the first epoch covering it (" +
                                          std::to_string(first) + ") settles at block " +
                                          std::to_string(first_settled) + ", the head is block " + std::to_string(n));
  }
  return proof(shard, Epoch{(n - settle) / epoch_blocks_});
}

}  // namespace cairn::node
