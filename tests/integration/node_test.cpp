// `cairn node` and `cairn keygen` as an operator runs them: real processes,
// real data directories, real signals.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <csignal>
#include <regex>
#include <string>

#include "cairn/erasure/params.hpp"
#include "cairn/shards/store.hpp"
#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn {
namespace {

using namespace std::chrono_literals;

constexpr auto kStartTimeout = 20s;
constexpr auto kStopTimeout = 5s;

// The node id printed by `cairn node` ("node id   <64 hex>"), empty if none.
std::string printed_node_id(const std::string& out) {
  std::smatch m;
  static const std::regex re("node id +([0-9a-f]{64})");
  return std::regex_search(out, m, re) ? m[1].str() : std::string();
}

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777;
}

struct RunningNode {
  std::unique_ptr<test::Process> process;
  std::string id;
};

RunningNode start_node(const std::filesystem::path& data_dir, const std::filesystem::path& logs) {
  RunningNode node;
  node.process = std::make_unique<test::Process>(
      std::vector<std::string>{test::cairn_binary(), "node", "--data-dir", data_dir.string(),
                               "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"},
      logs);
  EXPECT_TRUE(node.process->wait_for_output("running", kStartTimeout))
      << "stdout:\n"
      << node.process->stdout_text() << "\nstderr:\n"
      << node.process->stderr_text();
  node.id = printed_node_id(node.process->stdout_text());
  return node;
}

TEST(NodeProcess, PrintsItsIdKeepsItAcrossRestartsAndStopsOnSignals) {
  test::TempDir tmp;
  const auto data = tmp / "data";

  auto first = start_node(data, tmp / "run1");
  ASSERT_EQ(first.id.size(), 64u) << first.process->stdout_text();
  EXPECT_NE(first.process->stdout_text().find("(new identity)"), std::string::npos);
  EXPECT_NE(first.process->stdout_text().find("(0 blobs)"), std::string::npos)
      << first.process->stdout_text();
  EXPECT_EQ(mode_of(data / "identity.key"), 0600u);
  EXPECT_TRUE(std::filesystem::exists(data / "store" / "CURRENT"));
  auto code = first.process->stop(SIGINT, kStopTimeout);
  ASSERT_TRUE(code) << "node did not stop within 5 s of SIGINT";
  EXPECT_EQ(*code, 0) << first.process->stderr_text();
  EXPECT_NE(first.process->stdout_text().find("stopped"), std::string::npos);

  auto second = start_node(data, tmp / "run2");
  EXPECT_EQ(second.id, first.id);
  EXPECT_EQ(second.process->stdout_text().find("(new identity)"), std::string::npos);
  code = second.process->stop(SIGTERM, kStopTimeout);
  ASSERT_TRUE(code) << "node did not stop within 5 s of SIGTERM";
  EXPECT_EQ(*code, 0) << second.process->stderr_text();
  EXPECT_EQ(mode_of(data / "identity.key"), 0600u);
}

TEST(NodeProcess, ReportsTheBlobsItsStoreHolds) {
  test::TempDir tmp;
  const auto data = tmp / "data";
  {
    // Three blobs written into the store the node will open (the network's
    // default geometry; fragment bytes and roots are arbitrary here).
    const auto params = erasure::NetworkParams::defaults();
    auto store = shards::Store::open(data / "store", params);
    ASSERT_TRUE(store) << store.error().to_string();
    auto rng = test::seeded_rng(1);
    for (uint64_t i : {0u, 1u, 5000u}) {
      shards::BlobRecord record;
      record.index = BlobIndex{i};
      record.id.bytes[0] = static_cast<uint8_t>(i + 1);
      record.fragment_size = params.fragment_size();
      record.data_fragments = static_cast<uint8_t>(params.data_fragments);
      record.fragment_roots.resize(params.total_fragments());
      std::vector<Bytes> fragments;
      std::vector<ByteSpan> spans;
      for (uint32_t f = 0; f < params.total_fragments(); ++f) {
        fragments.push_back(test::random_bytes(rng, params.fragment_size()));
      }
      for (const auto& f : fragments) spans.emplace_back(f);
      auto put = (*store)->put_blob(record, spans);
      ASSERT_TRUE(put) << put.error().to_string();
    }
  }
  auto node = start_node(data, tmp / "run");
  EXPECT_NE(node.process->stdout_text().find("(3 blobs)"), std::string::npos)
      << node.process->stdout_text();
  EXPECT_EQ(node.process->stop(SIGTERM, kStopTimeout), std::optional<int>(0));
  // Stopped cleanly: the store opens again at once (no stale lock) with the same blobs.
  auto store = shards::Store::open(data / "store", erasure::NetworkParams::defaults());
  ASSERT_TRUE(store) << store.error().to_string();
  EXPECT_EQ((*store)->blob_count(), 3u);
}

TEST(NodeProcess, SecondNodeOnTheSameDataDirIsRefused) {
  test::TempDir tmp;
  const auto data = tmp / "data";
  auto first = start_node(data, tmp / "run1");
  ASSERT_FALSE(first.id.empty());

  auto second = test::run({test::cairn_binary(), "node", "--data-dir", data.string(), "--listen",
                           "127.0.0.1:0", "--api", "127.0.0.1:0"},
                          20s);
  EXPECT_EQ(second.exit_code, 3) << second.out << second.err;  // local environment problem
  EXPECT_NE(second.err.find("in use"), std::string::npos) << second.err;
  EXPECT_EQ(second.out.find("running"), std::string::npos);

  // The first node is unaffected.
  EXPECT_TRUE(first.process->running());
  EXPECT_EQ(first.process->stop(SIGINT, kStopTimeout), std::optional<int>(0));
}

TEST(Keygen, WritesAPrivateKeyAndRefusesToOverwriteWithoutForce) {
  test::TempDir tmp;
  const auto key = tmp / "keys" / "node.key";

  auto made = test::run({test::cairn_binary(), "keygen", key.string()}, 20s);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  ASSERT_TRUE(std::regex_match(made.out, std::regex("[0-9a-f]{64}\n"))) << made.out;
  EXPECT_EQ(mode_of(key), 0600u);
  const Bytes original = test::read_file(key);

  auto again = test::run({test::cairn_binary(), "keygen", key.string()}, 20s);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
  EXPECT_EQ(test::read_file(key), original) << "an existing key was overwritten without --force";

  auto forced = test::run({test::cairn_binary(), "keygen", key.string(), "--force"}, 20s);
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  ASSERT_TRUE(std::regex_match(forced.out, std::regex("[0-9a-f]{64}\n"))) << forced.out;
  EXPECT_NE(forced.out, made.out);
  EXPECT_NE(test::read_file(key), original);
  EXPECT_EQ(mode_of(key), 0600u);

  // A node started on that key uses it: the id it prints is the keygen's.
  const auto data = tmp / "data";
  std::filesystem::create_directories(data);
  std::filesystem::copy_file(key, data / "identity.key");
  std::filesystem::permissions(data / "identity.key", std::filesystem::perms::owner_read |
                                                          std::filesystem::perms::owner_write);
  auto node = start_node(data, tmp / "run");
  EXPECT_EQ(node.id + "\n", forced.out);
  EXPECT_EQ(node.process->stop(SIGINT, kStopTimeout), std::optional<int>(0));
}

}  // namespace
}  // namespace cairn
