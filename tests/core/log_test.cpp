// The logger (include/cairn/core/log.hpp): the line formats an operator or a
// log shipper reads, the level spec of CAIRN_LOG / log.level, and what gets
// written at which level.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/core/log.hpp"
#include "support/test_util.hpp"

namespace cairn::log {
namespace {

using namespace std::chrono;

// 2026-12-07T09:21:03.123Z
system_clock::time_point example_time() {
  return system_clock::time_point(seconds(1796635263)) + milliseconds(123);
}

// Restores the levels, format, output and sink a test changed.
struct Restore {
  LevelSpec levels_ = levels();
  Format format_ = format();
  Sink sink_ = set_sink(nullptr);
  ~Restore() {
    set_levels(levels_);
    set_format(format_);
    (void)set_file("");
    set_sink(std::move(sink_));
  }
};

struct Captured {
  Level level;
  std::string module, message;
};

std::vector<Captured>* install_capture(std::vector<Captured>& out) {
  set_sink([&out](Level l, std::string_view m, std::string_view msg) {
    out.push_back({l, std::string(m), std::string(msg)});
  });
  return &out;
}

TEST(LogFormat, TimestampIsRfc3339UtcWithMilliseconds) {
  EXPECT_EQ(format_timestamp(example_time()), "2026-12-07T09:21:03.123Z");
  EXPECT_EQ(format_timestamp(system_clock::time_point(seconds(0))), "1970-01-01T00:00:00.000Z");
  const std::regex re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
  EXPECT_TRUE(std::regex_match(format_timestamp(system_clock::now()), re));
}

TEST(LogFormat, TextLineCarriesTimeLevelModuleAndStaysOneLine) {
  EXPECT_EQ(format_text(example_time(), Level::info, "node", "started"),
            "2026-12-07T09:21:03.123Z info  node: started\n");
  EXPECT_EQ(format_text(example_time(), Level::error, "p2p", "x"),
            "2026-12-07T09:21:03.123Z error p2p: x\n");
  EXPECT_EQ(format_text(example_time(), Level::warn, "m", "a\nb\r\tc\x01"),
            "2026-12-07T09:21:03.123Z warn  m: a\\nb\\r\\tc\\x01\n");
}

TEST(LogFormat, JsonLineHasTheFieldsAndEscapes) {
  EXPECT_EQ(
      format_json(example_time(), Level::debug, "challenge", "walked 3 blob(s)"),
      R"j({"ts":"2026-12-07T09:21:03.123Z","level":"debug","module":"challenge","msg":"walked 3 blob(s)"})j"
      "\n");
  const std::string line =
      format_json(example_time(), Level::warn, "p2p", "say \"hi\"\\\nnext\x01\x1f\x7f");
  EXPECT_EQ(
      line,
      R"j({"ts":"2026-12-07T09:21:03.123Z","level":"warn","module":"p2p","msg":"say \"hi\"\\\nnext\u0001\u001f\u007f"})j"
      "\n");
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
}

TEST(LogFormat, JsonKeepsValidUtf8AndReplacesInvalidBytes) {
  auto json = [](std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
  };
  EXPECT_EQ(json("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(json("a\xff"
                 "b"),
            "\"a" + fffd + "b\"");                                    // never valid
  EXPECT_EQ(json("\x80"), "\"" + fffd + "\"");                        // stray continuation
  EXPECT_EQ(json("\xc3"), "\"" + fffd + "\"");                        // truncated at the end
  EXPECT_EQ(json("\xc0\xaf"), "\"" + fffd + fffd + "\"");             // overlong '/'
  EXPECT_EQ(json("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"");  // surrogate U+D800
  EXPECT_EQ(json("\xf4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // > U+10FFFF
  EXPECT_EQ(json("\xe2\x82"
                 "x"),
            "\"" + fffd + fffd + "x\"");  // cut short by ASCII
}

TEST(LogLevels, ParsesDefaultAndModuleOverrides) {
  auto spec = parse_level_spec("info,p2p=debug,challenge=warn");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->default_level, Level::info);
  EXPECT_EQ(spec->level_for("p2p"), Level::debug);
  EXPECT_EQ(spec->level_for("challenge"), Level::warn);
  EXPECT_EQ(spec->level_for("node"), Level::info);
  EXPECT_EQ(spec->minimum(), Level::debug);
  EXPECT_EQ(spec->to_string(), "info,challenge=warn,p2p=debug");

  auto plain = parse_level_spec(" warn ");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->default_level, Level::warn);
  EXPECT_TRUE(plain->modules.empty());
  auto only_module = parse_level_spec("p2p=off");
  ASSERT_TRUE(only_module);
  EXPECT_EQ(only_module->default_level, Level::info);
  EXPECT_EQ(only_module->level_for("p2p"), Level::off);
  for (const char* l : {"debug", "info", "warn", "error", "off"})
    EXPECT_TRUE(parse_level_spec(l)) << l;
}

TEST(LogLevels, RejectsUnknownLevelsAndMalformedSpecs) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"verbose", "unknown level 'verbose'"},
      {"INFO", "unknown level 'INFO'"},
      {"", "empty"},
      {"info,", "empty item"},
      {"info,,p2p=debug", "empty item"},
      {"info,p2p=loud", "unknown level 'loud' for module p2p"},
      {"info,=debug", "names no module"},
      {"info,p 2p=debug", "names no module"},
      {"info,warn", "two default levels"},
      {"p2p=debug,p2p=warn", "module p2p given twice"},
  };
  for (const auto& [text, why] : cases) {
    auto spec = parse_level_spec(text);
    ASSERT_FALSE(spec) << "'" << text << "' was accepted";
    EXPECT_EQ(spec.error().code, Errc::invalid_argument);
    EXPECT_NE(spec.error().message.find(why), std::string::npos)
        << text << ": " << spec.error().message;
    EXPECT_NE(spec.error().message.find("debug, info, warn, error or off"), std::string::npos);
  }
  EXPECT_TRUE(parse_format("json"));
  EXPECT_TRUE(parse_format("text"));
  EXPECT_FALSE(parse_format("xml"));
}

