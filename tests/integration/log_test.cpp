// The node's log as an operator meets it: a real `cairn node` writing JSON
// lines to log.file, logrotate's rename + SIGHUP, a level change applied by
// SIGHUP without a restart, a bad level refused at start (exit 2) and kept
// out at reload, and --print-config not showing the API token.

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr auto kStartTimeout = 30s;

// Runs `cairn ARGS` with the logger's variables cleared and ENV added.
std::vector<std::string> cairn_argv(const std::vector<std::string>& args,
                                    const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = {"/usr/bin/env",     "-u", "CAIRN_LOG",     "-u",
                                   "CAIRN_LOG_FORMAT", "-u", "CAIRN_LOG_FILE"};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back(test::cairn_binary());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The records of a JSON log file; a line that is not a record with string
// ts (RFC 3339 UTC, milliseconds), level, module and msg fails the test.
std::vector<json> records_of(const std::filesystem::path& p) {
  static const std::regex ts(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$)");
  static const std::set<std::string> levels = {"debug", "info", "warn", "error"};
  std::vector<json> out;
  for (const std::string& line : lines_of(p)) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << p.filename() << ": not a JSON object: " << line;
    if (!j.is_object()) continue;
    EXPECT_EQ(j.size(), 4u) << line;
    for (const char* field : {"ts", "level", "module", "msg"}) {
      EXPECT_TRUE(j.contains(field) && j[field].is_string()) << field << " in " << line;
    }
    if (!j.contains("ts") || !j["ts"].is_string() || !j.contains("level") ||
        !j["level"].is_string())
      continue;
    EXPECT_TRUE(std::regex_match(j["ts"].get<std::string>(), ts)) << line;
    EXPECT_TRUE(levels.count(j["level"].get<std::string>())) << line;
    out.push_back(std::move(j));
  }
  return out;
}

bool has_record(const std::vector<json>& records, const std::string& level,
                const std::string& module, const std::string& msg_part = "") {
  for (const auto& r : records) {
    if (r.value("level", "") == level && r.value("module", "") == module &&
        r.value("msg", "").find(msg_part) != std::string::npos) {
      return true;
    }
  }
  return false;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return done();
}

void write_config(const std::filesystem::path& path, const std::filesystem::path& log_file,
                  const std::string& level) {
  std::ofstream out(path, std::ios::trunc);
  out << "[log]\nlevel = \"" << level << "\"\nfile = \"" << log_file.string() << "\"\n";
}

TEST(NodeLog, JsonLinesToAFileReopenedAndReloadedOnSighup) {
  test::TempDir tmp;
  const auto config = tmp / "node.toml";
  const auto log_file = tmp / "node.log";
  const auto rotated = tmp / "node.log.1";
  write_config(config, log_file, "info");
  const uint16_t p2p = test::free_port();
  uint16_t api = test::free_port();
  while (api == p2p) api = test::free_port();
  const std::string url = "http://127.0.0.1:" + std::to_string(api);
  // Short blocks: a challenge epoch (8 blocks) every 0.8 s.
  test::Process node(
      cairn_argv({"node", "--config", config.string(), "--log-format", "json", "--data-dir",
                  (tmp / "data").string(), "--network", "localnet", "--block-time-ms", "100",
                  "--listen", "127.0.0.1:" + std::to_string(p2p), "--api",
                  "127.0.0.1:" + std::to_string(api)}),
      tmp / "proc");
  ASSERT_TRUE(node.wait_for_output("running", kStartTimeout))
      << node.stdout_text() << node.stderr_text();
  // A stored blob gives the challenger something to walk every epoch.
  {
    std::ofstream(tmp / "payload.bin") << std::string(4000, 'x');
    auto put = test::run(cairn_argv({"put", (tmp / "payload.bin").string(), "--node", url}), 60s);
    ASSERT_EQ(put.exit_code, 0) << put.out << put.err;
  }
  ASSERT_TRUE(eventually([&] {
    return has_record(records_of(log_file), "info", "challenge", "responses counted");
  })) << "no challenge summary in the log file";
  EXPECT_EQ(node.stderr_text().find("challenge"), std::string::npos)
      << "log lines went to stderr too";

  // logrotate: rename, then SIGHUP. The node writes a new file, and lines
  // keep coming (not only the reload's own line).
  std::filesystem::rename(log_file, rotated);
  ASSERT_EQ(::kill(node.pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] {
    return has_record(records_of(log_file), "info", "node",
                      "SIGHUP: reopened " + log_file.string()) &&
           has_record(records_of(log_file), "info", "challenge", "responses counted");
  })) << "the reopened file got no lines";
  EXPECT_TRUE(node.running());
  EXPECT_TRUE(has_record(records_of(log_file), "info", "node", "log level unchanged (info)"));
  EXPECT_FALSE(has_record(records_of(rotated), "debug", "challenge"));
  EXPECT_FALSE(has_record(records_of(log_file), "debug", "challenge"));

  // A new level in the config file, applied by SIGHUP: the challenger's
  // per-step debug lines appear.
  write_config(config, log_file, "info,challenge=debug");
  ASSERT_EQ(::kill(node.pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] {
    return has_record(records_of(log_file), "debug", "challenge", ": walked ");
  })) << "no debug lines after raising the level";
  EXPECT_TRUE(
      has_record(records_of(log_file), "info", "node", "log level info -> info,challenge=debug"));

  // A bad level at reload: an error line, the node keeps running with the
  // levels it had (debug lines keep coming).
  write_config(config, log_file, "loud");
  ASSERT_EQ(::kill(node.pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] {
    return has_record(records_of(log_file), "error", "node", "invalid log level 'loud'");
  }));
  EXPECT_TRUE(
      has_record(records_of(log_file), "error", "node", "keeping log level info,challenge=debug"));
  const size_t debug_before = [&] {
    size_t n = 0;
    for (const auto& r : records_of(log_file)) n += r.value("level", "") == "debug";
    return n;
  }();
  EXPECT_TRUE(eventually([&] {
    size_t n = 0;
    for (const auto& r : records_of(log_file)) n += r.value("level", "") == "debug";
    return n > debug_before;
  })) << "the old levels were not kept";
  EXPECT_TRUE(node.running());

  const auto code = node.stop(SIGTERM, 20s);
  EXPECT_EQ(code, std::optional<int>(0)) << node.stderr_text();
  // Every line of both files was a record (records_of checks each).
  EXPECT_GE(records_of(rotated).size() + records_of(log_file).size(), 5u);
}

