// The upload engine on a manual clock with fake chain and gossip ports and a
// real store (the worker pool runs on the same io_context): when an upload
// is acknowledged, fails or times out, at exact virtual times, what the
// caller is told on the way, and what survives a restart or a stop.

#include "cairn/shards/upload.hpp"

#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <deque>
#include <map>
#include <optional>
#include <set>

#include "cairn/erasure/codec.hpp"
#include "cairn/p2p/clock.hpp"
#include "shards/sync_testing.hpp"
#include "support/test_util.hpp"

namespace cairn::shards {
namespace {

using namespace std::chrono_literals;

const NodeId kA = NodeId::from_hex(std::string(64, 'a')).value();
const NodeId kB = NodeId::from_hex(std::string(64, 'b')).value();
const NodeId kC = NodeId::from_hex(std::string(64, 'c')).value();
const NodeId kStranger = NodeId::from_hex(std::string(64, 'd')).value();
const NodeId kSelf = NodeId::from_hex(std::string(64, 'e')).value();

// The chain: registers in order (index 0, 1, ...) once answered; in
// automatic mode every registration is answered on the io_context at once.
class FakeChain final : public UploadChain {
 public:
  struct Call {
    BlobId id;
    uint32_t size = 0;
    Registered done;
    Duration at{};
  };

  FakeChain(asio::io_context& io, p2p::ManualClock& clock) : io_(io), clock_(clock) {}

  void register_blob(const BlobId& id, uint32_t size, Registered done) override {
    calls.push_back(Call{id, size, std::move(done), clock_.elapsed()});
    if (automatic) answer(calls.size() - 1);
  }
  bool serves(ShardId shard) const override { return served.count(shard.value) > 0; }
  size_t serving_count(ShardId) const override {
    return listed_nodes.size() + (self_serves() ? 1 : 0);
  }
  bool listed(ShardId, const NodeId& node) const override { return listed_nodes.count(node) > 0; }

  void answer(size_t i) {
    const RegisteredBlob reg{BlobIndex{next_index++}, calls[i].id, calls[i].size};
    asio::post(io_, [done = calls[i].done, reg] { done(reg); });
  }
  void refuse(size_t i, Error error) {
    asio::post(io_, [done = calls[i].done, error] { done(tl::unexpected(error)); });
  }

  bool automatic = true;
  std::set<uint32_t> served;  // shards this node serves
  std::set<NodeId> listed_nodes{kA, kB, kC};
  std::vector<Call> calls;

 private:
  bool self_serves() const { return !served.empty(); }
  asio::io_context& io_;
  p2p::ManualClock& clock_;
  uint64_t next_index = 0;
};

class FakeGossip final : public UploadGossip {
 public:
  struct Sent {
    BlobId id;
    Duration at{};
  };
  explicit FakeGossip(p2p::ManualClock& clock) : clock_(clock) {}
  void announce(ShardId, const BlobId& id, BlobIndex, uint32_t) override {
    announced.push_back(Sent{id, clock_.elapsed()});
  }
  void stored(ShardId, const BlobId& id, BlobIndex) override {
    stored_own.push_back(Sent{id, clock_.elapsed()});
  }
  std::vector<Sent> announced, stored_own;

 private:
  p2p::ManualClock& clock_;
};

class CountingObserver final : public UploadObserver {
 public:
  void acknowledged(const BlobId&, Duration) override { ++acknowledged_blobs; }
  void failed(const BlobId&, const Error&) override { ++failed_blobs; }
  int acknowledged_blobs = 0;
  int failed_blobs = 0;
};

// What one upload was told, and when.
struct Outcome {
  std::optional<Result<UploadOutcome>> result;
  Duration at{};
  int calls = 0;
  std::vector<std::pair<UploadPhase, Duration>> phases;
};

class UploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    params_ = testing::sync_params();
    codec_ = *erasure::Codec::create(params_);
    open();
  }

  void TearDown() override {
    if (engine_) engine_->stop();
    clock_.settle();
  }

