// The HTML status page renderer: what an operator reads off it, and that
// nothing a peer or the chain controls reaches the page unescaped.

#include "node/status_page.hpp"

#include <gtest/gtest.h>

#include <string>

namespace cairn::node {
namespace {

size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos;
       at = hay.find(needle, at + needle.size()))
    ++n;
  return n;
}

NodeId node_id(uint8_t fill) {
  NodeId id;
  id.bytes.fill(fill);
  return id;
}

EpochChallengeStatus epoch(uint64_t e, uint32_t valid, double walk,
                           std::vector<PeerChallengeResult> missing = {}) {
  EpochChallengeStatus st;
  st.shard = ShardId{0};
  st.epoch = Epoch{e};
  st.start_block = BlockNumber{e * 8};
  st.blob_count = 3;
  st.own = "anchored";
  st.walk_seconds = walk;
  st.valid = valid;
  st.missing = std::move(missing);
  return st;
}

NodeStatus sample_status() {
  NodeStatus s;
  s.id = node_id(0xab);
  s.version = "0.1.0";
  s.uptime_ms = 125'000;
  s.chain.backend = "embedded";
  s.chain.head = 42;
  s.chain.head_timestamp_ms = 1'000'000;
  s.chain.params.block_time_ms = 1000;
  s.chain.params.deadline_blocks = 4;
  s.shards = {ShardId{0}};
  shards::SyncProgress sync;
  sync.shard = ShardId{0};
  sync.known = 7;
  sync.held = 6;
  sync.remaining = 1;
  sync.state = shards::SyncState::fetching;
  s.sync.push_back(sync);
  PeerStatus p;
  p.id = node_id(0x11);
  p.address = "127.0.0.1:9000";
  p.shards = {ShardId{0}};
  s.peers.push_back(p);
  s.blobs_stored = 6;
  s.bytes_stored = 6 * 1024 * 1024;
  s.challenge_history = {epoch(3, 3, 0.5),
                         epoch(4, 2, 0.7, {{node_id(0x22), "127.0.0.1:9001", "late"}})};
  s.challenges = {s.challenge_history.back()};
  RecentUpload u;
  u.id.bytes.fill(0xcd);
  u.size = 1234;
  u.unix_ms = 990'000;
  u.replicas = 3;
  s.recent_uploads.push_back(u);
  return s;
}

TEST(StatusPage, EscapesEveryMarkupCharacter) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(html_escape("plain 127.0.0.1:1"), "plain 127.0.0.1:1");
}

TEST(StatusPage, ShowsWhatAnOperatorLooksFor) {
  const std::string page = render_status_page(sample_status(), 1'003'000);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("<meta http-equiv=\"refresh\""), std::string::npos);
  EXPECT_NE(page.find("id=\"node-id\" class=\"mono\">" + node_id(0xab).hex() + "<"),
            std::string::npos);
  EXPECT_NE(page.find("<span id=\"chain-head\">42</span>"), std::string::npos);
  EXPECT_NE(page.find("data-lag-blocks=\"3\""), std::string::npos) << "head 3 s old at 1 s blocks";
  EXPECT_NE(page.find("class=\"shard-row\" data-shard=\"0\" data-registered=\"7\" data-held=\"6\" "
                      "data-peers=\"1\""),
            std::string::npos);
  EXPECT_NE(page.find("<span id=\"peer-count\">1</span>"), std::string::npos);
  BlobId upload;
  upload.bytes.fill(0xcd);
  EXPECT_NE(page.find("class=\"upload-row\" data-id=\"" + upload.hex() + "\""), std::string::npos);
  EXPECT_EQ(count_of(page, "<g class=\"epoch\""), 2u);
  EXPECT_NE(page.find("data-epoch=\"4\" data-valid=\"2\" data-invalid=\"0\" data-missing=\"1\""),
            std::string::npos);
  EXPECT_NE(page.find("deadline 4.0 s"), std::string::npos) << "deadline_blocks * block_time_ms";
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("http://"), std::string::npos) << "no external asset";
  EXPECT_EQ(page.find("https://"), std::string::npos) << "no external asset";
}

TEST(StatusPage, NetworkStringsAreEscaped) {
  NodeStatus s = sample_status();
  const std::string evil = "<script>alert('x')</script>\"><img src=x>";
  s.peers[0].address = evil;
  s.sync[0].last_error = evil;
  s.chain.backend = evil;
  s.advertised_address = evil;
  s.challenge_history.back().missing[0].endpoint = evil;
  s.challenge_history.back().missing[0].reason = evil;
  s.challenge_history.back().own = evil;
  s.challenge_history.back().own_detail = evil;
  const std::string page = render_status_page(s, 1'003'000);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_EQ(page.find("'x'"), std::string::npos);
  EXPECT_GE(
      count_of(page, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&gt;&lt;img src=x&gt;"),
      9u);
}

TEST(StatusPage, EmptyNodeRendersPlaceholders) {
  NodeStatus s;
  const std::string page = render_status_page(s, 0);
  EXPECT_NE(page.find("No epoch with blobs has finished yet."), std::string::npos);
  EXPECT_NE(page.find("Nothing uploaded through this node since it started."), std::string::npos);
  EXPECT_NE(page.find("No peer connected."), std::string::npos);
  EXPECT_NE(page.find("<span id=\"peer-count\">0</span>"), std::string::npos);
}

}  // namespace
}  // namespace cairn::node
