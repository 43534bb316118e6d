// An upload's progress stream (docs/http-api.md, "Upload progress") from a
// three-node localnet of real processes: the phases arrive in order with
// counts that add up, the answer is the one a plain upload gets, a plain
// upload is answered as before, and a client that leaves mid-stream loses
// nothing of its upload.

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "integration/process_network.hpp"
#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Network = test::ProcessNetwork;

constexpr const char* kNdjson = "application/x-ndjson";

std::string as_string(const Bytes& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::vector<json> lines_of(const std::string& body) {
  std::vector<json> out;
  size_t at = 0;
  for (size_t nl; (nl = body.find('\n', at)) != std::string::npos; at = nl + 1) {
    out.push_back(json::parse(body.substr(at, nl - at), nullptr, /*allow_exceptions=*/false));
  }
  return out;
}

httplib::Client client(uint16_t port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120s);
  c.set_write_timeout(60s);
  return c;
}

std::string file_id(const fs::path& file) {
  auto r = test::run({test::cairn_binary(), "id", file.string()});
  return r.exit_code == 0 ? r.out.substr(0, 64) : "";
}

TEST(UploadProgress, PhasesStreamInOrderAndEndWithThePlainAnswer) {
  test::TempDir tmp;
  Network net(tmp);
  net.start(0, {"--min-replicas", "2"});
  net.start(1);
  net.start(2);
  ASSERT_TRUE(net.wait_meshed()) << "the three nodes did not mesh";
  auto rng = test::seeded_rng(61);
  const uint16_t api = net.node(0).api;

  // Streamed: 3 data blobs of 128 KiB and a manifest.
  const Bytes content = test::random_bytes(rng, 3 * 131072 - 100);
  auto c = client(api);
  auto r = c.Post("/v1/files?compress=never", {{"Accept", kNdjson}}, as_string(content),
                  "application/octet-stream");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), kNdjson);
  std::cout << r->body;
  const auto lines = lines_of(r->body);
  ASSERT_GE(lines.size(), 3u) << r->body;
  EXPECT_EQ(lines.front(), (json{{"event", "received"}, {"bytes", content.size()}}));
  const json& answer = lines.back();
  ASSERT_FALSE(answer.contains("event")) << answer;
  ASSERT_TRUE(answer.contains("id")) << answer;
  EXPECT_EQ(answer["blobs"], 4);
  EXPECT_GE(answer["replicas"].get<int>(), 2);

  // registering* replicating* acknowledged, every count only growing.
  const std::vector<std::string> order = {"registering", "replicating", "acknowledged"};
  size_t stage = 0;
  uint64_t registered = 0, acknowledged = 0;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    const json& e = lines[i];
    SCOPED_TRACE(e.dump());
    const auto at = std::find(order.begin(), order.end(), e.value("event", ""));
    ASSERT_NE(at, order.end());
    const auto s = static_cast<size_t>(at - order.begin());
    EXPECT_GE(s, stage) << "phases go forward";
    stage = s;
    EXPECT_GE(e["registered"].get<uint64_t>(), registered);
    EXPECT_GE(e["acknowledged"].get<uint64_t>(), acknowledged);
    registered = e["registered"].get<uint64_t>();
    acknowledged = e["acknowledged"].get<uint64_t>();
    EXPECT_LE(acknowledged, registered);
    EXPECT_LE(registered, e["blobs"].get<uint64_t>());
    if (s >= 1) {
      EXPECT_EQ(e["blobs"], 4);
      EXPECT_TRUE(e["encoded"].get<bool>());
      EXPECT_EQ(e["registered"], 4) << "replication starts once every blob is registered";
      EXPECT_EQ(e["need"], 2);
    }
  }
  const json& last = lines[lines.size() - 2];
  EXPECT_EQ(last.value("event", ""), "acknowledged") << "the answer follows the acknowledged phase";
  EXPECT_EQ(last["blobs"], answer["blobs"]);
  EXPECT_EQ(last["registered"], answer["blobs"]);
  EXPECT_EQ(last["acknowledged"], answer["blobs"]);
  EXPECT_GE(last["confirmed"].get<int>(), 2);
  EXPECT_EQ(last["confirmed"], answer["replicas"]);

  // Plain: 201 with one JSON object, the same fields as ever.
  const Bytes other = test::random_bytes(rng, 200000);
  r = client(api).Post("/v1/files", as_string(other), "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const json plain = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(plain.is_object()) << r->body;
  std::set<std::string> keys;
  for (const auto& [k, v] : plain.items()) keys.insert(k);
  EXPECT_EQ(keys,
            (std::set<std::string>{"id", "uri", "kind", "size", "stored_size", "compression",
                                   "sha256", "data_blobs", "manifest_blobs", "blobs", "replicas"}));
  EXPECT_EQ(r->get_header_value("Location"), "/v1/files/" + plain.value("id", ""));
  EXPECT_EQ(r->body.back(), '\n');
  EXPECT_EQ(r->body.find('\n'), r->body.size() - 1) << "one line";

  // A client that leaves after the first event: the upload still completes
  // with its replicas, and every node reads the file.
  const Bytes left = test::random_bytes(rng, 5 * 131072);
  const fs::path left_path = tmp / "left.bin";
  test::write_file(left_path, left);
  const std::string left_id = file_id(left_path);
  ASSERT_EQ(left_id.size(), 64u);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/files";
  req.headers = {{"Accept", kNdjson}, {"Content-Type", "application/octet-stream"}};
  req.body = as_string(left);
  std::string seen;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    seen.append(data, n);
    return seen.find('\n') == std::string::npos;  // gone after the first line
  };
  auto gone = client(api).send(req);
  EXPECT_FALSE(gone) << "the client cancelled";
  EXPECT_EQ(seen.rfind("{\"bytes\":", 0), 0u) << seen;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(test::wait_until(
        [&] {
          auto s = client(net.node(i).api).Get("/v1/blobs/" + left_id + "/status");
          return s && s->status == 200 &&
                 !json::parse(s->body, nullptr, false).value("pending", true);
        },
        60s))
        << "node " << i;
    EXPECT_TRUE(test::got(net.node(i).url(), left_id, tmp / "out", left)) << "node " << i;
  }
  EXPECT_TRUE(test::wait_until([&] { return net.status(0)["pending_uploads"] == 0; }, 60s))
      << net.status(0).dump();
}

}  // namespace
}  // namespace cairn