  void open() {
    auto st = Store::open(dir_.path() / "store", params_);
    ASSERT_TRUE(st) << st.error().to_string();
    store_ = std::move(*st);
  }

  void start() {
    engine_ = std::make_unique<UploadEngine>(
        chain_, gossip_, observer_, *store_, pool_, codec_, nullptr, clock_, io_.get_executor(),
        [this](std::function<void()> fn) { asio::post(io_, std::move(fn)); }, kSelf, settings_);
  }

  std::shared_ptr<erasure::CommittedBlob> blob(uint64_t salt) {
    auto rng = test::seeded_rng(salt);
    const Bytes payload = test::random_bytes(rng, 1000 + salt);
    auto b = std::make_shared<erasure::CommittedBlob>();
    EXPECT_TRUE(erasure::encode_and_commit_into(*codec_, payload, *b));
    return b;
  }

  // Outcomes outlive the engine (stop() in TearDown still tells them).
  Outcome& kept() { return outcomes_.emplace_back(); }
  std::optional<Status>& kept_admitted() { return admitted_.emplace_back(); }

  UploadCallbacks record(Outcome& o, bool phases = false) {
    UploadCallbacks cb;
    cb.done = [this, &o](Result<UploadOutcome> r) {
      o.result = std::move(r);
      o.at = clock_.elapsed();
      ++o.calls;
    };
    if (phases)
      cb.phase = [this, &o](const UploadPhase& p) { o.phases.emplace_back(p, clock_.elapsed()); };
    return cb;
  }

  // Begins an upload of `b` and seals it; returns its handle.
  UploadHandle upload(const std::shared_ptr<erasure::CommittedBlob>& b, Outcome& o,
                      uint32_t replicas, Duration timeout = 60s,
                      std::optional<Status>* admitted = nullptr, bool phases = false) {
    UploadRequest req;
    req.min_replicas = replicas;
    req.timeout = timeout;
    const UploadHandle h = engine_->begin(req, record(o, phases));
    engine_->add(h, b, [admitted](Status st) {
      if (admitted) *admitted = st;
    });
    engine_->seal(h, "blob " + b->commitment.id.hex());
    clock_.settle();
    return h;
  }

  void confirm_at(Duration at, const NodeId& node, const BlobId& id) {
    clock_.advance(at - clock_.elapsed());
    engine_->confirmed(node, id);
    clock_.settle();
  }

  test::TempDir dir_;
  erasure::NetworkParams params_;
  std::shared_ptr<const erasure::Codec> codec_;
  asio::io_context io_;
  p2p::ManualClock clock_{io_};
  // No threads: every store job runs on io_ in turn, so settle() runs it.
  WorkerPool pool_{WorkerPoolSettings{0, 64},
                   [this](WorkerPool::Job job) { asio::post(io_, std::move(job)); }};
  std::unique_ptr<Store> store_;
  FakeChain chain_{io_, clock_};
  FakeGossip gossip_{clock_};
  CountingObserver observer_;
  UploadSettings settings_;
  std::deque<Outcome> outcomes_;
  std::deque<std::optional<Status>> admitted_;
  std::unique_ptr<UploadEngine> engine_;
};

TEST_F(UploadTest, AcknowledgedExactlyAtTheMinReplicasThConfirmation) {
  start();
  auto b = blob(1);
  const BlobId id = b->commitment.id;
  Outcome& o = kept();
  upload(b, o, 3);
  // Persisted, registered and announced at once.
  ASSERT_EQ(chain_.calls.size(), 1u);
  ASSERT_EQ(gossip_.announced.size(), 1u);
  EXPECT_EQ(gossip_.announced[0].at, 0ms);
  EXPECT_TRUE(store_->get_pending(id));

  confirm_at(100ms, kA, id);
  confirm_at(200ms, kA, id);  // the same node twice counts once
  confirm_at(300ms, kB, id);
  EXPECT_FALSE(o.result) << "acknowledged with two of three replicas";
  EXPECT_NE(engine_->find(id), nullptr) << "in flight until acknowledged";
  confirm_at(400ms, kC, id);
  ASSERT_TRUE(o.result);
  ASSERT_TRUE(*o.result) << o.result->error().to_string();
  EXPECT_EQ(o.at, 400ms);
  EXPECT_EQ((*o.result)->replicas, 3u);
  EXPECT_EQ((*o.result)->first.id, id);
  EXPECT_EQ((*o.result)->first.index, BlobIndex{0});
  EXPECT_EQ(engine_->find(id), nullptr);
  EXPECT_EQ(engine_->in_flight(), 0u);
  EXPECT_EQ(observer_.acknowledged_blobs, 1);
  EXPECT_EQ(store_->get_pending(id).error().code, Errc::not_found) << "the pending copy is dropped";
}

