// `cairn localnet` as an operator uses it: up prints the network and
// returns with every node ready, the processes outlive the command, kill /
// restart / status act on one node, down stops everything (twice is fine),
// up again brings the same network back with its data, and a failed up
// leaves no process behind.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "e2e/e2e_network.hpp"
#include "integration/process_network.hpp"

namespace cairn {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

test::RunResult localnet(std::vector<std::string> args, std::chrono::seconds timeout = 180s) {
  args.insert(args.begin(), {test::cairn_binary(), "localnet"});
  return test::run(args, timeout);
}

std::vector<localnet::ProcessRecord> processes(const fs::path& dir) {
  auto st = localnet::load(dir);
  std::vector<localnet::ProcessRecord> out;
  if (!st) return out;
  out.push_back(st->chain);
  for (const auto& n : st->nodes) out.push_back(n.process);
  return out;
}

size_t running(const fs::path& dir) {
  size_t n = 0;
  for (const auto& p : processes(dir)) n += localnet::alive(p) ? 1u : 0u;
  return n;
}

TEST(LocalnetCli, UpKillRestartDownAndUpAgainKeepTheData) {
  test::TempDir tmp;
  const std::string dir = (tmp / "net").string();
  struct Down {
    std::string dir;
    ~Down() { (void)localnet::down(dir); }
  } cleanup{dir};

  auto up = localnet(
      {"up", "--dir", dir, "--nodes", "3", "--shards", "1", "--block-time-ms", "100", "--json"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  const json net = json::parse(up.out, nullptr, false);
  ASSERT_TRUE(net.is_object()) << up.out;
  ASSERT_EQ(net["nodes"].size(), 3u);
  for (const auto& n : net["nodes"]) {
    EXPECT_EQ(n["id"].get<std::string>().size(), 64u) << n.dump();
    EXPECT_TRUE(n["running"].get<bool>());
    EXPECT_EQ(n["shard"].get<uint32_t>(), 0u);
  }
  // The trust root for `cairn verify --trust`: the dev chain's sequencer key.
  EXPECT_EQ(net["chain"]["sequencer"].get<std::string>().size(), 64u) << up.out;
  auto trust = localnet({"trust", "--dir", dir});
  EXPECT_EQ(trust.out, net["chain"]["sequencer"].get<std::string>() + "\n") << trust.err;
  // The processes outlived `cairn localnet up`; each node runs from its config file.
  EXPECT_EQ(running(dir), 4u);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "node1" / "node.toml"));

  auto rng = test::seeded_rng(81);
  const Bytes content = test::random_bytes(rng, 300000);
  test::write_file(tmp / "in", content);
  const std::string id = test::put(net["nodes"][0]["api"].get<std::string>(), tmp / "in");
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(test::got(net["nodes"][1]["api"].get<std::string>(), id, tmp / "out", content));

  auto status = localnet({"status", "--dir", dir, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  for (const auto& n : json::parse(status.out)["nodes"])
    EXPECT_TRUE(n["ready"].get<bool>()) << n.dump();

  // kill: node1 is gone, the others run on.
  const auto before = localnet::load(dir);
  ASSERT_TRUE(before);
  auto kill = localnet({"kill", "node1", "--dir", dir});
  ASSERT_EQ(kill.exit_code, 0) << kill.err;
  EXPECT_FALSE(localnet::alive(before->nodes[1].process));
  EXPECT_EQ(running(dir), 3u);
  status = localnet({"status", "--dir", dir, "--json"});
  const json after_kill = json::parse(status.out);
  EXPECT_FALSE(after_kill["nodes"][1]["running"].get<bool>());
  EXPECT_FALSE(after_kill["nodes"][1]["ready"].get<bool>());
  EXPECT_EQ(localnet({"kill", "node7", "--dir", dir}).exit_code, 2) << "no such node: usage error";

  // restart: a new process, the same identity, ready again.
  auto restart = localnet({"restart", "1", "--dir", dir, "--json"});
  ASSERT_EQ(restart.exit_code, 0) << restart.err;
  const json restarted = json::parse(restart.out);
  EXPECT_EQ(restarted["nodes"][1]["id"], net["nodes"][1]["id"]);
  EXPECT_NE(restarted["nodes"][1]["pid"], net["nodes"][1]["pid"]);
  EXPECT_EQ(running(dir), 4u);

  // down stops everything; a second down is fine.
  auto down = localnet({"down", "--dir", dir});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(running(dir), 0u);
  EXPECT_EQ(localnet({"down", "--dir", dir}).exit_code, 0);

  // up again: same network (identities, shard), same data.
  auto again = localnet({"up", "--dir", dir, "--nodes", "3", "--shards", "1", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const json net2 = json::parse(again.out);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(net2["nodes"][i]["id"], net["nodes"][i]["id"]);
  EXPECT_TRUE(test::got(net2["nodes"][2]["api"].get<std::string>(), id, tmp / "out", content));
  // A different shape on the same dir is refused.
  EXPECT_EQ(localnet({"up", "--dir", dir, "--nodes", "4", "--shards", "1"}).exit_code, 2);
  ASSERT_EQ(localnet({"down", "--dir", dir}).exit_code, 0);
  EXPECT_EQ(running(dir), 0u);
}

TEST(LocalnetCli, AFailedUpNamesTheNodeAndLeavesNoProcessBehind) {
  test::TempDir tmp;
  const std::string dir = (tmp / "net").string();
  // An unknown setting stops every node at start (docs/config.md).
  auto up = localnet({"up", "--dir", dir, "--nodes", "2", "--shards", "1", "--set", "no.such_key=1",
                      "--timeout", "30"});
  EXPECT_NE(up.exit_code, 0);
  EXPECT_NE(up.err.find("node0"), std::string::npos) << up.err;
  EXPECT_NE(up.err.find("no.such_key"), std::string::npos) << "the log tail shows why: " << up.err;
  EXPECT_EQ(processes(dir).size(), 3u) << "the state file records what was started";
  EXPECT_EQ(running(dir), 0u);
  EXPECT_EQ(localnet({"down", "--dir", dir}).exit_code, 0);
}

TEST(LocalnetCli, DownNeverSignalsAPidTheKernelGaveToAnotherProcess) {
  test::TempDir tmp;
  const fs::path dir = tmp / "net";
  fs::create_directories(dir);
  // A live process of ours, recorded with another start time: what the
  // state file would say after a reboot or pid reuse.
  test::Process bystander({"/bin/sleep", "30"}, tmp / "sleep");
  const json state{
      {"version", 1},
      {"binary", test::cairn_binary()},
      {"shards", 1},
      {"chain", {{"port", 1}, {"process", {{"pid", bystander.pid()}, {"start_time", 1}}}}},
      {"nodes", json::array()}};
  test::write_file(localnet::state_file(dir), as_bytes(state.dump()));
  EXPECT_FALSE(localnet::alive(localnet::load(dir)->chain));
  EXPECT_EQ(localnet({"down", "--dir", dir.string()}).exit_code, 0);
  EXPECT_TRUE(bystander.running()) << "down signalled a process it did not start";
}

}  // namespace
}  // namespace cairn
