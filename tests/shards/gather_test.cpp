// The fragment gather over in-memory peers (real sealed stores served with
// serve_fragments, as the node serves) on a manual clock: which peer is
// asked for what and at which exact virtual time, verdicts, substitution by
// the peer, and exactly-once completion.

#include "cairn/shards/gather.hpp"

#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <future>
#include <map>
#include <optional>

#include "cairn/erasure/codec.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/shards/serve.hpp"
#include "shards/clocked_peers.hpp"
#include "shards/memory_network.hpp"
#include "shards/sync_testing.hpp"
#include "support/test_util.hpp"

namespace cairn::shards {
namespace {

using namespace std::chrono_literals;

using testing::ClockedPeers;
using Mode = testing::PeerAnswer;

class GatherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    params_ = testing::sync_params();
    codec_ = *erasure::Codec::create(params_);
    auto rng = test::seeded_rng(31);
    corpus_ = testing::make_corpus(*codec_, BlobIndex{0}, 2, rng);
    for (uint8_t i = 0; i < 3; ++i) {
      nodes_.push_back(
          testing::make_node(params_, dir_ / ("peer" + std::to_string(i)), uint8_t(0x40 + i)));
      testing::ingest_corpus(*nodes_.back(), *codec_, corpus_);
    }
    settings_.hedge_after = 2s;
    settings_.deadline = 30s;
  }

  void TearDown() override {
    if (gather_) gather_->stop();
    settle();
  }

  void start(GatherSettings settings) {
    gather_ = std::make_unique<FragmentGather>(
        peers_, pool_, clock_, io_.get_executor(),
        [this](std::function<void()> fn) { asio::post(io_, std::move(fn)); }, params_, settings);
  }

  NodeId id(size_t i) const { return nodes_[i]->id; }

  GatherRequest request(size_t blob, std::vector<NodeId> peers) const {
    GatherRequest r;
    r.id = corpus_.blobs[blob].id;
    r.index = corpus_.blobs[blob].index;
    for (uint32_t f = 0; f < params_.total_fragments(); ++f)
      r.wanted.push_back(FragmentIndex{static_cast<uint8_t>(f)});
    r.at_least = params_.data_fragments;
    r.peers = std::move(peers);
    return r;
  }

  // Runs what is ready, including the pool's verifications and what they
  // post back, without moving time (one worker: a barrier job that ran
  // means every job queued before it ran too).
  void settle() {
    for (int round = 0; round < 100; ++round) {
      clock_.settle();
      const uint64_t before = pool_.stats().completed;
      std::promise<void> barrier;
      auto ran = barrier.get_future();
      ASSERT_TRUE(pool_.try_submit([&barrier] { barrier.set_value(); }));
      ran.wait();
      clock_.settle();
      if (pool_.stats().completed == before + 1) return;
    }
  }

  // Moves time from deadline to deadline, settling in between, until
  // `done` holds or `limit` of virtual time has passed.
  bool run_until(const std::function<bool()>& done, Duration limit) {
    const TimePoint end = clock_.now() + limit;
    settle();
    while (!done()) {
      TimePoint next;
      if (!clock_.next_deadline(next) || next > end) return false;
      clock_.advance(next - clock_.now());
      settle();
    }
    return true;
  }

  // Completions of one gather, counted.
  struct Outcome {
    int calls = 0;
    std::optional<Result<Gathered>> result;
    Duration at{};
  };
  GatherCallback record(Outcome& o) {
    return [this, &o](Result<Gathered> r) {
      ++o.calls;
      o.result = std::move(r);
      o.at = clock_.elapsed();
    };
  }