TEST(LogLevels, ModuleOverrideBeatsTheDefault) {
  Restore restore;
  std::vector<Captured> got;
  install_capture(got);
  set_levels(*parse_level_spec("warn,p2p=debug,challenge=error"));
  CAIRN_LOG(Level::debug, "p2p", "p2p debug");
  CAIRN_LOG(Level::info, "node", "node info");
  CAIRN_LOG(Level::warn, "node", "node warn");
  CAIRN_LOG(Level::warn, "challenge", "challenge warn");
  CAIRN_LOG(Level::error, "challenge", "challenge error");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].message, "p2p debug");
  EXPECT_EQ(got[1].message, "node warn");
  EXPECT_EQ(got[2].message, "challenge error");
  EXPECT_EQ(got[2].level, Level::error);
  EXPECT_EQ(got[2].module, "challenge");
}

TEST(LogLevels, DisabledRecordsAreRejectedByTheThresholdAndNotFormatted) {
  Restore restore;
  std::vector<Captured> got;
  install_capture(got);
  int evaluated = 0;
  auto costly = [&] {
    ++evaluated;
    return "x";
  };

  set_levels(*parse_level_spec("warn"));
  EXPECT_FALSE(enabled(Level::info));  // the fast path alone rejects it
  EXPECT_TRUE(enabled(Level::warn));
  CAIRN_LOG(Level::info, "node", costly());
  EXPECT_EQ(evaluated, 0);

  // An override below the default lowers the threshold for that module only.
  set_levels(*parse_level_spec("warn,p2p=debug"));
  EXPECT_TRUE(enabled(Level::debug));
  EXPECT_TRUE(enabled(Level::debug, "p2p"));
  EXPECT_FALSE(enabled(Level::debug, "node"));
  CAIRN_LOG(Level::debug, "node", costly());
  EXPECT_EQ(evaluated, 0);
  CAIRN_LOG(Level::debug, "p2p", costly());
  EXPECT_EQ(evaluated, 1);

  set_threshold(Level::off);
  EXPECT_FALSE(enabled(Level::error));
  EXPECT_EQ(threshold(), Level::off);
  CAIRN_LOG(Level::error, "node", costly());
  EXPECT_EQ(evaluated, 1);
  EXPECT_EQ(got.size(), 1u);
}

std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(LogOutput, AppendsJsonLinesToAFileAndReopensItAfterARename) {
  Restore restore;
  test::TempDir tmp;
  const auto path = tmp / "node.log";
  set_levels(LevelSpec{});
  set_format(Format::json);
  ASSERT_TRUE(set_file(path.string()));
  CAIRN_LOG(Level::info, "node", "first\nline");
  std::filesystem::rename(path, tmp / "node.log.1");
  CAIRN_LOG(Level::info, "node", "second");  // still the renamed file
  ASSERT_TRUE(reopen());
  CAIRN_LOG(Level::warn, "node", "third");

  const auto old_lines = lines_of(tmp / "node.log.1");
  ASSERT_EQ(old_lines.size(), 2u);
  EXPECT_NE(old_lines[0].find(R"j("msg":"first\nline")j"), std::string::npos) << old_lines[0];
  EXPECT_NE(old_lines[1].find(R"j("msg":"second")j"), std::string::npos);
  const auto new_lines = lines_of(path);
  ASSERT_EQ(new_lines.size(), 1u);
  const std::regex re(
      R"j(^\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"warn","module":"node","msg":"third"\}$)j");
  EXPECT_TRUE(std::regex_match(new_lines[0], re)) << new_lines[0];

  auto bad = set_file((tmp / "no" / "such" / "dir.log").string());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::io_error);
  EXPECT_NE(bad.error().message.find("dir.log"), std::string::npos);
}

}  // namespace
}  // namespace cairn::log
