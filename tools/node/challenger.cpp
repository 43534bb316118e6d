#include "node/challenger.hpp"

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <future>

#include "cairn/contracts/chain.hpp"
#include "cairn/contracts/tx.hpp"
#include "cairn/core/log.hpp"
#include "cairn/p2p/gossip_node.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/sampling/proof.hpp"
#include "node/wire.hpp"

namespace cairn::node {

namespace {

// How long a peer has to answer a challenge_response_request. A proof
// request waits for these answers, so this also bounds how long a proof
// waits for the bodies of anchored responses this node lacks.
constexpr auto kFetchTimeout = std::chrono::seconds(3);
// A proof request gives up after this long (the fetches above, the
// verifications of what they brought and the assembly, on a busy pool).
constexpr auto kProofWait = std::chrono::seconds(30);

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

sampling::JobQueue queue_of(WorkerPool& pool) {
  return [&pool](std::function<void()> run, std::function<void()> cancel) {
    return pool.try_submit(std::move(run), std::move(cancel));
  };
}

}  // namespace

// ---- the chain: the chain client and the served shards ----

class Challenger::Chain final : public sampling::EpochChain {
 public:
  explicit Chain(NodeContext& ctx) : ctx_(ctx) {}

  const contracts::ChainInfo& info() const override { return ctx_.chain.info(); }
  std::optional<BlockNumber> head() override {
    auto h = ctx_.chain.head();
    if (!h) return std::nullopt;
    return h->number;
  }
  Result<contracts::BlockHeader> header(BlockNumber number) override { return chain().header(number); }
  Result<std::vector<contracts::BlockHeader>> headers(BlockNumber from, uint32_t count) override {
    return chain().headers(from, count);
  }
  Result<Hash32> randomness(BlockNumber number) override { return chain().randomness(number); }
  std::vector<ShardId> shards() override {
    const uint32_t open = ctx_.chain.open_shards();
    std::vector<ShardId> out;
    for (ShardId s : ctx_.served.current(open)) {
      if (s.value < open) out.push_back(s);
    }
    return out;
  }
  std::vector<sampling::ShardMember> members(ShardId shard) override {
    std::vector<sampling::ShardMember> out;
    for (auto& rec : ctx_.chain.nodes(shard)) out.push_back({rec.node_id, std::move(rec.endpoint), rec.registered_in});
    return out;
  }
  Result<sampling::BlobPlace> blob(const BlobId& id) override {
    auto reg = ctx_.chain.lookup_blob(id);
    if (!reg) return tl::unexpected(reg.error());
    return sampling::BlobPlace{reg->index, reg->registered_in};
  }
  Result<std::vector<sampling::AnchoredCommitment>> anchored(ShardId shard, Epoch epoch) override {
    auto records = chain().responses(shard, epoch);
    if (!records) return tl::unexpected(records.error());
    std::vector<sampling::AnchoredCommitment> out;
    for (const auto& r : *records) out.push_back({r.node_id, r.response_hash, r.anchored_in, {}});
    return out;
  }
  Result<sampling::AnchoredCommitment> anchor(const NodeId& node, ShardId shard, Epoch epoch) override {
    auto inc = chain().response_inclusion(node, shard, epoch);
    if (!inc) return tl::unexpected(inc.error());
    return sampling::AnchoredCommitment{inc->record.node_id, inc->record.response_hash, inc->record.anchored_in,
                                        std::move(inc->proof)};
  }
  void submit_anchor(ShardId shard, Epoch epoch, const Hash32& commitment,
                     std::function<void(Result<Hash32>)> done) override {
    const SigningKey key = ctx_.identity;
    const Hash32 chain_id = ctx_.chain.info().chain_id;
    ctx_.chain.submit_tx(
        [key, chain_id, shard, epoch, commitment](uint64_t nonce) {
          return contracts::make_submit_response(key, chain_id, nonce, shard, epoch, commitment);
        },
        std::move(done));
  }
  Result<std::optional<sampling::AnchorReceipt>> receipt(const Hash32& tx) override {
    auto receipt = chain().receipt(tx);
    if (!receipt) return tl::unexpected(receipt.error());
    if (!*receipt) return std::optional<sampling::AnchorReceipt>();
    const contracts::Receipt& r = **receipt;
    sampling::AnchorReceipt out;
    out.block = r.block;
    out.ok = r.ok();
    out.duplicate = r.status == contracts::TxStatus::duplicate_response;
    out.detail = std::string(contracts::tx_status_name(r.status)) + (r.detail.empty() ? "" : " (" + r.detail + ")");
    return std::optional<sampling::AnchorReceipt>(std::move(out));
  }

