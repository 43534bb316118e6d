// The node's storage-challenge driver (tools/node/challenger.*) on an
// in-process network: real Nodes on loopback sharing a short-epoch dev chain.
// Every node walks its sealed replica each epoch, anchors, opens and gossips
// its response; the proof any node assembles counts every node and verifies
// against the sequencer key; a node whose stored replica lost fragments is
// reported and left out of the count; a node that missed the gossip fetches
// the anchored responses from their nodes, and one that serves an invalid
// response is left out and charged.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "cairn/core/log.hpp"

#include "cairn/sampling/proof.hpp"
#include "cairn/shards/store.hpp"
#include "node/cluster.hpp"

namespace cairn::node::test {
namespace {

// 100 ms blocks, 10-block epochs whose anchors are due within 4 blocks, and
// a shorter walk than the tuned one (the store is tiny; the point here is
// the node's plumbing, docs/proof-format.md covers the timing).
erasure::NetworkParams challenge_params() {
  auto p = erasure::NetworkParams::localnet();
  p.block_time_ms = 100;
  p.epoch_blocks = 10;
  p.deadline_blocks = 4;
  p.walk_steps = 2048;
  return p;
}

void tweak(NodeSettings& s) {
  s.challenge.settle_blocks = 3;
  // The damaged replica below must stay damaged.
  s.storage.scrub.enabled = false;
}

// The first recorded epoch of `node` starting after block `after` that
// satisfies `pred`.
std::optional<EpochChallengeStatus> recorded_epoch(
    Node& node, uint64_t after, const std::function<bool(const EpochChallengeStatus&)>& pred) {
  auto st = node.service().status();
  if (!st) return std::nullopt;
  for (const auto& c : st->challenges) {
    if (c.start_block.value > after && pred(c)) return c;
  }
  return std::nullopt;
}

uint64_t head_of(Cluster& net) { return net.chain().head()->number.value; }

bool lists(const std::vector<PeerChallengeResult>& list, const NodeId& id) {
  return std::any_of(list.begin(), list.end(),
                     [&](const PeerChallengeResult& p) { return p.node == id; });
}

// Starts `nodes` nodes, waits for them to mesh and uploads `bytes` random
// bytes that every node confirms holding.
PutFileResult mesh_and_upload(Cluster& net, uint32_t nodes, size_t bytes, uint64_t salt) {
  for (uint32_t i = 0; i < nodes; ++i) net.add(tweak);
  if (!eventually([&] { return net.meshed(); })) throw std::runtime_error("nodes did not mesh");
  auto rng = cairn::test::seeded_rng(salt);
  PutOptions opts;
  opts.min_replicas = nodes;
  auto put = net.node(0).service().put_file(cairn::test::random_bytes(rng, bytes), opts);
  if (!put) throw std::runtime_error("upload: " + put.error().to_string());
  return *put;
}

TEST(Challenge, EveryNodeAnchorsAndProvesAndADamagedReplicaIsLeftOut) {
  Cluster net(challenge_params());
  const auto put = mesh_and_upload(net, 3, 300 * 1024, 6);
  auto rng = cairn::test::seeded_rng(8);
  const uint64_t blobs = put.data_blobs + put.manifest_blobs;
  const uint64_t uploaded_at = head_of(net);
  const NodeId sequencer = net.chain().info().sequencer;

  // An epoch after the upload: every node anchored and every node holds all
  // three valid responses.
  std::optional<EpochChallengeStatus> full;
  ASSERT_TRUE(eventually(
      [&] {
        full = recorded_epoch(net.node(0), uploaded_at,
                              [](const EpochChallengeStatus& c) { return c.valid == 3; });
        return full.has_value();
      },
      30s))
      << "no epoch with three valid responses";
  EXPECT_EQ(full->own, "anchored") << full->own_detail;
  EXPECT_TRUE(full->missing.empty());
  EXPECT_TRUE(full->invalid.empty());
  EXPECT_GE(full->blob_count, blobs);
  EXPECT_GT(full->walk_seconds, 0);
  // The status model keeps the shard's finished epochs, oldest first, the
  // latest of them also in `challenges`.
  ASSERT_TRUE(eventually(
      [&] { return net.node(0).service().status()->challenge_history.size() >= 2; }, 30s));
  {
    const auto st = net.node(0).service().status();
    ASSERT_TRUE(st);
    const auto& history = st->challenge_history;
    EXPECT_LE(history.size(), kChallengeHistoryEpochs);
    for (size_t i = 1; i < history.size(); ++i)
      EXPECT_LT(history[i - 1].epoch.value, history[i].epoch.value);
    ASSERT_EQ(st->challenges.size(), 1u);
    EXPECT_EQ(history.back().epoch, st->challenges[0].epoch);
    EXPECT_TRUE(std::any_of(history.begin(), history.end(), [&](const EpochChallengeStatus& c) {
      return c.epoch == full->epoch && c.valid == 3;
    }));
  }
  for (size_t i = 0; i < 3; ++i) {
    auto proof = net.node(i).service().replica_proof(ShardId{0}, full->epoch);
    ASSERT_TRUE(proof) << "node " << i << ": " << proof.error().to_string();
    EXPECT_EQ(proof->replicas, 3u);
    auto report = sampling::verify_replica_proof(proof->bytes, sampling::TrustRoot::key(sequencer));
    ASSERT_TRUE(report) << "node " << i << ": " << report.error().to_string();
    EXPECT_EQ(report->replicas(), 3u);
    EXPECT_EQ(report->epoch, full->epoch);
    EXPECT_GE(report->blob_count, blobs);
    for (size_t j = 0; j < 3; ++j) {
      EXPECT_TRUE(std::binary_search(report->nodes.begin(), report->nodes.end(), net.node(j).id()));
    }
  }
  // The latest proof for the file is as good, and an unfinished epoch is refused.
  auto latest = net.node(1).service().latest_proof(put.id);
  ASSERT_TRUE(latest) << latest.error().to_string();
  EXPECT_GE(latest->epoch.value, full->epoch.value);
  auto future = net.node(1).service().replica_proof(ShardId{0}, Epoch{head_of(net) / 10 + 5});
  ASSERT_FALSE(future);
  EXPECT_EQ(future.error().code, Errc::conflict);
  const std::string metrics = net.node(0).service().metrics_text();
  EXPECT_NE(metrics.find("cairn_challenge_responses_anchored_total"), std::string::npos);
  EXPECT_NE(metrics.find("cairn_challenge_walk_seconds_count"), std::string::npos);

  // Node 2 loses 30% of its stored fragments (overwritten while it is down;
  // scrub is off, and its sync sees every blob as held).
  const NodeId damaged = net.node(2).id();
  const std::filesystem::path dir2 = net.dir(2);
  net.remove(2);
  {
    shards::StoreSettings ss;
    ss.sync_writes = false;
    auto store = shards::Store::open(dir2 / "store", challenge_params(), ss);
    ASSERT_TRUE(store) << store.error().to_string();
    auto indexes = (*store)->list_shard(ShardId{0});
    ASSERT_TRUE(indexes);
    const auto params = challenge_params();
    const Bytes zeros(params.fragment_size(), 0);
    size_t damaged_fragments = 0;
    for (BlobIndex index : *indexes) {
      for (uint32_t f = 0; f < params.total_fragments(); ++f) {
        if (rng() % 10 >= 3) continue;
        ASSERT_TRUE((*store)->put_fragment(index, FragmentIndex{static_cast<uint8_t>(f)}, zeros));
        ++damaged_fragments;
      }
    }
    EXPECT_GT(damaged_fragments, 0u);
    ASSERT_TRUE((*store)->close());
  }
  net.add([&](NodeSettings& s) {
    tweak(s);
    s.data_dir = dir2.string();
  });
  const size_t restarted = net.size() - 1;
  ASSERT_EQ(net.node(restarted).id(), damaged);
  // Its kept responses survived the restart: it still proves the full epoch.
  auto kept = net.node(restarted).service().replica_proof(ShardId{0}, full->epoch);
  ASSERT_TRUE(kept) << kept.error().to_string();
  EXPECT_EQ(kept->replicas, 3u);
  // Its new registration (a new port) takes effect for later epochs.
  const uint64_t restarted_at = head_of(net) + 10;

  std::optional<EpochChallengeStatus> short_epoch;
  ASSERT_TRUE(eventually(
      [&] {
        short_epoch = recorded_epoch(net.node(0), restarted_at, [&](const EpochChallengeStatus& c) {
          return lists(c.missing, damaged) || lists(c.invalid, damaged);
        });
        return short_epoch.has_value();
      },
      30s))
      << "the damaged node was never reported";
  EXPECT_EQ(short_epoch->valid, 2u);
  auto proof = net.node(0).service().replica_proof(ShardId{0}, short_epoch->epoch);
  ASSERT_TRUE(proof) << proof.error().to_string();
  auto report = sampling::verify_replica_proof(proof->bytes, sampling::TrustRoot::key(sequencer));
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->replicas(), 2u);
  EXPECT_FALSE(std::binary_search(report->nodes.begin(), report->nodes.end(), damaged));
  // The damaged node itself knows why it did not count.
  ASSERT_TRUE(eventually([&] {
    return recorded_epoch(net.node(restarted), restarted_at,
                          [](const EpochChallengeStatus& c) {
                            return c.own == "failed" && !c.own_detail.empty();
                          })
        .has_value();
  }));
}

TEST(Challenge, ANodeThatMissedTheGossipFetchesResponsesAndChargesAnInvalidOne) {
  Cluster net(challenge_params());
  (void)mesh_and_upload(net, 2, 200 * 1024, 7);
  const uint64_t uploaded_at = head_of(net);
  std::optional<EpochChallengeStatus> both;
  ASSERT_TRUE(eventually(
      [&] {
        both = recorded_epoch(net.node(0), uploaded_at,
                              [](const EpochChallengeStatus& c) { return c.valid == 2; });
        return both.has_value();
      },
      30s));

  // A node started after that epoch never saw its gossip: it asks the
  // anchoring nodes for their responses, verifies them, and proves both.
  Node& late = net.add(tweak);
  ASSERT_TRUE(eventually([&] { return net.meshed(); })) << "the late node did not mesh";
  auto proof = late.service().replica_proof(ShardId{0}, both->epoch);
  ASSERT_TRUE(proof) << proof.error().to_string();
  auto report = sampling::verify_replica_proof(
      proof->bytes, sampling::TrustRoot::key(net.chain().info().sequencer));
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->replicas(), 2u);
  EXPECT_TRUE(std::binary_search(report->nodes.begin(), report->nodes.end(), net.node(0).id()));
  EXPECT_TRUE(std::binary_search(report->nodes.begin(), report->nodes.end(), net.node(1).id()));