TEST(NodeLog, AnInvalidLevelStopsTheNodeWithExit2) {
  test::TempDir tmp;
  const std::vector<std::string> args = {"node",       "--data-dir",  (tmp / "data").string(),
                                         "--listen",   "127.0.0.1:0", "--api",
                                         "127.0.0.1:0"};
  auto from_env = test::run(cairn_argv(args, {"CAIRN_LOG=verbose"}), 30s);
  EXPECT_EQ(from_env.exit_code, 2) << from_env.out << from_env.err;
  EXPECT_NE(from_env.err.find("cairn node: invalid log level 'verbose' in environment CAIRN_LOG"),
            std::string::npos)
      << from_env.err;
  EXPECT_EQ(from_env.out.find("running"), std::string::npos);

  auto malformed = test::run(cairn_argv(args, {"CAIRN_LOG=info,p2p="}), 30s);
  EXPECT_EQ(malformed.exit_code, 2) << malformed.out << malformed.err;
  EXPECT_NE(malformed.err.find("cairn node: invalid log level 'info,p2p='"), std::string::npos)
      << malformed.err;

  std::ofstream(tmp / "bad.toml") << "[log]\nlevel = \"info,p2p=chatty\"\n";
  auto from_file = test::run(cairn_argv({"node", "--config", (tmp / "bad.toml").string(),
                                         "--data-dir", (tmp / "data").string(), "--print-config"}),
                             30s);
  EXPECT_EQ(from_file.exit_code, 2) << from_file.out << from_file.err;
  EXPECT_NE(from_file.err.find("cairn node: invalid log level 'info,p2p=chatty' in " +
                               (tmp / "bad.toml").string()),
            std::string::npos)
      << from_file.err;

  auto format = test::run(cairn_argv({"node", "--log-format", "xml", "--data-dir",
                                      (tmp / "data").string(), "--print-config"}),
                          30s);
  EXPECT_EQ(format.exit_code, 2) << format.out << format.err;
  EXPECT_NE(format.err.find("cairn node: invalid log format in --log-format"), std::string::npos)
      << format.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "data" / "identity.key"))
      << "a refused node created its identity";
}

TEST(NodeLog, EveryCommandRefusesAnInvalidCairnLog) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"status", "--node", "127.0.0.1:1"},
        std::vector<std::string>{"version"}}) {
    auto r = test::run(cairn_argv(args, {"CAIRN_LOG=verbose"}), 30s);
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.out << r.err;
    EXPECT_NE(
        r.err.find("cairn " + args[0] + ": invalid log level 'verbose' in environment CAIRN_LOG"),
        std::string::npos)
        << r.err;
  }
  auto ok = test::run(cairn_argv({"version"}, {"CAIRN_LOG=warn,node=debug"}), 30s);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST(NodeLog, PrintConfigDoesNotShowTheApiToken) {
  test::TempDir tmp;
  const std::string secret = "s3cret-t0ken-value";
  auto set = test::run(cairn_argv({"node", "--data-dir", (tmp / "data").string(), "--print-config",
                                   "--set", "api.token=" + secret}),
                       30s);
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(set.out.find(secret), std::string::npos) << set.out;
  EXPECT_NE(set.out.find("token = \"<redacted>\"\n"), std::string::npos) << set.out;
  EXPECT_NE(set.out.find("[log]\nlevel = \"info\"\nformat = \"text\"\nfile = \"\"\n"),
            std::string::npos)
      << set.out;

  auto unset =
      test::run(cairn_argv({"node", "--data-dir", (tmp / "data").string(), "--print-config"}), 30s);
  ASSERT_EQ(unset.exit_code, 0) << unset.err;
  EXPECT_NE(unset.out.find("\ntoken = \"\"\n"), std::string::npos) << unset.out;

  // The printed file fed back is refused rather than run with the
  // placeholder as its token.
  std::ofstream(tmp / "printed.toml") << set.out;
  auto fed_back = test::run(
      cairn_argv({"node", "--config", (tmp / "printed.toml").string(), "--print-config"}), 30s);
  EXPECT_EQ(fed_back.exit_code, 2) << fed_back.out;
  EXPECT_NE(fed_back.err.find("api.token"), std::string::npos) << fed_back.err;
}

}  // namespace
}  // namespace cairn
