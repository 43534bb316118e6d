// The status page at GET / in a real browser (issue 16): three `cairn node`s
// over one shard of a `cairn devchain` with 1-second blocks and 4-block
// epochs; after an upload and two finished epochs, headless Chromium loads
// node 0's page and the test reads, from the DOM Chromium built, what an
// operator looks for. Chromium also writes a screenshot (status-page.png in
// the test's working directory, the source of docs/images/status-page.png).
// Labelled "browser"; skipped with a message when chromium is not installed
// (tools/dev/common.sh installs it).

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>

#include "integration/process_network.hpp"
#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string find_chromium() {
  for (const char* p :
       {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"}) {
    if (fs::exists(p)) return p;
  }
  return "";
}

std::vector<std::string> chromium_args(const std::string& chromium, const fs::path& profile) {
  return {chromium,
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-dev-shm-usage",
          "--no-first-run",
          "--user-data-dir=" + profile.string()};
}

// How many times `re` matches in `text`.
size_t matches(const std::string& text, const std::regex& re) {
  return static_cast<size_t>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

TEST(StatusPageBrowser, ChromiumShowsTheNodeItsShardPeersUploadsAndChallengeEpochs) {
  const std::string chromium = find_chromium();
  if (chromium.empty())
    GTEST_SKIP() << "chromium is not installed (apt-get install chromium); the status page browser "
                    "test needs it";
  TempDir tmp;
  ProcessNetwork net(tmp,
                     {"--block-time-ms", "1000", "--epoch-blocks", "4", "--deadline-blocks", "2"});
  for (size_t i = 0; i < 3; ++i) net.start(i, {"--shards", "0"});
  ASSERT_TRUE(net.wait_meshed(30s)) << "nodes did not mesh";

  auto rng = seeded_rng(1601);
  const fs::path input = tmp / "input.bin";
  write_file(input, random_bytes(rng, 300 * 1024));
  const std::string id = put(net.node(0).url(), input, {"--min-replicas", "3"});
  ASSERT_FALSE(id.empty());

  // Two epochs that began after the upload have finished (4 s each, settled
  // a few blocks after their deadline).
  nlohmann::json status;
  ASSERT_TRUE(wait_until(
      [&] {
        status = net.status(0);
        if (status.is_null()) return false;
        size_t full = 0;
        for (const auto& e : status["challenge_history"])
          if (e.value("valid", 0) == 3) ++full;
        return full >= 2;
      },
      60s))
      << "two epochs with three valid responses did not finish: " << status.dump();
  const std::string node_id = status["id"].get<std::string>();
  uint64_t registered = 0;
  for (const auto& s : status["sync"]) registered = s.value("registered", uint64_t{0});
  ASSERT_GT(registered, 0u);

  const std::string url = net.node(0).url() + "/";
  auto dom = run(
      [&] {
        auto a = chromium_args(chromium, tmp / "profile-dom");
        a.push_back("--dump-dom");
        a.push_back(url);
        return a;
      }(),
      90s);
  ASSERT_EQ(dom.exit_code, 0) << "chromium --dump-dom failed: " << dom.err;
  const std::string& html = dom.out;
  EXPECT_NE(html.find("id=\"node-id\" class=\"mono\">" + node_id + "<"), std::string::npos) << html;
  EXPECT_TRUE(std::regex_search(
      html, std::regex("<tr class=\"shard-row\" data-shard=\"0\" data-registered=\"" +
                       std::to_string(registered) + "\" data-held=\"" + std::to_string(registered) +
                       "\" data-peers=\"2\"")))
      << "shard 0 with all " << registered << " blobs held and 2 peers:\n"
      << html;
  EXPECT_NE(html.find("<span id=\"peer-count\">2</span>"), std::string::npos) << html;
  EXPECT_NE(html.find("<tr class=\"upload-row\" data-id=\"" + id + "\">"), std::string::npos)
      << html;
  EXPECT_NE(html.find("<svg class=\"challenge-chart\" data-shard=\"0\""), std::string::npos)
      << html;
  EXPECT_GE(
      matches(
          html,
          std::regex("<g class=\"epoch\" data-epoch=\"[0-9]+\" data-valid=\"3\" data-invalid=\"0\" "
                     "data-missing=\"0\" data-own=\"anchored\"")),
      2u)
      << html;

  const fs::path png = fs::current_path() / "status-page.png";
  fs::remove(png);
  auto shot = run(
      [&] {
        auto a = chromium_args(chromium, tmp / "profile-shot");
        a.push_back("--hide-scrollbars");
        a.push_back("--screenshot=" + png.string());
        a.push_back("--window-size=1280,1400");
        a.push_back(url);
        return a;
      }(),
      90s);
  ASSERT_EQ(shot.exit_code, 0) << "chromium --screenshot failed: " << shot.err;
  ASSERT_TRUE(fs::exists(png));
  const Bytes bytes = read_file(png);
  ASSERT_GT(bytes.size(), 30'000u) << "a near-empty screenshot";
  const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  ASSERT_TRUE(std::equal(kPng, kPng + 8, bytes.begin()));
  const auto be32 = [&](size_t at) {
    return uint32_t{bytes[at]} << 24 | uint32_t{bytes[at + 1]} << 16 |
           uint32_t{bytes[at + 2]} << 8 | bytes[at + 3];
  };
  EXPECT_EQ(be32(16), 1280u);
  EXPECT_EQ(be32(20), 1400u);
}

}  // namespace
}  // namespace cairn::test