 private:
  contracts::Chain& chain() { return ctx_.chain.chain(); }
  NodeContext& ctx_;
};

// ---- the peers: gossip, request/response, the peer score ----

class Challenger::Peers final : public sampling::EpochPeers {
 public:
  explicit Peers(NodeContext& ctx) : ctx_(ctx) {}

  void publish(const sampling::Response& response) override {
    ctx_.post([this, shard = response.shard, message = wire::encode_response_message(response)]() mutable {
      if (ctx_.gossip == nullptr) return;
      if (auto id = ctx_.gossip->publish(shard, std::move(message)); !id) {
        CAIRN_LOG(log::Level::warn, "challenge",
                  "gossiping a response on shard " << shard.value << ": " << id.error().to_string());
      }
    });
  }

  void fetch(const NodeId& node, ShardId shard, Epoch epoch,
             std::function<void(Result<sampling::Response>)> done) override {
    if (ctx_.io_stopped.load()) {
      done(make_error(Errc::cancelled, "the network thread has stopped"));
      return;
    }
    ctx_.post([this, node, shard, epoch, done = std::move(done)] {
      if (ctx_.rr == nullptr) {
        done(make_error(Errc::cancelled, "no request/response"));
        return;
      }
      p2p::RequestOptions options;
      options.timeout = kFetchTimeout;
      auto id = ctx_.rr->request(
          node, p2p::MessageType::challenge_response_request, encode_fetch(shard, epoch, node),
          [done](Result<Bytes> answer) {
            if (!answer) {
              done(tl::unexpected(answer.error()));
              return;
            }
            done(sampling::Response::decode(*answer));
          },
          options);
      if (!id) done(tl::unexpected(id.error()));  // not connected (a stopped node): it stays missing
    });
  }

  void charge(const NodeId& node) override {
    const double penalty = ctx_.settings.challenge.invalid_response_penalty;
    if (penalty <= 0) return;
    ctx_.post([this, node, penalty] {
      if (ctx_.gossip == nullptr) return;
      ctx_.gossip->host().adjust_score(node, -penalty, "invalid storage-challenge response");
    });
  }

 private:
  NodeContext& ctx_;
};

// ---- the kept responses: the store ----

class Challenger::Responses final : public sampling::ResponseStore {
 public:
  explicit Responses(shards::Store& store) : store_(store) {}
  Status put(ShardId shard, Epoch epoch, const NodeId& node, ByteSpan response) override {
    return store_.put_response(shard, epoch, node, response);
  }
  Result<Bytes> get(ShardId shard, Epoch epoch, const NodeId& node) override {
    return store_.get_response(shard, epoch, node);
  }
  Result<std::vector<std::pair<NodeId, Bytes>>> list(ShardId shard, Epoch epoch) override {
    auto kept = store_.responses(shard, epoch, sampling::kMaxProofResponses);
    if (!kept) return tl::unexpected(kept.error());
    std::vector<std::pair<NodeId, Bytes>> out;
    out.reserve(kept->records.size());
    for (auto& r : kept->records) out.emplace_back(r.node, std::move(r.value));
    return out;
  }
  Status prune(ShardId shard, Epoch before) override { return store_.prune_responses(shard, before); }