  void expect_blob(const Outcome& o, size_t blob) {
    ASSERT_TRUE(o.result.has_value());
    ASSERT_TRUE(*o.result) << o.result->error().to_string();
    std::vector<erasure::FragmentRef> refs;
    const FragmentReply& reply = (*o.result)->reply;
    const size_t fs = params_.fragment_size();
    for (size_t i = 0; i < reply.fragments.size(); ++i) {
      refs.push_back(
          erasure::FragmentRef{reply.fragments[i].value, ByteSpan(reply.data).subspan(i * fs, fs)});
    }
    auto payload = codec_->decode(refs, corpus_.blobs[blob].length);
    ASSERT_TRUE(payload) << payload.error().to_string();
    EXPECT_EQ(*payload, corpus_.payloads[blob]);
    auto verified = verify_fetched(*codec_, corpus_.blobs[blob], reply);
    ASSERT_TRUE(verified) << verified.error().to_string();
  }

  test::TempDir dir_;
  erasure::NetworkParams params_;
  std::shared_ptr<const erasure::Codec> codec_;
  testing::Corpus corpus_;
  std::vector<std::unique_ptr<testing::TestNode>> nodes_;
  asio::io_context io_;
  p2p::ManualClock clock_{io_};
  WorkerPool pool_{WorkerPoolSettings{1, 64}};
  ClockedPeers peers_{io_, clock_, 60s};
  GatherSettings settings_;
  std::unique_ptr<FragmentGather> gather_;
};

TEST_F(GatherTest, AsksOnePeerForTheDataFragmentsWithAtLeast) {
  peers_.add(id(0), nodes_[0].get(), Mode::honest, 10ms);
  start(settings_);
  Outcome o;
  gather_->gather(request(0, {id(0)}), record(o));
  ASSERT_TRUE(run_until([&] { return o.calls > 0; }, 60s));
  expect_blob(o, 0);
  EXPECT_EQ(o.at, 10ms);
  ASSERT_EQ(peers_.sent().size(), 1u);
  const FragmentRequest& sent = peers_.sent()[0].request;
  EXPECT_EQ(sent.fragments, (std::vector<FragmentIndex>{FragmentIndex{0}, FragmentIndex{1},
                                                        FragmentIndex{2}, FragmentIndex{3}}));
  EXPECT_EQ(sent.at_least, params_.data_fragments) << "every request lets the peer substitute";
  EXPECT_EQ((*o.result)->served, std::vector<NodeId>{id(0)});
  EXPECT_EQ(peers_.verdicts(id(0)), std::vector<PeerVerdict>{PeerVerdict::good});
}

TEST_F(GatherTest, ParallelPeersGetDisjointShares) {
  peers_.add(id(0), nodes_[0].get(), Mode::honest, 10ms);
  peers_.add(id(1), nodes_[1].get(), Mode::honest, 10ms);
  GatherSettings s = settings_;
  s.parallel_peers = 2;
  start(s);
  Outcome o;
  gather_->gather(request(1, {id(0), id(1)}), record(o));
  ASSERT_TRUE(run_until([&] { return o.calls > 0; }, 60s));
  expect_blob(o, 1);
  ASSERT_EQ(peers_.sent().size(), 2u);
  EXPECT_EQ(peers_.sent()[0].request.fragments,
            (std::vector<FragmentIndex>{FragmentIndex{0}, FragmentIndex{2}}));
  EXPECT_EQ(peers_.sent()[1].request.fragments,
            (std::vector<FragmentIndex>{FragmentIndex{1}, FragmentIndex{3}}));
  EXPECT_EQ(peers_.sent()[0].request.at_least, 2u);
  EXPECT_EQ(o.at, 10ms);
}