  // Node 1 now serves a tampered copy of its response: another late node
  // that fetches it finds it invalid, leaves node 1 out and charges it.
  const NodeId cheat = net.node(1).id();
  const std::filesystem::path dir1 = net.dir(1);
  net.remove(1);
  {
    shards::StoreSettings ss;
    ss.sync_writes = false;
    auto store = shards::Store::open(dir1 / "store", challenge_params(), ss);
    ASSERT_TRUE(store) << store.error().to_string();
    auto value = (*store)->get_response(ShardId{0}, both->epoch, cheat);
    ASSERT_TRUE(value) << value.error().to_string();
    (*value)[value->size() / 2] ^= 0x01;
    ASSERT_TRUE((*store)->put_response(ShardId{0}, both->epoch, cheat, *value));
    ASSERT_TRUE((*store)->close());
  }
  net.add([&](NodeSettings& s) {
    tweak(s);
    s.data_dir = dir1.string();
  });
  Node& judge = net.add(tweak);
  ASSERT_TRUE(eventually([&] { return net.meshed(); }))
      << "the restarted and new nodes did not mesh";
  auto judged = judge.service().replica_proof(ShardId{0}, both->epoch);
  ASSERT_TRUE(judged) << judged.error().to_string();
  auto one = sampling::verify_replica_proof(judged->bytes,
                                            sampling::TrustRoot::key(net.chain().info().sequencer));
  ASSERT_TRUE(one) << one.error().to_string();
  EXPECT_EQ(one->replicas(), 1u);
  EXPECT_FALSE(std::binary_search(one->nodes.begin(), one->nodes.end(), cheat));
  EXPECT_NE(judge.service().metrics_text().find("cairn_challenge_responses_invalid_total 1"),
            std::string::npos);
  auto st = judge.service().status();
  ASSERT_TRUE(st);
  const auto peer = std::find_if(st->peers.begin(), st->peers.end(),
                                 [&](const PeerStatus& p) { return p.id == cheat; });
  ASSERT_NE(peer, st->peers.end());
  EXPECT_LT(peer->score, 0) << "the node that signed an invalid response was not charged";
}