 private:
  shards::Store& store_;
};

// ---- the observer: metrics ----

class Challenger::Metrics final : public sampling::EpochObserver {
 public:
  explicit Metrics(metrics::Registry& m)
      : produced_(m.counter("cairn_challenge_responses_produced_total",
                            "Walks of this node's replica completed (commitments to anchor).")),
        anchored_(m.counter("cairn_challenge_responses_anchored_total",
                            "This node's responses anchored on chain within the deadline.")),
        own_failed_(m.counter("cairn_challenge_own_failures_total",
                              "Epochs in which this node produced no anchored, opened response.")),
        verified_(m.counter("cairn_challenge_responses_verified_total", "Peers' responses verified valid and kept.")),
        invalid_(m.counter("cairn_challenge_responses_invalid_total",
                           "Peers' responses that failed verification (the node was charged).")),
        missing_(m.counter("cairn_challenge_responses_missing_total",
                           "Registered nodes of a served shard with no valid anchored response in an epoch.")),
        fetched_(m.counter("cairn_challenge_responses_fetched_total",
                           "Peers' responses asked of their nodes because gossip did not bring them.")),
        dropped_(m.counter("cairn_challenge_responses_dropped_total",
                           "Gossiped responses dropped because the verification queue was full.")),
        walk_seconds_(m.histogram("cairn_challenge_walk_seconds",
                                  "Time of this node's sequential walk over its replica of one shard.",
                                  metrics::Histogram::latency_buckets())),
        verify_seconds_(m.histogram("cairn_challenge_verify_seconds",
                                    "Time to verify one peer's response (chain reads included).",
                                    metrics::Histogram::latency_buckets())) {}

  void walked(ShardId, Epoch, double seconds) override {
    walk_seconds_.observe(seconds);
    produced_.inc();
  }
  void anchored(ShardId, Epoch, BlockNumber) override { anchored_.inc(); }
  void own_failed(ShardId, Epoch) override { own_failed_.inc(); }
  void verified(double seconds) override { verify_seconds_.observe(seconds); }
  void valid(const NodeId&) override { verified_.inc(); }
  void invalid(const NodeId&) override { invalid_.inc(); }
  void fetched() override { fetched_.inc(); }
  void dropped() override { dropped_.inc(); }
  void recorded(const sampling::EpochResult& result) override { missing_.inc(result.missing.size()); }

