// The client commands (`cairn put`, `get`, `stat`, `status`) against the
// node's HTTP API served in this process over an in-memory NodeService, to
// reach what a healthy node never does: wrong bytes, a stream cut short, a
// busy node, a token.

#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>
#include <string>

#include "node/api_server.hpp"
#include "node/memory_node.hpp"
#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

class CliClient : public ::testing::Test {
 protected:
  // An API on a free port (or on s.listen when the test sets one).
  static node::ApiSettings settings(std::string listen = "127.0.0.1:0") {
    node::ApiSettings s;
    s.listen = std::move(listen);
    return s;
  }
  void start(const node::ApiSettings& s) {
    auto server = node::start_api_server(node_, s, registry_, dir_ / "spool");
    ASSERT_TRUE(server) << server.error().to_string();
    server_ = std::move(*server);
    const std::string address = server_->address();
    url_ = "http://127.0.0.1:" + address.substr(address.rfind(':') + 1);
  }
  void SetUp() override { start(settings()); }
  void TearDown() override { server_->stop(); }

  test::RunResult cli(std::vector<std::string> args, std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {"/usr/bin/env"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back(test::cairn_binary());
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--node");
    argv.push_back(url_);
    return test::run(argv, 60s);
  }
  std::string put_file(const std::string& name, ByteSpan content) {
    test::write_file(dir_ / name, content);
    auto r = cli({"put", "--json", (dir_ / name).string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false).value("id", "");
  }

  node::metrics::Registry registry_;
  node::test::MemoryNode node_{registry_};
  test::TempDir dir_;
  std::unique_ptr<node::ApiServer> server_;
  std::string url_;
};

// `cairn ARGS --node URL` with stdout on a terminal (a pty from script(1),
// util-linux, in every Debian install); what it printed comes back in out.
test::RunResult on_terminal(const std::vector<std::string>& args, const std::string& url) {
  std::string command = test::cairn_binary();
  for (const auto& a : args) command += " '" + a + "'";
  command += " --node " + url;
  return test::run({"/usr/bin/script", "-qec", command, "/dev/null"}, 60s);
}

TEST_F(CliClient, BinaryIsNotWrittenToATerminalUnlessAskedFor) {
  auto rng = test::seeded_rng(23);
  const std::string id = put_file("t.bin", test::random_bytes(rng, 5000));
  for (const std::string cmd : {"get", "proof"}) {
    auto r = on_terminal({cmd, id}, url_);
    EXPECT_EQ(r.exit_code, 2) << cmd << ": " << r.out;
    EXPECT_NE(r.out.find("cairn " + cmd + ": the "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("is binary and stdout is a terminal"), std::string::npos) << r.out;
  }
  // -o - asks for it: the bytes are printed.
  const auto text = as_bytes("plain text for the terminal\n");
  test::write_file(dir_ / "t.txt", text);
  auto put = cli({"put", "--json", (dir_ / "t.txt").string()});
  const std::string text_id = json::parse(put.out, nullptr, false).value("id", "");
  auto r = on_terminal({"get", text_id, "-o", "-", "-q"}, url_);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("plain text for the terminal"), std::string::npos) << r.out;
  // A pipe is not a terminal.
  r = cli({"get", text_id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "plain text for the terminal\n");
}

// Every stretch of `out` between carriage returns and newlines, with the
// erase-line sequence the progress bar sends removed: what a terminal shows
// on one row when each is drawn.
std::vector<std::string> terminal_rows(const std::string& out) {
  std::vector<std::string> rows;
  std::string row;
  for (size_t i = 0; i <= out.size(); ++i) {
    if (i == out.size() || out[i] == '\r' || out[i] == '\n') {
      if (!row.empty()) rows.push_back(row);
      row.clear();
    } else if (out.compare(i, 3, "\033[K") == 0) {
      i += 2;
    } else {
      row += out[i];
    }
  }
  return rows;
}

TEST_F(CliClient, PutProgressFitsA60ColumnTerminalAndShowsTheNodesPhases) {
  auto rng = test::seeded_rng(25);
  const auto file = dir_ / "a-file-name-long-enough-to-need-shortening-on-a-narrow-terminal.bin";
  test::write_file(file, test::random_bytes(rng, 3 << 20));
  // stderr (the progress) on a 60-column pty; stdout, the id line, elsewhere.
  const std::string command = "stty cols 60 && " + test::cairn_binary() + " put '" + file.string() +
                              "' --node " + url_ + " > /dev/null";
  auto r = test::run({"/usr/bin/script", "-qec", command, "/dev/null"}, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto rows = terminal_rows(r.out);
  ASSERT_FALSE(rows.empty()) << "no progress drawn on a terminal";
  for (const auto& row : rows) EXPECT_LE(row.size(), 59u) << "'" << row << "'";
  const auto shown = [&](const std::string& part) {
    return std::any_of(rows.begin(), rows.end(),
                       [&](const std::string& row) { return row.find(part) != std::string::npos; });
  };
  EXPECT_TRUE(shown("...")) << "the long file name is shortened: " << r.out;
  EXPECT_TRUE(shown("narrow-terminal.bin")) << "to its end: " << r.out;
  EXPECT_TRUE(shown("100%")) << r.out;
  // The in-memory node reports its phases (registered, then acknowledged).
  EXPECT_TRUE(shown("replicas 0/1, blobs 0/25 done")) << r.out;
  EXPECT_TRUE(shown("acknowledged, replicas 1/1")) << r.out;

  // Not a terminal: nothing but the answer.
  auto piped = cli({"put", file.string()});
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.err, "");
  EXPECT_EQ(piped.out.find('\r'), std::string::npos);
}

TEST_F(CliClient, GetIntoADirectoryWritesDirSlashIdAndKeepsAnExistingOne) {
  auto rng = test::seeded_rng(24);
  const Bytes content = test::random_bytes(rng, 70000);
  const std::string id = put_file("d.bin", content);
  const auto out_dir = dir_ / "downloads";
  std::filesystem::create_directories(out_dir);
  auto r = cli({"get", id, "-o", out_dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_file(out_dir / id), content);

  // Already there: refused before downloading, the file is left as it was.
  test::write_file(out_dir / id, as_bytes("previous"));
  r = cli({"get", id, "-o", out_dir.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cairn get: " + (out_dir / id).string() + " exists; give --force"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(test::read_file(out_dir / id),
            Bytes(as_bytes("previous").begin(), as_bytes("previous").end()));
  r = cli({"get", id, "-o", out_dir.string(), "--force"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_file(out_dir / id), content);
}

TEST_F(CliClient, GetRefusesBytesThatDoNotMatchTheFileAndLeavesNoFile) {
  auto rng = test::seeded_rng(21);
  const std::string id = put_file("a.bin", test::random_bytes(rng, 200000));
  node_.corrupt_reads(true);
  const auto out = dir_ / "a.out";
  auto r = cli({"get", id, "-o", out.string()});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("SHA-256"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing was written to " + out.string()), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));

  // A file already there is left as it was.
  test::write_file(out, as_bytes("previous"));
  r = cli({"get", id, "-o", out.string()});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(test::read_file(out), Bytes(as_bytes("previous").begin(), as_bytes("previous").end()));

  // To stdout the user is told to discard what was printed.
  r = cli({"get", id});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("discard"), std::string::npos) << r.err;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string().find(".cairn-"), std::string::npos) << e.path();
  }
}

TEST_F(CliClient, GetChecksABlobAgainstItsCommitment) {
  auto rng = test::seeded_rng(22);
  const Bytes payload = test::random_bytes(rng, 1000);
  auto put = node_.put_blob(payload, {});
  ASSERT_TRUE(put);
  const std::string id = put->id.hex();
  auto ok = cli({"get", id});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(ok.out == std::string(payload.begin(), payload.end()));
  node_.corrupt_reads(true);
  auto bad = cli({"get", id, "-o", (dir_ / "blob.out").string()});
  EXPECT_EQ(bad.exit_code, 4) << bad.err;
  EXPECT_NE(bad.err.find("commitment"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "blob.out"));
}

TEST_F(CliClient, AStreamCutShortIsAFailureNotAShortFile) {
  auto rng = test::seeded_rng(23);
  const std::string id = put_file("b.bin", test::random_bytes(rng, 1 << 20));
  node_.fail_reads_after(300000);
  const auto out = dir_ / "b.out";
  auto r = cli({"get", id, "-o", out.string()});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("stopped after"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(CliClient, NodeErrorsBecomeExitCodes) {
  const std::string id = put_file("c.txt", as_bytes("c"));
  node_.fail_with(Error{Errc::busy, "upload window full"});
  auto busy = cli({"stat", id});
  EXPECT_EQ(busy.exit_code, 5);
  EXPECT_NE(busy.err.find("upload window full (HTTP 503"), std::string::npos) << busy.err;
  node_.fail_with(Error{Errc::timeout, "replicas did not confirm"});
  test::write_file(dir_ / "d.txt", as_bytes("d"));
  auto slow = cli({"put", (dir_ / "d.txt").string()});
  EXPECT_EQ(slow.exit_code, 5);
  EXPECT_NE(slow.err.find("cairn put: " + (dir_ / "d.txt").string() + ": replicas did not confirm"),
            std::string::npos)
      << slow.err;
  node_.fail_with(Error{Errc::corruption, "stored fragment failed its checksum"});
  EXPECT_EQ(cli({"status"}).exit_code, 4);
  node_.fail_with(std::nullopt);
}

TEST_F(CliClient, PutSendsItsOptionsAndTheToken) {
  server_->stop();
  node::ApiSettings s = settings("127.0.0.1:0");  // a token set on loopback is enforced too
  s.token = "letmein";
  start(s);
  test::write_file(dir_ / "e.txt", as_bytes(std::string(5000, 'e')));
  const std::string file = (dir_ / "e.txt").string();

  auto denied = cli({"put", file});
  EXPECT_EQ(denied.exit_code, 2);
  EXPECT_NE(denied.err.find("--token"), std::string::npos) << denied.err;
  auto wrong = cli({"put", "--token", "nope", file});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("wrong API token"), std::string::npos) << wrong.err;

  auto ok = cli({"put", "--json", "--compress", "never", "--min-replicas", "2", file},
                {"CAIRN_API_TOKEN=letmein"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  const json j = json::parse(ok.out, nullptr, false);
  EXPECT_EQ(j.value("compression", ""), "none");
  EXPECT_EQ(j.value("file", ""), file);
  EXPECT_EQ(node_.last_options().compress, erasure::FileOptions::Compress::never);
  EXPECT_EQ(node_.last_options().min_replicas, std::optional<uint32_t>(2));

  auto zstd = cli({"put", "--json", "--token", "letmein", file});
  ASSERT_EQ(zstd.exit_code, 0) << zstd.err;
  EXPECT_EQ(json::parse(zstd.out, nullptr, false).value("compression", ""), "zstd");
  EXPECT_EQ(node_.last_options().compress, erasure::FileOptions::Compress::automatic);
  EXPECT_FALSE(node_.last_options().min_replicas.has_value());

  auto bad = cli({"put", "--compress", "sometimes", "--token", "letmein", file});
  EXPECT_EQ(bad.exit_code, 2);
}

TEST_F(CliClient, UploadsAboveTheNodesLimitAreUsageErrors) {
  server_->stop();
  node::ApiSettings s = settings();
  s.max_upload_bytes = 100000;
  start(s);
  auto rng = test::seeded_rng(24);
  test::write_file(dir_ / "big.bin", test::random_bytes(rng, 100001));
  auto r = cli({"put", (dir_ / "big.bin").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("api.max_upload_bytes"), std::string::npos) << r.err;
}

TEST_F(CliClient, ANodeUrlWithAPathPrefixIsUsedAsTheApiRoot) {
  const std::string id = put_file("f.txt", as_bytes("f"));
  // The in-process server has no prefix: a prefixed URL reaches other paths.
  auto r = test::run({test::cairn_binary(), "stat", id, "--node", url_ + "/behind/proxy/"}, 60s);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("no endpoint /behind/proxy/v1/stat/" + id), std::string::npos) << r.err;
  auto bad = test::run({test::cairn_binary(), "status", "--node", "127.0.0.1:1"}, 60s);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("needs a scheme"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace cairn
