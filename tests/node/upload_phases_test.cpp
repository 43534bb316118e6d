// PutOptions::phases: an upload tells its caller, on the caller's thread,
// how far its blobs got: registered, then confirmed replicas, then every
// blob acknowledged, with counts that only grow.

#include <gtest/gtest.h>

#include <thread>

#include "node/cluster.hpp"

namespace cairn::node::test {
namespace {

TEST(Node, AnUploadReportsItsPhasesToTheCallerInOrder) {
  Cluster net;
  for (int i = 0; i < 3; ++i) net.add();
  ASSERT_TRUE(eventually([&] { return net.meshed(); })) << "nodes did not mesh";
  auto rng = cairn::test::seeded_rng(44);
  const Bytes file = cairn::test::random_bytes(rng, 3 * 131072 - 100);
  std::vector<UploadPhase> phases;
  const auto caller = std::this_thread::get_id();
  PutOptions opts;
  opts.min_replicas = 2;
  opts.compress = erasure::FileOptions::Compress::never;
  opts.phases = [&](const UploadPhase& p) {
    EXPECT_EQ(std::this_thread::get_id(), caller) << "phases run on the caller's thread";
    phases.push_back(p);
  };
  auto pf = net.node(0).service().put_file(file, opts);
  ASSERT_TRUE(pf) << pf.error().to_string();
  ASSERT_FALSE(phases.empty());
  for (size_t i = 1; i < phases.size(); ++i) {
    EXPECT_GE(phases[i].blobs, phases[i - 1].blobs);
    EXPECT_GE(phases[i].registered, phases[i - 1].registered);
    EXPECT_GE(phases[i].acknowledged, phases[i - 1].acknowledged);
    EXPECT_NE(phases[i], phases[i - 1]) << "only changes are reported";
  }
  const UploadPhase& last = phases.back();
  EXPECT_TRUE(last.encoded);
  EXPECT_EQ(last.blobs, 4u);
  EXPECT_EQ(last.registered, 4u);
  EXPECT_EQ(last.acknowledged, 4u);
  EXPECT_EQ(last.need, 2u);
  EXPECT_EQ(last.confirmed, pf->replicas);
  EXPECT_GE(last.confirmed, 2u);
}

}  // namespace
}  // namespace cairn::node::test