 private:
  metrics::Counter& produced_;
  metrics::Counter& anchored_;
  metrics::Counter& own_failed_;
  metrics::Counter& verified_;
  metrics::Counter& invalid_;
  metrics::Counter& missing_;
  metrics::Counter& fetched_;
  metrics::Counter& dropped_;
  metrics::Histogram& walk_seconds_;
  metrics::Histogram& verify_seconds_;
};

// ---- the challenger ----

Challenger::Challenger(NodeContext& ctx, Clock& clock)
    : ctx_(ctx),
      chain_(std::make_unique<Chain>(ctx)),
      peers_(std::make_unique<Peers>(ctx)),
      responses_(std::make_unique<Responses>(ctx.store)),
      metrics_(std::make_unique<Metrics>(ctx.metrics)),
      prover_(ctx.store, ctx.self,
              [&ctx](BlobIndex index, BlockNumber block, uint64_t) -> Result<erasure::MerkleProof> {
                auto inc = ctx.chain.chain().blob_inclusion(index, block);
                if (!inc) return tl::unexpected(inc.error());
                return std::move(inc->proof);
              }),
      // On a simulation's io_context (no threads of the node's own) the own
      // queue's jobs are posted there like the shared pool's.
      own_pool_(ctx.driver == std::thread::id{}
                    ? std::make_unique<WorkerPool>(WorkerPoolSettings{1, kMaxOwnPhases})
                    : std::make_unique<WorkerPool>(WorkerPoolSettings{0, kMaxOwnPhases}, [&ctx](WorkerPool::Job job) {
                        asio::post(ctx.io, std::move(job));
                      })) {
  driver_ = std::make_unique<sampling::EpochDriver>(
      ctx.params, ctx.identity, ctx.settings.challenge,
      sampling::EpochEnv{clock, queue_of(*own_pool_), queue_of(ctx.pool)},
      sampling::EpochPorts{*chain_, *peers_, *responses_, prover_, metrics_.get()});
  // Fixed by the chain's genesis: what a dashboard draws the walk time against.
  const double block_seconds = static_cast<double>(ctx.params.block_time_ms) / 1000.0;
  ctx.metrics
      .gauge("cairn_challenge_deadline_seconds",
             "Time an epoch's response has to be anchored in (deadline_blocks x block time).")
      .set(static_cast<double>(ctx.params.deadline_blocks) * block_seconds);
  ctx.metrics.gauge("cairn_challenge_epoch_seconds", "Length of a challenge epoch (epoch_blocks x block time).")
      .set(static_cast<double>(std::max<uint32_t>(1, ctx.params.epoch_blocks)) * block_seconds);
  ctx.metrics.gauge_fn("cairn_challenge_verify_queue", "Peers' responses waiting for or under verification.",
                       [this] { return static_cast<double>(driver_->verifying()); });
}

Challenger::~Challenger() {
  ctx_.metrics.remove_fns("cairn_challenge_verify_queue");
  stop();
}

void Challenger::stop() {
  driver_->stop();
  // Queued phases are cancelled (their cancel callbacks fail the epoch); a
  // running one finishes first.
  (void)own_pool_->shutdown(WorkerPool::Shutdown::cancel);
}

void Challenger::on_head(const contracts::BlockHeader& head) { driver_->on_head(head); }

p2p::Validation Challenger::validate(const NodeId&, ShardId shard, ByteSpan data,
                                     std::shared_ptr<const sampling::Response>& decoded) {
  auto r = wire::decode_response_message(data, shard);
  if (!r) {
    CAIRN_LOG(log::Level::debug, "challenge",
              "rejecting a response on shard " << shard.value << ": " << r.error().to_string());
    return r.error().code == Errc::unsupported ? p2p::Validation::ignore : p2p::Validation::reject;
  }
  switch (driver_->screen(*r)) {
    case sampling::Admission::ignore:
      return p2p::Validation::ignore;
    case sampling::Admission::reject:
      return p2p::Validation::reject;
    case sampling::Admission::accept:
      break;
  }
  decoded = std::make_shared<const sampling::Response>(std::move(*r));
  return p2p::Validation::accept;
}

void Challenger::received(const NodeId&, ShardId, std::shared_ptr<const sampling::Response> response) {
  driver_->received(std::move(response));
}

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
    auto value = responses_->get(shard, epoch, node);
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

std::vector<EpochChallengeStatus> Challenger::status() const { return driver_->status(); }
std::vector<EpochChallengeStatus> Challenger::history() const { return driver_->history(); }

namespace {

// Waits for an asynchronous proof (API threads).
Result<ProofFile> wait_proof(const std::function<void(std::function<void(Result<ProofFile>)>)>& start) {
  auto promise = std::make_shared<std::promise<Result<ProofFile>>>();
  auto future = promise->get_future();
  start([promise](Result<ProofFile> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(kProofWait) != std::future_status::ready) {
    return make_error(Errc::timeout, "the proof was not assembled within " +
                                         std::to_string(std::chrono::seconds(kProofWait).count()) + " s");
  }
  return future.get();
}

}  // namespace

Result<ProofFile> Challenger::proof(ShardId shard, Epoch epoch) {
  return wait_proof([&](auto done) { driver_->proof(shard, epoch, std::move(done)); });
}

Result<ProofFile> Challenger::latest_proof(const BlobId& id) {
  return wait_proof([&](auto done) { driver_->latest_proof(id, std::move(done)); });
}

}  // namespace cairn::node
