// The `cairn` binary's front door, run as a process: a flag beats the
// environment variable of the same setting in every command family, and
// argument errors read `cairn <command>: <what was wrong>` (as JSON with
// --json), and a name that does not resolve is not "connection refused".

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn {
namespace {

using namespace std::chrono_literals;

// Runs `cairn ARGS` with the environment assignments ENV ("NAME=value").
test::RunResult cairn(std::vector<std::string> args, std::vector<std::string> env = {}) {
  std::vector<std::string> argv = {"/usr/bin/env"};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back(test::cairn_binary());
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run(argv, 60s);
}

bool mentions(const test::RunResult& r, const std::string& s) {
  return r.out.find(s) != std::string::npos || r.err.find(s) != std::string::npos;
}

TEST(CliFlagsBeatEnv, LocalnetDirOnEverySubcommand) {
  test::TempDir dir;
  const std::string from_env = (dir.path() / "from-env").string();
  const std::string from_flag = (dir.path() / "from-flag").string();
  const std::vector<std::vector<std::string>> commands = {
      {"localnet", "status"},    {"localnet", "down"},         {"localnet", "url", "0"},
      {"localnet", "kill", "0"}, {"localnet", "restart", "0"}, {"localnet", "trust"},
  };
  for (auto args : commands) {
    args.push_back("--dir");
    args.push_back(from_flag);
    auto r = cairn(args, {"CAIRN_LOCALNET_DIR=" + from_env});
    EXPECT_TRUE(mentions(r, from_flag)) << args[1] << ": " << r.out << r.err;
    EXPECT_FALSE(mentions(r, from_env)) << args[1] << ": " << r.out << r.err;
  }
  // Without the flag the variable is used.
  auto r = cairn({"localnet", "status"}, {"CAIRN_LOCALNET_DIR=" + from_env});
  EXPECT_TRUE(mentions(r, from_env)) << r.out << r.err;
}

TEST(CliFlagsBeatEnv, NodeOfTheClientCommands) {
  // Two closed ports: the error names the one that was tried.
  const std::string from_env = "http://127.0.0.1:" + std::to_string(test::free_port());
  const std::string from_flag = "http://127.0.0.1:" + std::to_string(test::free_port());
  const std::string id(64, 'a');
  const std::vector<std::vector<std::string>> commands = {
      {"status"}, {"stat", id}, {"get", id}, {"proof", id}, {"put", "/etc/hostname"}};
  for (auto args : commands) {
    args.push_back("--node");
    args.push_back(from_flag);
    auto r = cairn(args, {"CAIRN_NODE=" + from_env});
    EXPECT_EQ(r.exit_code, 5) << args[0] << ": " << r.err;
    EXPECT_TRUE(mentions(r, from_flag)) << args[0] << ": " << r.err;
    EXPECT_FALSE(mentions(r, from_env)) << args[0] << ": " << r.err;
  }
}

TEST(CliFlagsBeatEnv, NodeSettings) {
  test::TempDir dir;
  const std::string from_env = (dir.path() / "from-env").string();
  const std::string from_flag = (dir.path() / "from-flag").string();
  auto r = cairn(
      {"node", "--print-config", "--data-dir", from_flag, "--listen", "127.0.0.1:7001", "--set",
       "upload.min_replicas=2"},
      {"CAIRN_DATA_DIR=" + from_env, "CAIRN_LISTEN=127.0.0.1:7002", "CAIRN_UPLOAD_MIN_REPLICAS=3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(from_flag), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(from_env), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("127.0.0.1:7001"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("127.0.0.1:7002"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("min_replicas = 2"), std::string::npos) << r.out;
}

TEST(CliFlagsBeatEnv, DevchainDataDir) {
  // Both directories hold a sequencer key that is refused (mode 0644): the
  // error names the directory that was used.
  test::TempDir dir;
  const auto from_env = dir.path() / "from-env";
  const auto from_flag = dir.path() / "from-flag";
  for (const auto& d : {from_env, from_flag}) {
    std::filesystem::create_directories(d);
    ASSERT_EQ(cairn({"keygen", (d / "sequencer.key").string()}).exit_code, 0);
    ::chmod((d / "sequencer.key").c_str(), 0644);
  }
  auto r = cairn({"devchain", "--data-dir", from_flag.string(), "--listen", "127.0.0.1:0"},
                 {"CAIRN_DEVCHAIN_DIR=" + from_env.string()});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(mentions(r, from_flag.string())) << r.err;
  EXPECT_FALSE(mentions(r, from_env.string())) << r.err;
}

TEST(CliErrors, UnknownCommandSuggestsTheNearest) {
  auto r = cairn({"sttaus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cairn: unknown command 'sttaus'; did you mean 'status'?"),
            std::string::npos)
      << r.err;
  r = cairn({"localnet", "dwon", "--dir", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cairn localnet: unknown command 'dwon'; did you mean 'down'?"),
            std::string::npos)
      << r.err;
  r = cairn({"zzzzzzzz"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cairn: unknown command 'zzzzzzzz' (see cairn --help)"), std::string::npos)
      << r.err;
}

TEST(CliErrors, ArgumentErrorsNameTheCommand) {
  auto r = cairn({"get"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("cairn get: ", 0), 0u) << r.err;
  r = cairn({"localnet", "kill", "--dir", "x", "0", "--signal", "HUP"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("cairn localnet kill: ", 0), 0u) << r.err;
  r = cairn({"status", "--no-such-flag"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("cairn status: ", 0), 0u) << r.err;
  r = cairn({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("cairn: ", 0), 0u) << r.err;
}

TEST(CliErrors, WithJsonErrorsAreJsonOnStdout) {
  const std::string url = "http://127.0.0.1:" + std::to_string(test::free_port());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"status", "--json", "--node", url},
        std::vector<std::string>{"status", "--json", "--bogus"}}) {
    auto r = cairn(args);
    EXPECT_NE(r.exit_code, 0);
    const auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.out << r.err;
    EXPECT_EQ(j["error"]["exit_code"], r.exit_code) << r.out;
    EXPECT_EQ(j["error"]["message"].get<std::string>().rfind("cairn status: ", 0), 0u) << r.out;
    EXPECT_FALSE(j["error"]["code"].get<std::string>().empty()) << r.out;
  }
}

TEST(CliErrors, UnresolvableHostIsNotConnectionRefused) {
  auto r = cairn({"status", "--node", "http://no-such-host.invalid:8641"});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_NE(r.err.find("cannot resolve host 'no-such-host.invalid'"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("connection refused"), std::string::npos) << r.err;
}

// A secret key file readable by group or others is a local environment
// problem: exit 3 with the chmod that fixes it, for every command that reads
// one (docs/cli.md).
TEST(CliErrors, KeyFilesReadableByOthersExit3) {
  test::TempDir dir;
  const auto data = dir.path() / "node";
  std::filesystem::create_directories(data);
  ASSERT_EQ(cairn({"keygen", (data / "identity.key").string()}).exit_code, 0);
  for (const mode_t mode : {mode_t{0644}, mode_t{0640}}) {
    ::chmod((data / "identity.key").c_str(), mode);
    auto r = cairn({"node", "--data-dir", data.string(), "--listen", "127.0.0.1:0", "--api", ""});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("cairn node: identity file"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
  }

  const auto chain = dir.path() / "chain";
  std::filesystem::create_directories(chain);
  ASSERT_EQ(cairn({"keygen", (chain / "sequencer.key").string()}).exit_code, 0);
  ::chmod((chain / "sequencer.key").c_str(), 0644);
  auto r = cairn({"devchain", "--data-dir", chain.string(), "--listen", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;

  // The API token file of a node.
  const auto token = dir.path() / "api.token";
  test::write_file(token, as_bytes("secret\n"));
  ::chmod(token.c_str(), 0644);
  ::chmod((data / "identity.key").c_str(), 0600);
  r = cairn({"node", "--data-dir", data.string(), "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0",
             "--set", "api.token_file=" + token.string()});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("api.token_file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cairn