TEST_F(UploadTest, AConfirmationFromANodeTheRegistryDoesNotListDoesNotCount) {
  chain_.listed_nodes = {kA, kB};
  start();
  auto b = blob(2);
  const BlobId id = b->commitment.id;
  Outcome& o = kept();
  upload(b, o, 2);
  confirm_at(100ms, kA, id);
  confirm_at(200ms, kStranger, id);
  EXPECT_FALSE(o.result) << "a stranger's stored notice counted as a replica";
  confirm_at(300ms, kB, id);
  ASSERT_TRUE(o.result);
  ASSERT_TRUE(*o.result);
  EXPECT_EQ(o.at, 300ms);
  EXPECT_EQ((*o.result)->replicas, 2u);
}

TEST_F(UploadTest, TheDeadlineFailsTheUploadAtExactlyTheDeadline) {
  start();
  auto b = blob(3);
  const BlobId id = b->commitment.id;
  Outcome& o = kept();
  upload(b, o, 2, 5s);
  confirm_at(1s, kA, id);
  clock_.advance(5s - 1ns - clock_.elapsed());
  EXPECT_FALSE(o.result);
  clock_.advance(1ns);
  ASSERT_TRUE(o.result);
  ASSERT_FALSE(*o.result);
  EXPECT_EQ(o.at, 5s);
  EXPECT_EQ(o.result->error().code, Errc::timeout);
  EXPECT_NE(
      o.result->error().message.find("1 blob(s) did not reach 2 confirmed replica(s) in time"),
      std::string::npos)
      << o.result->error().message;
  // The blob keeps replicating: still served, still pending, and a late
  // confirmation acknowledges it without calling the caller again.
  EXPECT_NE(engine_->find(id), nullptr);
  EXPECT_TRUE(store_->get_pending(id));
  confirm_at(6s, kB, id);
  EXPECT_EQ(engine_->find(id), nullptr);
  EXPECT_EQ(o.calls, 1);
}

TEST_F(UploadTest, AFullWindowMakesTheNextUploadWaitThenProceed) {
  settings_.max_blobs_in_flight = 1;
  chain_.automatic = false;  // the second registration stays unanswered
  start();
  auto a = blob(4), b = blob(5);
  Outcome& oa = kept();
  Outcome& ob = kept();
  auto& admitted_a = kept_admitted();
  auto& admitted_b = kept_admitted();
  upload(a, oa, 1, 60s, &admitted_a);
  upload(b, ob, 1, 60s, &admitted_b);
  ASSERT_TRUE(admitted_a && *admitted_a);
  EXPECT_FALSE(admitted_b) << "admitted beyond the window";
  ASSERT_EQ(chain_.calls.size(), 1u);
  EXPECT_EQ(engine_->find(b->commitment.id), nullptr);

  clock_.advance(50ms);
  chain_.answer(0);
  clock_.settle();
  confirm_at(100ms, kA, a->commitment.id);
  ASSERT_TRUE(oa.result && *oa.result);
  EXPECT_EQ(oa.at, 100ms);
  // The window freed: the second blob is admitted and registered then.
  ASSERT_TRUE(admitted_b);
  EXPECT_TRUE(*admitted_b);
  ASSERT_EQ(chain_.calls.size(), 2u);
  EXPECT_EQ(chain_.calls[1].id, b->commitment.id);
  EXPECT_EQ(chain_.calls[1].at, 100ms);
  EXPECT_NE(engine_->find(b->commitment.id), nullptr);
  // Its registration never answered: time still moves and nothing spins.
  clock_.advance(10s);
  EXPECT_FALSE(ob.result);
}