TEST_F(GatherTest, HedgesToTheNextPeerAtExactlyHedgeAfter) {
  peers_.add(id(0), nodes_[0].get(), Mode::honest, 5s);  // slow
  peers_.add(id(1), nodes_[1].get(), Mode::honest, 100ms);
  start(settings_);
  Outcome o;
  gather_->gather(request(0, {id(0), id(1)}), record(o));
  ASSERT_TRUE(run_until([&] { return o.calls > 0; }, 60s));
  expect_blob(o, 0);
  ASSERT_EQ(peers_.sent().size(), 2u);
  EXPECT_EQ(peers_.sent()[0].peer, id(0));
  EXPECT_EQ(peers_.sent()[0].at, 0ms);
  EXPECT_EQ(peers_.sent()[1].peer, id(1));
  EXPECT_EQ(peers_.sent()[1].at, 2s) << "the hedge leaves at hedge_after, not before or after";
  EXPECT_EQ(peers_.sent()[1].request.fragments, peers_.sent()[0].request.fragments);
  EXPECT_EQ(o.at, 2100ms);
  EXPECT_EQ((*o.result)->served, std::vector<NodeId>{id(1)});
  EXPECT_EQ(peers_.verdicts(id(0)), std::vector<PeerVerdict>{PeerVerdict::slow});
  EXPECT_EQ(peers_.cancels(), 1u) << "the overtaken request is cancelled";
  EXPECT_EQ(o.calls, 1);
}

TEST_F(GatherTest, APeerSendingABadFragmentIsReportedAndRoutedAround) {
  peers_.add(id(0), nodes_[0].get(), Mode::corrupt, 10ms);  // flips a byte of fragment 0
  peers_.add(id(1), nodes_[1].get(), Mode::honest, 10ms);
  start(settings_);
  Outcome o;
  gather_->gather(request(1, {id(0), id(1)}), record(o));
  ASSERT_TRUE(run_until([&] { return o.calls > 0; }, 60s));
  expect_blob(o, 1);
  EXPECT_EQ(peers_.verdicts(id(0)), std::vector<PeerVerdict>{PeerVerdict::invalid_data});
  EXPECT_EQ(peers_.verdicts(id(1)), std::vector<PeerVerdict>{PeerVerdict::good});
  ASSERT_EQ(peers_.sent().size(), 2u);
  EXPECT_EQ(peers_.sent()[1].peer, id(1));
  EXPECT_EQ(peers_.sent()[1].at, 10ms) << "asked as soon as the bad reply was checked";
  EXPECT_EQ(peers_.sent()[1].request.fragments, std::vector<FragmentIndex>{FragmentIndex{0}})
      << "only the fragment that failed is asked again; the verified ones are kept";
  EXPECT_EQ(o.at, 20ms);
  // Alone, the bad peer cannot complete a gather: its bad fragment is never used.
  Outcome second;
  gather_->gather(request(0, {id(0)}), record(second));
  ASSERT_TRUE(run_until([&] { return second.calls > 0; }, 60s));
  ASSERT_FALSE(*second.result);
  EXPECT_EQ(second.result->error().code, Errc::too_many_losses);
  EXPECT_EQ(peers_.sent_to(id(0)), 2u);
}

TEST_F(GatherTest, APeerWithADamagedDataFragmentAnswersWithParity) {
  auto rng = test::seeded_rng(32);
  ASSERT_TRUE(nodes_[0]->store->put_fragment(corpus_.blobs[1].index, FragmentIndex{2},
                                             test::random_bytes(rng, params_.fragment_size())));
  peers_.add(id(0), nodes_[0].get(), Mode::honest, 10ms);
  peers_.add(id(1), nodes_[1].get(), Mode::honest, 10ms);
  start(settings_);
  Outcome o;
  gather_->gather(request(1, {id(0), id(1)}), record(o));
  ASSERT_TRUE(run_until([&] { return o.calls > 0; }, 60s));
  expect_blob(o, 1);
  EXPECT_EQ(peers_.sent().size(), 1u) << "one request: the peer substituted, nobody else was asked";
  EXPECT_EQ((*o.result)->reply.fragments,
            (std::vector<FragmentIndex>{FragmentIndex{0}, FragmentIndex{1}, FragmentIndex{3},
                                        FragmentIndex{4}}));
  EXPECT_EQ(o.at, 10ms);
}

