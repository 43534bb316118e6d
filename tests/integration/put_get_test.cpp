// `cairn put`, `get`, `stat` and `status` against a lone `cairn node` with
// default settings (only its ports are free ones), as a user runs them.

#include <gtest/gtest.h>

#include <csignal>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kStartTimeout = 30s;
constexpr auto kCommandTimeout = 120s;

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(json::parse(line, nullptr, /*allow_exceptions=*/false));
  }
  return lines;
}

class LoneNode : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const uint16_t p2p = test::free_port();
    uint16_t api = test::free_port();
    while (api == p2p) api = test::free_port();
    url_ = "http://127.0.0.1:" + std::to_string(api);
    node_ = new test::Process(
        {test::cairn_binary(), "node", "--data-dir", (dir_->path() / "data").string(), "--listen",
         "127.0.0.1:" + std::to_string(p2p), "--api", "127.0.0.1:" + std::to_string(api)},
        dir_->path() / "logs");
  }
  static void TearDownTestSuite() {
    if (node_ != nullptr) {
      const auto code = node_->stop(SIGTERM, 20s);
      EXPECT_EQ(code, std::optional<int>(0)) << node_->stderr_text();
    }
    delete node_;
    delete dir_;
    node_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(node_->wait_for_output("running", kStartTimeout))
        << "stdout:\n"
        << node_->stdout_text() << "\nstderr:\n"
        << node_->stderr_text();
  }

  // `cairn <args...> --node <url>`.
  test::RunResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), test::cairn_binary());
    args.push_back("--node");
    args.push_back(url_);
    return test::run(args, kCommandTimeout);
  }
  std::filesystem::path path(const std::string& name) const { return dir_->path() / name; }

  static test::TempDir* dir_;
  static test::Process* node_;
  static std::string url_;
};

test::TempDir* LoneNode::dir_ = nullptr;
test::Process* LoneNode::node_ = nullptr;
std::string LoneNode::url_;

TEST_F(LoneNode, PutThenGetReturnsTheSameBytesUnderTheOfflineId) {
  auto rng = test::seeded_rng(11);
  constexpr size_t kBlob = 128 * 1024;
  const std::vector<size_t> sizes = {0, 1, kBlob - 1, kBlob, kBlob + 1, 30u << 20};
  std::vector<std::string> files;
  for (size_t size : sizes) {
    const std::string name = "file-" + std::to_string(size);
    test::write_file(path(name), test::random_bytes(rng, size));
    files.push_back(path(name).string());
  }

  std::vector<std::string> put_args = {"put", "--json"};
  put_args.insert(put_args.end(), files.begin(), files.end());
  const auto put = cli(put_args);
  ASSERT_EQ(put.exit_code, 0) << put.err;
  EXPECT_TRUE(put.err.empty()) << "no progress bar without a terminal: " << put.err;
  const auto answers = json_lines(put.out);
  ASSERT_EQ(answers.size(), files.size()) << put.out;

  std::vector<std::string> id_args = {test::cairn_binary(), "id"};
  id_args.insert(id_args.end(), files.begin(), files.end());
  const auto offline = test::run(id_args, kCommandTimeout);
  ASSERT_EQ(offline.exit_code, 0) << offline.err;
  std::istringstream offline_lines(offline.out);

  for (size_t i = 0; i < files.size(); ++i) {
    SCOPED_TRACE("size " + std::to_string(sizes[i]));
    const json& a = answers[i];
    ASSERT_TRUE(a.is_object()) << put.out;
    const std::string id = a.value("id", "");
    std::string line;
    std::getline(offline_lines, line);
    EXPECT_EQ(line, id + "  " + files[i]) << "the id differs from `cairn id`";
    EXPECT_EQ(a.value("uri", ""), "cairn://" + id);
    EXPECT_EQ(a.value("file", ""), files[i]);
    EXPECT_EQ(a.value("size", uint64_t{0}), sizes[i]);
    EXPECT_GE(a.value("replicas", 0), 1);

    const auto out = path("got-" + std::to_string(sizes[i]));
    const auto got = cli({"get", id, "-o", out.string()});
    ASSERT_EQ(got.exit_code, 0) << got.err;
    EXPECT_TRUE(got.out.empty());
    EXPECT_TRUE(test::read_file(out) == test::read_file(files[i])) << "downloaded bytes differ";
  }

  // To stdout, and by URI.
  const auto small = cli({"get", "cairn://" + answers[2].value("id", "")});
  ASSERT_EQ(small.exit_code, 0) << small.err;
  const Bytes expected = test::read_file(files[2]);
  EXPECT_TRUE(small.out == std::string(expected.begin(), expected.end()));
}