TEST_F(UploadTest, TheWindowStayingFullUntilTheDeadlineFailsTheWaitingUpload) {
  settings_.max_blobs_in_flight = 1;
  start();
  Outcome& oa = kept();
  Outcome& ob = kept();
  auto& admitted_b = kept_admitted();
  upload(blob(6), oa, 2, 60s);
  upload(blob(7), ob, 1, 2s, &admitted_b);
  clock_.advance(2s);
  ASSERT_TRUE(admitted_b);
  EXPECT_EQ(admitted_b->error().code, Errc::timeout);
  ASSERT_TRUE(ob.result && !*ob.result);
  EXPECT_EQ(ob.at, 2s);
  EXPECT_NE(ob.result->error().message.find("upload window (1 blobs) stayed full"),
            std::string::npos)
      << ob.result->error().message;
}

TEST_F(UploadTest, AFailedRegistrationFailsTheUploadAndNothingIsAcknowledged) {
  chain_.automatic = false;
  start();
  auto b = blob(8);
  const BlobId id = b->commitment.id;
  Outcome& o = kept();
  upload(b, o, 1);
  ASSERT_EQ(chain_.calls.size(), 1u);
  clock_.advance(30ms);
  chain_.refuse(0, Error{Errc::conflict, "PutBlob rejected: fee too low"});
  clock_.settle();
  ASSERT_TRUE(o.result);
  ASSERT_FALSE(*o.result);
  EXPECT_EQ(o.at, 30ms);
  EXPECT_EQ(o.result->error().code, Errc::conflict);
  EXPECT_NE(o.result->error().message.find("fee too low"), std::string::npos);
  EXPECT_EQ(observer_.acknowledged_blobs, 0);
  EXPECT_EQ(observer_.failed_blobs, 1);
  EXPECT_EQ(engine_->find(id), nullptr);
  EXPECT_TRUE(gossip_.announced.empty()) << "announced a blob the chain refused";
  EXPECT_EQ(store_->get_pending(id).error().code, Errc::not_found);
  // A late confirmation changes nothing.
  confirm_at(100ms, kA, id);
  EXPECT_EQ(o.calls, 1);
  EXPECT_EQ(observer_.acknowledged_blobs, 0);
}

TEST_F(UploadTest, PhasesAreReportedInOrderAtMostEveryPhaseInterval) {
  chain_.listed_nodes = {kA, kB};
  start();
  auto b = blob(9);
  const BlobId id = b->commitment.id;
  Outcome& o = kept();
  upload(b, o, 2, 60s, nullptr, /*phases=*/true);
  // At 0: admitted. Sealing and registration, also at 0, wait for the
  // interval.
  confirm_at(30ms, kA, id);
  clock_.advance(100ms - clock_.elapsed());
  confirm_at(250ms, kB, id);
  ASSERT_TRUE(o.result && *o.result);
  EXPECT_EQ(o.at, 250ms);
  ASSERT_EQ(o.phases.size(), 2u);
  EXPECT_EQ(o.phases[0].first, (UploadPhase{1, false, 0, 0, 0, 0}));
  EXPECT_EQ(o.phases[0].second, 0ms);
  EXPECT_EQ(o.phases[1].first, (UploadPhase{1, true, 1, 0, 1, 2}));
  EXPECT_EQ(o.phases[1].second, 100ms);
  EXPECT_EQ((*o.result)->phase, (UploadPhase{1, true, 1, 1, 2, 2}));
}