// What an operator reads at the default level: one info line per epoch of a
// served shard, with the epoch's counts, the node's own result and its walk
// time against the deadline; the per-step lines (walk, anchor) are debug.
TEST(Challenge, LogsOneInfoSummaryPerEpochAndTheStepsAtDebug) {
  struct Line {
    log::Level level;
    std::string message;
  };
  std::mutex mu;
  std::vector<Line> lines;
  const log::LevelSpec previous_levels = log::set_levels(*log::parse_level_spec("debug"));
  log::Sink previous_sink =
      log::set_sink([&](log::Level l, std::string_view module, std::string_view msg) {
        if (module != "challenge") return;
        std::lock_guard lock(mu);
        lines.push_back({l, std::string(msg)});
      });
  struct Undo {
    log::LevelSpec levels;
    log::Sink& sink;
    ~Undo() {
      log::set_sink(std::move(sink));
      log::set_levels(levels);
    }
  } undo{previous_levels, previous_sink};

  Cluster net(challenge_params());
  (void)mesh_and_upload(net, 1, 100 * 1024, 9);
  const uint64_t uploaded_at = head_of(net);
  // Three recorded epochs after the upload.
  ASSERT_TRUE(eventually(
      [&] {
        auto st = net.node(0).service().status();
        if (!st) return false;
        return std::count_if(st->challenge_history.begin(), st->challenge_history.end(),
                             [&](const EpochChallengeStatus& c) {
                               return c.start_block.value > uploaded_at;
                             }) >= 3;
      },
      30s));
  net.remove(0);

  std::lock_guard lock(mu);
  const std::regex summary(
      R"(^shard 0 epoch (\d+): 1 responses counted, 0 invalid, 0 missing; own ok; walk \d+ ms of a 400 ms deadline$)");
  std::map<uint64_t, int> info_per_epoch;
  size_t walked_debug = 0;
  for (const auto& line : lines) {
    if (line.level == log::Level::info) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(line.message, m, std::regex(R"(^shard 0 epoch (\d+): .*)")))
          << "an info line that is not an epoch summary: " << line.message;
      const uint64_t epoch = std::stoull(m[1].str());
      ++info_per_epoch[epoch];
      if (epoch * 10 > uploaded_at) {
        EXPECT_TRUE(std::regex_match(line.message, summary)) << line.message;
      }
    } else if (line.level == log::Level::debug &&
               line.message.find(": walked ") != std::string::npos) {
      ++walked_debug;
    }
  }
  size_t after_upload = 0;
  for (const auto& [epoch, count] : info_per_epoch) {
    EXPECT_EQ(count, 1) << "epoch " << epoch << " has " << count << " info lines";
    if (epoch * 10 > uploaded_at) ++after_upload;
  }
  EXPECT_GE(after_upload, 3u);
  EXPECT_GE(walked_debug, 3u) << "the walks are no longer logged at debug";
}

}  // namespace
}  // namespace cairn::node::test
