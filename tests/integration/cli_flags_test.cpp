// The `cairn` binary's front door, run as a process: a flag beats the
// environment variable of the same setting in every command family, and
// argument errors read `cairn <command>: <what was wrong>`.

#include <gtest/gtest.h>

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
      {"localnet", "status"},         {"localnet", "down"},       {"localnet", "url", "0"},
      {"localnet", "kill", "0"},      {"localnet", "restart", "0"}, {"localnet", "trust"},
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
  auto r = cairn({"node", "--print-config", "--data-dir", from_flag, "--listen", "127.0.0.1:7001", "--set",
                  "upload.min_replicas=2"},
                 {"CAIRN_DATA_DIR=" + from_env, "CAIRN_LISTEN=127.0.0.1:7002", "CAIRN_UPLOAD_MIN_REPLICAS=3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(from_flag), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(from_env), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("127.0.0.1:7001"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("127.0.0.1:7002"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("min_replicas = 2"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace cairn