TEST_F(LoneNode, PlainPutPrintsIdUriAndFile) {
  test::write_file(path("hello.txt"), as_bytes("hello, cairn\n"));
  const auto put = cli({"put", path("hello.txt").string()});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  // docs/blob-format.md test vector.
  const std::string id = "8dc45f4fa0c6ce51644d1c504ba062bd70a3cf838086c93fb642b9ed406423ba";
  EXPECT_EQ(put.out, id + "  cairn://" + id + "  " + path("hello.txt").string() + "\n");
  const auto got = cli({"get", id});
  EXPECT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(got.out, "hello, cairn\n");
}

TEST_F(LoneNode, StatAndStatusDescribeTheNodeAndTheFile) {
  auto rng = test::seeded_rng(12);
  test::write_file(path("stat.bin"), test::random_bytes(rng, 300000));
  const auto put = cli({"put", "--json", path("stat.bin").string()});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  const json answer = json::parse(put.out);
  const std::string id = answer.value("id", "");

  const auto stat = cli({"stat", "--json", id});
  ASSERT_EQ(stat.exit_code, 0) << stat.err;
  const json s = json::parse(stat.out, nullptr, false);
  ASSERT_TRUE(s.is_object()) << stat.out;
  EXPECT_EQ(s.value("kind", ""), "file");
  EXPECT_EQ(s.value("size", 0), 300000);
  EXPECT_EQ(s.value("data_blobs", 0), 3);
  EXPECT_EQ(s.value("sha256", ""), answer.value("sha256", "x"));
  ASSERT_TRUE(s.contains("status"));
  EXPECT_GE(s["status"].value("replicas", 0), 1);
  EXPECT_TRUE(s["status"].value("stored_locally", false));

  const auto human = cli({"stat", "cairn://" + id});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("kind      file\n"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("size      293.0 KiB (300000 bytes)\n"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("(this node)"), std::string::npos) << human.out;

  const auto status = cli({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const json n = json::parse(status.out, nullptr, false);
  ASSERT_TRUE(n.is_object()) << status.out;
  const std::string node_id = n.value("id", "");
  EXPECT_NE(node_->stdout_text().find("node id   " + node_id), std::string::npos);
  EXPECT_GE(n.value("blobs_stored", 0), 4);
  EXPECT_EQ(n["chain"].value("backend", ""), "embedded");
  EXPECT_GE(n["chain"].value("blob_count", 0), 4);
  EXPECT_EQ(n["chain"]["params"].value("blob_size", 0), 131072);
  EXPECT_EQ(n.value("api_address", ""), url_.substr(7));

  const auto text = cli({"status"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out.rfind("node      " + node_id + "\n", 0), 0u) << text.out;
  EXPECT_NE(text.out.find("shards    0\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("chain     embedded, head "), std::string::npos) << text.out;
}

TEST_F(LoneNode, FailuresExitWithTheDocumentedCodes) {
  const std::string unknown(64, 'a');
  const auto missing = cli({"get", unknown, "-o", path("never").string()});
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_NE(missing.err.find("cairn get: "), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find(unknown), std::string::npos) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(path("never")));
  for (const auto& entry : std::filesystem::directory_iterator(dir_->path())) {
    EXPECT_EQ(entry.path().filename().string().find(".never.cairn-"), std::string::npos)
        << "a temporary download file was left behind";
  }

  const auto malformed = cli({"stat", "not-an-id"});
  EXPECT_EQ(malformed.exit_code, 2);
  EXPECT_NE(malformed.err.find("64 hex digits"), std::string::npos) << malformed.err;

  const auto no_file = cli({"put", path("does-not-exist").string()});
  EXPECT_EQ(no_file.exit_code, 2);

  const uint16_t closed = test::free_port();
  const auto unreachable = test::run(
      {test::cairn_binary(), "status", "--node", "http://127.0.0.1:" + std::to_string(closed)},
      kCommandTimeout);
  EXPECT_EQ(unreachable.exit_code, 5);
  EXPECT_NE(
      unreachable.err.find("is `cairn node` running at http://127.0.0.1:" + std::to_string(closed)),
      std::string::npos)
      << unreachable.err;
  // CAIRN_NODE is honoured (and --node is not needed).
  const auto env =
      test::run({"/usr/bin/env", "CAIRN_NODE=http://127.0.0.1:" + std::to_string(closed),
                 test::cairn_binary(), "status"},
                kCommandTimeout);
  EXPECT_EQ(env.exit_code, 5);
  EXPECT_NE(env.err.find(std::to_string(closed)), std::string::npos) << env.err;
}

}  // namespace
}  // namespace cairn