TEST_F(GatherTest, CompletesExactlyOnceOnCancelStopAndDeadline) {
  peers_.add(id(0), nodes_[0].get(), Mode::silent, 0ms);
  start(settings_);
  Outcome cancelled, stopped, late, timed;
  const GatherHandle h = gather_->gather(request(0, {id(0)}), record(cancelled));
  gather_->gather(request(1, {id(0)}), record(timed));
  settle();
  gather_->cancel(h);
  gather_->cancel(h);  // a second cancel is ignored
  settle();
  EXPECT_EQ(clock_.elapsed(), 0ms);
  EXPECT_EQ(cancelled.calls, 1);
  EXPECT_EQ(cancelled.result->error().code, Errc::cancelled);
  ASSERT_TRUE(run_until([&] { return timed.calls > 0; }, 60s));
  EXPECT_EQ(timed.result->error().code, Errc::timeout);
  EXPECT_EQ(timed.at, 30s) << "the gather's deadline";

  gather_->gather(request(0, {id(0)}), record(stopped));
  settle();
  EXPECT_EQ(gather_->active(), 1u);
  gather_->stop();
  EXPECT_EQ(stopped.calls, 1);
  EXPECT_EQ(stopped.result->error().code, Errc::cancelled);
  gather_->gather(request(0, {id(0)}), record(late));
  EXPECT_EQ(late.calls, 0) << "never inside the call";
  run_until([] { return false; }, 120s);
  EXPECT_EQ(cancelled.calls, 1);
  EXPECT_EQ(timed.calls, 1);
  EXPECT_EQ(stopped.calls, 1);
  EXPECT_EQ(late.calls, 1);
  EXPECT_EQ(late.result->error().code, Errc::cancelled);
  EXPECT_EQ(peers_.pending(), 0u) << "every request was cancelled";
}

TEST_F(GatherTest, FailsWhenEveryCandidateFails) {
  peers_.add(id(0), nodes_[0].get(), Mode::missing, 10ms);
  peers_.add(id(1), nodes_[1].get(), Mode::busy, 10ms);
  GatherSettings s = settings_;
  s.deadline = 1s;
  start(s);
  Outcome none, missing;
  gather_->gather(request(0, {}), record(none));
  gather_->gather(request(0, {id(0)}), record(missing));
  ASSERT_TRUE(run_until([&] { return none.calls > 0 && missing.calls > 0; }, 60s));
  EXPECT_EQ(none.result->error().code, Errc::not_found);
  EXPECT_EQ(missing.result->error().code, Errc::too_many_losses);
  EXPECT_EQ(missing.at, 10ms);
  EXPECT_EQ(peers_.verdicts(id(0)), std::vector<PeerVerdict>{PeerVerdict::unavailable});
  // A peer refusing as busy is offered the request again until the deadline.
  Outcome busy;
  gather_->gather(request(0, {id(1)}), record(busy));
  ASSERT_TRUE(run_until([&] { return busy.calls > 0; }, 60s));
  EXPECT_EQ(busy.result->error().code, Errc::timeout);
}

TEST_F(GatherTest, ProbeReturnsThePeersHoldingTheBlob) {
  peers_.add(id(0), nodes_[0].get(), Mode::honest, 10ms);
  peers_.add(id(1), nodes_[1].get(), Mode::missing, 10ms);
  peers_.add(id(2), nodes_[2].get(), Mode::silent, 0ms);
  start(settings_);
  std::optional<std::vector<NodeId>> holders;
  int calls = 0;
  Duration at{};
  gather_->probe(corpus_.blobs[0].id, corpus_.blobs[0].index, {id(0), id(1), id(2)}, 500ms,
                 [&](std::vector<NodeId> h) {
                   ++calls;
                   holders = std::move(h);
                   at = clock_.elapsed();
                 });
  ASSERT_TRUE(run_until([&] { return calls > 0; }, 60s));
  EXPECT_EQ(*holders, std::vector<NodeId>{id(0)});
  EXPECT_EQ(at, 500ms) << "the silent peer is waited for until the timeout";
  for (const auto& s : peers_.sent()) {
    EXPECT_TRUE(s.request.fragments.empty());
    EXPECT_EQ(s.request.at_least, 0u);
  }
  run_until([] { return false; }, 120s);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace cairn::shards