TEST_F(UploadTest, AfterARestartWhatWasPersistedButNotRegisteredIsRegisteredAgain) {
  chain_.automatic = false;
  start();
  auto b = blob(10);
  const BlobId id = b->commitment.id;
  Outcome& o = kept();
  upload(b, o, 1);
  ASSERT_EQ(chain_.calls.size(), 1u);
  ASSERT_TRUE(store_->get_pending(id)) << "persisted before registering";
  // The node stops before the chain answers; the caller is told.
  engine_->stop();
  clock_.settle();
  ASSERT_TRUE(o.result && !*o.result);
  EXPECT_EQ(o.result->error().code, Errc::cancelled);
  engine_.reset();
  ASSERT_TRUE(store_->close());
  store_.reset();
  chain_.calls.clear();

  open();
  chain_.automatic = true;
  start();
  auto resumed = engine_->resume();
  ASSERT_TRUE(resumed) << resumed.error().to_string();
  EXPECT_EQ(*resumed, 1u);
  clock_.settle();
  ASSERT_EQ(chain_.calls.size(), 1u);
  EXPECT_EQ(chain_.calls[0].id, id);
  EXPECT_EQ(chain_.calls[0].size, b->encoded.length);
  ASSERT_NE(engine_->find(id), nullptr) << "a resumed blob is served to pullers";
  EXPECT_EQ(gossip_.announced.size(), 1u);
  // Resumed blobs need UploadSettings::min_replicas (2) confirmations.
  confirm_at(1s, kA, id);
  EXPECT_NE(engine_->find(id), nullptr);
  confirm_at(2s, kB, id);
  EXPECT_EQ(engine_->find(id), nullptr);
  EXPECT_EQ(store_->get_pending(id).error().code, Errc::not_found);
}

TEST_F(UploadTest, StopFailsEveryWaiterOnceAndKeepsTheBlobsPending) {
  settings_.max_blobs_in_flight = 1;
  start();
  auto a = blob(11), b = blob(12);
  Outcome& oa = kept();
  Outcome& ob = kept();
  auto& admitted_b = kept_admitted();
  upload(a, oa, 2);
  upload(b, ob, 2, 60s, &admitted_b);
  EXPECT_FALSE(admitted_b);
  clock_.advance(1s);
  engine_->stop();
  ASSERT_TRUE(oa.result && !*oa.result);
  EXPECT_EQ(oa.result->error().code, Errc::cancelled);
  EXPECT_NE(oa.result->error().message.find("stay pending and resume at the next start"),
            std::string::npos)
      << oa.result->error().message;
  ASSERT_TRUE(ob.result && !*ob.result);
  EXPECT_EQ(ob.result->error().code, Errc::cancelled);
  ASSERT_TRUE(admitted_b);
  EXPECT_EQ(admitted_b->error().code, Errc::cancelled);
  clock_.settle();
  EXPECT_TRUE(store_->get_pending(a->commitment.id)) << "a stopped upload stays pending";
  // Nothing runs after stop: confirmations, deadlines, new uploads.
  confirm_at(2s, kA, a->commitment.id);
  clock_.advance(120s);
  EXPECT_EQ(oa.calls, 1);
  EXPECT_EQ(ob.calls, 1);
  Outcome& oc = kept();
  upload(blob(13), oc, 1);
  ASSERT_TRUE(oc.result && !*oc.result);
  EXPECT_EQ(oc.result->error().code, Errc::cancelled);
}

TEST_F(UploadTest, ThisNodesOwnStoredReplicaIsAConfirmation) {
  chain_.served = {0};
  chain_.listed_nodes = {kA};
  start();
  auto b = blob(14);
  const BlobId id = b->commitment.id;
  Outcome& o = kept();
  upload(b, o, 2);
  ASSERT_EQ(gossip_.stored_own.size(), 1u) << "own replica stored and told";
  EXPECT_TRUE(store_->get_blob(id)) << "own replica in the store";
  EXPECT_FALSE(o.result);
  confirm_at(100ms, kA, id);
  ASSERT_TRUE(o.result && *o.result);
  EXPECT_EQ(o.at, 100ms);
  EXPECT_EQ((*o.result)->replicas, 2u);
}

}  // namespace
}  // namespace cairn::shards
