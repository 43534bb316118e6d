// The HTTP API as a client sees it, over an in-memory NodeService: uploads,
// downloads with Range, every error class, the token rule, the spool.

#include "node/api_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cairn/contracts/params_json.hpp"
#include "memory_node.hpp"
#include "support/test_util.hpp"

namespace cairn::node {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string as_string(ByteSpan b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

uint16_t port_of(const std::string& address) {
  return static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

// Sends `request` verbatim and returns everything the server answers before
// it closes the connection (bounded by 10 s). The client never half-closes:
// httplib takes a peer that did for gone and answers nothing.
std::string raw_exchange(uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "connect failed";
  }
  size_t off = 0;
  while (off < request.size()) {
    const ssize_t w = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return out;
}

json body_json(const httplib::Result& r) {
  return json::parse(r->body, nullptr, /*allow_exceptions=*/false);
}

// The JSON error contract: {"error": code, "message": non-empty}.
void expect_error(const httplib::Result& r, int status, const std::string& code,
                  const std::string& message_part = "") {
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, status) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const json j = body_json(r);
  ASSERT_TRUE(j.is_object()) << r->body;
  EXPECT_EQ(j.value("error", ""), code) << r->body;
  EXPECT_FALSE(j.value("message", "").empty()) << r->body;
  if (!message_part.empty()) {
    EXPECT_NE(j.value("message", "").find(message_part), std::string::npos) << r->body;
  }
}

class ApiServerTest : public ::testing::Test {
 protected:
  ApiSettings loopback() {
    ApiSettings s;
    s.listen = "127.0.0.1:0";
    s.threads = 4;
    return s;
  }

  void start(const ApiSettings& s) {
    auto started = start_api_server(node_, s, registry_, spool_dir());
    ASSERT_TRUE(started) << started.error().to_string();
    server_ = std::move(*started);
    port_ = port_of(server_->address());
  }
  void SetUp() override { start(loopback()); }
  void TearDown() override {
    if (server_) server_->stop();
  }

  std::filesystem::path spool_dir() const { return tmp_ / "spool"; }

  httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(20s);
    c.set_write_timeout(20s);
    return c;
  }

  // Uploads `content` as a file; returns the response JSON.
  json upload(ByteSpan content, const std::string& query = "") {
    auto c = client();
    auto r = c.Post(("/v1/files" + query).c_str(), as_string(content), "application/octet-stream");
    EXPECT_TRUE(r) << httplib::to_string(r.error());
    if (!r) return json();
    EXPECT_EQ(r->status, 201) << r->body;
    return body_json(r);
  }

  std::string expected_id(ByteSpan content) {
    return erasure::encode_file(node_.codec(), content, {},
                                [](const erasure::BlobPiece&) { return Status{}; })
        ->id.hex();
  }

  metrics::Registry registry_;
  test::MemoryNode node_{registry_};
  cairn::test::TempDir tmp_;
  std::unique_ptr<ApiServer> server_;
  uint16_t port_ = 0;
};

TEST_F(ApiServerTest, UploadsAFileAndDownloadsTheSameBytes) {
  auto rng = cairn::test::seeded_rng(1);
  const Bytes content = cairn::test::random_bytes(rng, 3 * 131072 + 17);
  const json put = upload(content);
  const std::string id = expected_id(content);
  EXPECT_EQ(put["id"], id);
  EXPECT_EQ(put["uri"], "cairn://" + id);
  EXPECT_EQ(put["kind"], "file");
  EXPECT_EQ(put["size"], content.size());
  EXPECT_EQ(put["data_blobs"], 4);
  EXPECT_EQ(put["manifest_blobs"], 1);
  EXPECT_EQ(put["blobs"], 5);
  EXPECT_EQ(put["compression"], "none");
  EXPECT_EQ(put["sha256"].get<std::string>().size(), 64u);

  auto c = client();
  auto got = c.Get(("/v1/files/" + id).c_str());
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->get_header_value("Content-Type"), "application/octet-stream");
  EXPECT_EQ(got->get_header_value("Content-Length"), std::to_string(content.size()));
  EXPECT_EQ(got->get_header_value("Accept-Ranges"), "bytes");
  EXPECT_EQ(got->get_header_value("ETag"), "\"" + id + "\"");
  EXPECT_TRUE(got->body == as_string(content)) << "downloaded bytes differ";

  auto head = c.Head(("/v1/files/" + id).c_str());
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->get_header_value("Content-Length"), std::to_string(content.size()));
  EXPECT_TRUE(head->body.empty());
}

TEST_F(ApiServerTest, UploadsOfEdgeSizesRoundTrip) {
  auto rng = cairn::test::seeded_rng(2);
  for (size_t size : {size_t{0}, size_t{1}, size_t{131071}, size_t{131072}, size_t{131073}}) {
    const Bytes content = cairn::test::random_bytes(rng, size);
    const json put = upload(content);
    ASSERT_EQ(put.value("id", ""), expected_id(content)) << size;
    auto got = client().Get(("/v1/files/" + put["id"].get<std::string>()).c_str());
    ASSERT_TRUE(got);
    EXPECT_EQ(got->status, 200);
    EXPECT_EQ(got->get_header_value("Content-Length"), std::to_string(size));
    EXPECT_TRUE(got->body == as_string(content)) << size;
  }
}

TEST_F(ApiServerTest, ChunkedUploadsAreAcceptedAndOptionsReachTheNode) {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "the same line again and again\n";
  auto c = client();
  size_t sent = 0;
  auto r = c.Post(
      "/v1/files?compress=never&min_replicas=3",
      [&](size_t, httplib::DataSink& sink) {
        const size_t n = std::min<size_t>(7000, text.size() - sent);
        sink.write(text.data() + sent, n);
        sent += n;
        if (sent == text.size()) sink.done();
        return true;
      },
      "application/octet-stream");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  ASSERT_EQ(r->status, 201) << r->body;
  const json put = body_json(r);
  EXPECT_EQ(put["compression"], "none");
  EXPECT_EQ(put["size"], text.size());
  EXPECT_EQ(node_.last_options().compress, erasure::FileOptions::Compress::never);
  EXPECT_EQ(node_.last_options().min_replicas, std::optional<uint32_t>(3));

  const json zstd = upload(as_bytes(text), "?compress=always");
  EXPECT_EQ(zstd["compression"], "zstd");
  EXPECT_LT(zstd["stored_size"].get<uint64_t>(), text.size());
}

TEST_F(ApiServerTest, SpoolFilesExistDuringTheUploadOnlyAndStaleOnesAreRemovedAtStart) {
  std::filesystem::path seen;
  bool existed = false;
  node_.on_put_path = [&](const std::filesystem::path& p) {
    seen = p;
    existed = std::filesystem::exists(p);
  };
  upload(as_bytes("spooled bytes"));
  EXPECT_EQ(seen.parent_path(), spool_dir());
  EXPECT_TRUE(existed);
  EXPECT_FALSE(std::filesystem::exists(seen));
  EXPECT_TRUE(std::filesystem::is_empty(spool_dir()));

  server_->stop();
  cairn::test::write_file(spool_dir() / "upload-left0", as_bytes("from a crashed run"));
  start(loopback());
  EXPECT_TRUE(std::filesystem::is_empty(spool_dir()));
}

TEST_F(ApiServerTest, BlobsUploadAndDownloadRaw) {
  auto rng = cairn::test::seeded_rng(3);
  const Bytes payload = cairn::test::random_bytes(rng, 5000);
  auto c = client();
  auto r = c.Post("/v1/blobs", as_string(payload), "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const json put = body_json(r);
  const std::string id = erasure::encode_and_commit(node_.codec(), payload)->commitment.id.hex();
  EXPECT_EQ(put["id"], id);
  EXPECT_EQ(put["kind"], "blob");
  EXPECT_EQ(put["size"], 5000);
  EXPECT_EQ(r->get_header_value("Location"), "/v1/blobs/" + id);

  auto got = c.Get(("/v1/blobs/" + id).c_str());
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_TRUE(got->body == as_string(payload));
  auto part = c.Get(("/v1/blobs/" + id).c_str(), {{"Range", "bytes=4990-"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->get_header_value("Content-Range"), "bytes 4990-4999/5000");
  EXPECT_TRUE(part->body == as_string(ByteSpan(payload).subspan(4990)));

  // A blob is not a file; a file's id read as a blob is its manifest.
  expect_error(c.Get(("/v1/files/" + id).c_str()), 404, "not_found", "is a blob");
  const json file = upload(as_bytes("a small file"));
  auto manifest = c.Get(("/v1/blobs/" + file["id"].get<std::string>()).c_str());
  ASSERT_TRUE(manifest);
  EXPECT_EQ(manifest->status, 200);
  EXPECT_EQ(manifest->body.substr(0, 4), "CRNM");
}

class RangeTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiServerTest::SetUp();
    auto rng = cairn::test::seeded_rng(4);
    content_ = cairn::test::random_bytes(rng, kSize);
    id_ = upload(content_)["id"].get<std::string>();
  }
  // Expects 206 with exactly bytes [first, last].
  void expect_part(const std::string& range, uint64_t first, uint64_t last) {
    auto r = client().Get(("/v1/files/" + id_).c_str(), {{"Range", range}});
    ASSERT_TRUE(r) << range;
    EXPECT_EQ(r->status, 206) << range << ": " << r->body.substr(0, 200);
    EXPECT_EQ(
        r->get_header_value("Content-Range"),
        "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(kSize))
        << range;
    EXPECT_EQ(r->get_header_value("Content-Length"), std::to_string(last - first + 1)) << range;
    EXPECT_TRUE(r->body == as_string(ByteSpan(content_).subspan(first, last - first + 1))) << range;
  }
  void expect_416(const std::string& range) {
    auto r = client().Get(("/v1/files/" + id_).c_str(), {{"Range", range}});
    expect_error(r, 416, "range_not_satisfiable");
    if (r) {
      EXPECT_EQ(r->get_header_value("Content-Range"), "bytes */" + std::to_string(kSize)) << range;
    }
  }

  static constexpr uint64_t kSize = 300001;  // three blobs: ranges cross blob edges
  Bytes content_;
  std::string id_;
};

TEST_F(RangeTest, SatisfiableRangesReturnExactlyTheBytesAsked) {
  expect_part("bytes=0-0", 0, 0);
  expect_part("bytes=0-99", 0, 99);
  expect_part("bytes=131000-131199", 131000, 131199);  // across the first blob edge
  expect_part("bytes=300000-", 300000, 300000);
  expect_part("bytes=1000-", 1000, kSize - 1);
  expect_part("bytes=-100", kSize - 100, kSize - 1);
  expect_part("bytes=-1", kSize - 1, kSize - 1);
  expect_part("bytes=-999999", 0, kSize - 1);             // suffix longer than the file
  expect_part("bytes=299990-999999", 299990, kSize - 1);  // end clamped
  expect_part("bytes=10-19, 100-109", 10, 109);           // several ranges coalesced
  expect_part("bytes=0-9223372036854775807", 0, kSize - 1);
}

TEST_F(RangeTest, UnsatisfiableRangesGet416WithTheSizeAndAReason) {
  expect_416("bytes=300001-");
  expect_416("bytes=300001-300005");
  expect_416("bytes=9223372036854775807-");
  expect_416("bytes=-0");
  auto r = client().Get(("/v1/files/" + id_).c_str(), {{"Range", "bytes=400000-"}});
  expect_error(r, 416, "range_not_satisfiable", "300001 bytes");
}

TEST_F(RangeTest, MalformedRangesGet416WithAReason) {
  // httplib refuses these before routing; the API still answers in JSON
  // (without Content-Range: the size is not looked up for a malformed request).
  for (const char* range : {"bytes=5-2", "bytes=", "bytes=abc", "items=0-5", "garbage",
                            "BYTES = 5-9", "bytes=99999999999999999999999-"}) {
    auto r = client().Get(("/v1/files/" + id_).c_str(), {{"Range", range}});
    expect_error(r, 416, "range_not_satisfiable", "Range");
  }
}

TEST_F(RangeTest, EmptyFilesHaveNoSatisfiableRange) {
  const json empty = upload(ByteSpan());
  const std::string id = empty["id"];
  auto c = client();
  auto whole = c.Get(("/v1/files/" + id).c_str());
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->status, 200);
  EXPECT_EQ(whole->get_header_value("Content-Length"), "0");
  EXPECT_TRUE(whole->body.empty());
  for (const char* range : {"bytes=0-", "bytes=-5", "bytes=0-0"}) {
    auto r = c.Get(("/v1/files/" + id).c_str(), {{"Range", range}});
    expect_error(r, 416, "range_not_satisfiable");
    if (r) {
      EXPECT_EQ(r->get_header_value("Content-Range"), "bytes */0");
    }
  }
}

TEST_F(RangeTest, ErrorBodiesAreNeverSlicedByARangeHeader) {
  const std::string unknown(64, 'e');
  auto r = client().Get(("/v1/files/" + unknown).c_str(), {{"Range", "bytes=0-3"}});
  expect_error(r, 404, "not_found");
  EXPECT_FALSE(r->has_header("Content-Range"));
}

TEST_F(ApiServerTest, UnknownMalformedAndMisroutedRequestsGetJsonErrors) {
  auto c = client();
  const std::string unknown(64, 'a');
  expect_error(c.Get(("/v1/files/" + unknown).c_str()), 404, "not_found");
  expect_error(c.Get(("/v1/blobs/" + unknown).c_str()), 404, "not_found");
  expect_error(c.Get(("/v1/stat/" + unknown).c_str()), 404, "not_found");
  expect_error(c.Get(("/v1/blobs/" + unknown + "/status").c_str()), 404, "not_found");
  for (const std::string& bad :
       {std::string("xyz"), std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'g')}) {
    expect_error(c.Get(("/v1/files/" + bad).c_str()), 400, "invalid_argument", "64 hex digits");
    expect_error(c.Get(("/v1/stat/" + bad).c_str()), 400, "invalid_argument");
  }
  expect_error(c.Get("/v2/nothing"), 404, "not_found", "no endpoint");

  auto wrong = c.Get("/v1/files");
  expect_error(wrong, 405, "method_not_allowed");
  EXPECT_EQ(wrong->get_header_value("Allow"), "POST");
  auto del = c.Delete(("/v1/files/" + unknown).c_str());
  expect_error(del, 405, "method_not_allowed");
  EXPECT_EQ(del->get_header_value("Allow"), "GET, HEAD");
  expect_error(c.Post("/v1/status", "x", "text/plain"), 405, "method_not_allowed");
  expect_error(c.Put("/v1/blobs", "x", "application/octet-stream"), 405, "method_not_allowed");
  expect_error(c.Post("/v1/files?compress=zip", "x", "application/octet-stream"), 400,
               "invalid_argument", "compress");
  expect_error(c.Post("/v1/files?min_replicas=0", "x", "application/octet-stream"), 400,
               "invalid_argument", "min_replicas");

  httplib::MultipartFormDataItems form = {{"file", "content", "a.txt", "text/plain"}};
  expect_error(c.Post("/v1/files", form), 415, "unsupported_media_type");
}

TEST_F(ApiServerTest, OversizeBodiesGet413) {
  server_->stop();
  ApiSettings s = loopback();
  s.max_upload_bytes = 1000;
  start(s);
  auto c = client();
  expect_error(c.Post("/v1/files", std::string(1001, 'x'), "application/octet-stream"), 413,
               "payload_too_large", "1000");
  // Without a declared length the count is made as the body streams in.
  size_t sent = 0;
  auto chunked = c.Post(
      "/v1/files",
      [&](size_t, httplib::DataSink& sink) {
        sink.write(std::string(300, 'y').data(), 300);
        sent += 300;
        if (sent >= 1200) sink.done();
        return true;
      },
      "application/octet-stream");
  expect_error(chunked, 413, "payload_too_large");
  // Exactly at the limit is fine.
  auto ok = client().Post("/v1/files", std::string(1000, 'x'), "application/octet-stream");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 201) << ok->body;

  // A blob above the network's blob_size.
  expect_error(client().Post("/v1/blobs", std::string(131073, 'b'), "application/octet-stream"),
               413, "payload_too_large", "blob_size");
  EXPECT_TRUE(std::filesystem::is_empty(spool_dir()));
}

TEST_F(ApiServerTest, TruncatedBodiesGet400AndStoreNothing) {
  server_->stop();
  ApiSettings s = loopback();
  s.read_timeout = 500ms;  // how long a stalled body is waited for
  start(s);
  const std::string short_body =
      "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
      "Content-Length: 1000\r\n\r\n" +
      std::string(10, 'z');
  const std::string answer = raw_exchange(port_, short_body);
  EXPECT_NE(answer.find("HTTP/1.1 400"), std::string::npos) << answer;
  EXPECT_NE(answer.find("\"truncated_body\""), std::string::npos) << answer;

  const std::string bad_chunks =
      "POST /v1/blobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\nzz\r\n";
  const std::string answer2 = raw_exchange(port_, bad_chunks);
  EXPECT_NE(answer2.find("HTTP/1.1 400"), std::string::npos) << answer2;

  auto status = client().Get("/v1/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(body_json(status)["blobs_stored"], 0) << "a truncated upload stored something";
  auto metrics = client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("cairn_api_requests_total{route=\"put_file\",code=\"4xx\"} 1\n"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("cairn_api_requests_total{route=\"put_blob\",code=\"4xx\"} 1\n"),
            std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(spool_dir()));
}

TEST_F(ApiServerTest, NodeErrorsMapToStatusCodes) {
  const json file = upload(as_bytes("kept"));
  const std::string path = "/v1/files/" + file["id"].get<std::string>();
  struct Case {
    Errc errc;
    int status;
  };
  for (const Case& k : {Case{Errc::busy, 503}, Case{Errc::timeout, 504},
                        Case{Errc::too_many_losses, 503}, Case{Errc::corruption, 500},
                        Case{Errc::cancelled, 503}, Case{Errc::invalid_argument, 400}}) {
    node_.fail_with(Error{k.errc, "injected " + std::string(errc_name(k.errc))});
    auto r = client().Get(path.c_str());
    expect_error(r, k.status, std::string(errc_name(k.errc)), "injected");
    if (k.status == 503) {
      EXPECT_TRUE(r->has_header("Retry-After"));
    }
    expect_error(client().Post("/v1/files", "abc", "application/octet-stream"), k.status,
                 std::string(errc_name(k.errc)));
  }
  node_.fail_with(std::nullopt);
}

// The lines of a streamed upload answer, each parsed.
std::vector<json> ndjson_lines(const std::string& body) {
  std::vector<json> out;
  size_t at = 0;
  for (size_t nl; (nl = body.find('\n', at)) != std::string::npos; at = nl + 1) {
    out.push_back(json::parse(body.substr(at, nl - at), nullptr, /*allow_exceptions=*/false));
  }
  EXPECT_EQ(at, body.size()) << "the stream ends with a newline";
  return out;
}

TEST_F(ApiServerTest, AnUploadAskingForNdjsonStreamsItsPhasesThenTheSameAnswer) {
  auto rng = cairn::test::seeded_rng(41);
  const Bytes content = cairn::test::random_bytes(rng, 2 * 131072 + 5);
  const json plain = upload(content);  // the unchanged answer: 201, one JSON object
  auto r = client().Post("/v1/files", {{"Accept", "application/x-ndjson"}}, as_string(content),
                         "application/octet-stream");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/x-ndjson");
  const auto lines = ndjson_lines(r->body);
  ASSERT_EQ(lines.size(), 4u) << r->body;
  EXPECT_EQ(lines[0], (json{{"event", "received"}, {"bytes", content.size()}}));
  EXPECT_EQ(lines[1].value("event", ""), "replicating") << lines[1];
  EXPECT_EQ(lines[1]["registered"], 4);
  EXPECT_EQ(lines[1]["blobs"], 4);
  EXPECT_EQ(lines[2].value("event", ""), "acknowledged") << lines[2];
  EXPECT_EQ(lines[2]["acknowledged"], 4);
  EXPECT_EQ(lines[2]["confirmed"], 1);
  EXPECT_EQ(lines[3], plain) << "the last line is the object a plain upload answers";

  // A failure is the last line, with the status the plain upload would get.
  node_.fail_with(Error{Errc::timeout, "injected timeout"});
  r = client().Post("/v1/files", {{"Accept", "application/x-ndjson"}}, "abc",
                    "application/octet-stream");
  node_.fail_with(std::nullopt);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const auto failed = ndjson_lines(r->body);
  ASSERT_EQ(failed.size(), 2u) << r->body;
  EXPECT_EQ(failed[0].value("event", ""), "received");
  EXPECT_EQ(failed[1].value("error", ""), "timeout");
  EXPECT_EQ(failed[1].value("status", 0), 504);
  EXPECT_NE(failed[1].value("message", "").find("injected"), std::string::npos);
  // Refusals before the body is in keep their status and JSON error.
  expect_error(client().Post("/v1/files?min_replicas=0", {{"Accept", "application/x-ndjson"}}, "x",
                             "application/octet-stream"),
               400, "invalid_argument");
}

TEST_F(ApiServerTest, AReadFailingMidStreamCutsTheBodyShort) {
  auto rng = cairn::test::seeded_rng(5);
  const Bytes content = cairn::test::random_bytes(rng, 400000);
  const std::string id = upload(content)["id"];
  node_.fail_reads_after(200000);
  auto r = client().Get(("/v1/files/" + id).c_str());
  // The status line went out before the failure: the client must see an
  // incomplete body, never a complete-looking wrong one.
  if (r) {
    EXPECT_LT(r->body.size(), content.size());
  } else {
    EXPECT_NE(r.error(), httplib::Error::Success);
  }
  node_.fail_reads_after(std::nullopt);
  auto again = client().Get(("/v1/files/" + id).c_str());
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->body == as_string(content));
  auto metrics = client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("cairn_api_downloads_aborted_total 1\n"), std::string::npos)
      << metrics->body;
}

TEST_F(ApiServerTest, StatBlobStatusNodeStatusAndMetrics) {
  auto rng = cairn::test::seeded_rng(6);
  const Bytes content = cairn::test::random_bytes(rng, 200000);
  // One keep-alive connection for every request: a request is counted once
  // its response is written, before the connection reads the next one.
  auto c = client();
  c.set_keep_alive(true);
  auto posted = c.Post("/v1/files", as_string(content), "application/octet-stream");
  ASSERT_TRUE(posted);
  ASSERT_EQ(posted->status, 201);
  const json put = body_json(posted);
  const std::string id = put["id"];

  auto stat = c.Get(("/v1/stat/" + id).c_str());
  ASSERT_TRUE(stat);
  ASSERT_EQ(stat->status, 200) << stat->body;
  const json s = body_json(stat);
  EXPECT_EQ(s["kind"], "file");
  EXPECT_EQ(s["size"], 200000);
  EXPECT_EQ(s["data_blobs"], 2);
  EXPECT_EQ(s["sha256"], put["sha256"]);
  EXPECT_EQ(s["uri"], "cairn://" + id);

  auto bs = c.Get(("/v1/blobs/" + id + "/status").c_str());
  ASSERT_TRUE(bs);
  ASSERT_EQ(bs->status, 200) << bs->body;
  const json b = body_json(bs);
  EXPECT_EQ(b["index"], 2);  // two data blobs first, then the manifest
  EXPECT_EQ(b["shard"], 0);
  EXPECT_EQ(b["replicas"], 1);
  EXPECT_EQ(b["holders"][0]["node"], node_.id().hex());
  EXPECT_EQ(b["holders"][0]["local"], true);

  auto st = c.Get("/v1/status");
  ASSERT_TRUE(st);
  ASSERT_EQ(st->status, 200);
  const json n = body_json(st);
  EXPECT_EQ(n["id"], node_.id().hex());
  EXPECT_EQ(n["blobs_stored"], 3);
  EXPECT_EQ(n["chain"]["blob_count"], 3);
  EXPECT_EQ(n["shards"], json::array({0}));
  EXPECT_EQ(n["sync"][0]["held"], 3);

  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(m->body.find("cairn_api_requests_total{route=\"put_file\",code=\"2xx\"} 1\n"),
            std::string::npos)
      << m->body;
  EXPECT_NE(m->body.find("cairn_api_requests_total{route=\"stat\",code=\"2xx\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m->body.find("cairn_api_upload_bytes_total 200000\n"), std::string::npos);
  EXPECT_NE(m->body.find("cairn_api_request_duration_seconds_count{route=\"put_file\"} 1\n"),
            std::string::npos);
}

TEST_F(ApiServerTest, ManyConcurrentClientsAreServedByTheBoundedPool) {
  server_->stop();
  ApiSettings s = loopback();
  s.threads = 2;
  s.max_pending_connections = 2;
  start(s);
  const std::string id = upload(as_bytes("shared"))["id"];
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 12; ++i) {
    clients.emplace_back([&] {
      httplib::Client c("127.0.0.1", port_);
      c.set_keep_alive(false);
      auto r = c.Get(("/v1/files/" + id).c_str());
      if (r && r->status == 200 && r->body == "shared") ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 12);
}

// ---- the token rule ----

TEST(ApiServerToken, BeyondLoopbackWithoutATokenIsRefused) {
  metrics::Registry registry;
  test::MemoryNode node(registry);
  cairn::test::TempDir tmp;
  ApiSettings s;
  s.listen = "0.0.0.0:0";
  auto r = start_api_server(node, s, registry, tmp / "spool");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().message.find("api.token"), std::string::npos) << r.error().message;

  s.listen = "[::]:0";
  EXPECT_FALSE(start_api_server(node, s, registry, tmp / "spool"));
  s.listen = "no-port";
  auto bad = start_api_server(node, s, registry, tmp / "spool");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("expected host:port"), std::string::npos);
}

TEST(ApiServerListen, APortInUseIsRefused) {
  metrics::Registry registry;
  test::MemoryNode node(registry);
  cairn::test::TempDir tmp;
  ApiSettings s;
  s.listen = "127.0.0.1:" + std::to_string(cairn::test::free_port());
  auto first = start_api_server(node, s, registry, tmp / "spool");
  ASSERT_TRUE(first) << first.error().to_string();
  auto second = start_api_server(node, s, registry, tmp / "spool");
  ASSERT_FALSE(second) << "two servers share " << s.listen;
  EXPECT_EQ(second.error().code, Errc::io_error);
  EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
}

TEST(ApiServerToken, LoopbackHostsAreRecognised) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(is_loopback_host(h)) << h;
  }
  for (const char* h :
       {"0.0.0.0", "::", "10.0.0.1", "192.168.1.1", "example.com", "::ffff:10.0.0.1", ""}) {
    EXPECT_FALSE(is_loopback_host(h)) << h;
  }
}

TEST_F(ApiServerTest, WithATokenUploadsNeedItAndReadsDoNot) {
  server_->stop();
  ApiSettings s = loopback();  // a token set on loopback is enforced too
  s.token = "s3cret-token";
  start(s);
  auto c = client();
  auto none = c.Post("/v1/files", "data", "application/octet-stream");
  expect_error(none, 401, "unauthorized", "Authorization");
  EXPECT_EQ(none->get_header_value("WWW-Authenticate"), "Bearer realm=\"cairn\"");
  expect_error(
      c.Post("/v1/files", {{"Authorization", "Bearer wrong"}}, "data", "application/octet-stream"),
      401, "unauthorized", "wrong");
  expect_error(
      c.Post("/v1/blobs", {{"Authorization", "Basic abc"}}, "data", "application/octet-stream"),
      401, "unauthorized", "Bearer");
  // A large body sent without waiting still gets the 401, not a reset.
  expect_error(client().Post("/v1/files", std::string(8 << 20, 'q'), "application/octet-stream"),
               401, "unauthorized");

  auto good = client().Post("/v1/files", {{"Authorization", "Bearer s3cret-token"}}, "data",
                            "application/octet-stream");
  ASSERT_TRUE(good);
  ASSERT_EQ(good->status, 201) << good->body;
  const std::string id = body_json(good)["id"];
  auto read = client().Get(("/v1/files/" + id).c_str());
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200);
  EXPECT_EQ(read->body, "data");
}

TEST_F(ApiServerTest, DoomedUploadsAreRefusedBeforeTheirBodyIsSent) {
  server_->stop();
  ApiSettings s = loopback();
  s.token = "t0k3n";
  s.max_upload_bytes = 1 << 20;
  start(s);
  const auto ask = [&](const std::string& headers) {
    return raw_exchange(
        port_, "POST /v1/files HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n" + headers + "\r\n");
  };
  const std::string no_token = ask("Content-Length: 1000000000\r\n");
  EXPECT_EQ(no_token.rfind("HTTP/1.1 401", 0), 0u) << no_token;
  EXPECT_NE(no_token.find("\"unauthorized\""), std::string::npos) << no_token;
  const std::string too_big = ask("Authorization: Bearer t0k3n\r\nContent-Length: 1048577\r\n");
  EXPECT_EQ(too_big.rfind("HTTP/1.1 413", 0), 0u) << too_big;
  const std::string bad_query =
      raw_exchange(port_,
                   "POST /v1/blobs?min_replicas=x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                   "Authorization: Bearer t0k3n\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(bad_query.rfind("HTTP/1.1 400", 0), 0u) << bad_query;
  // An acceptable upload is told to go on, then stored.
  const std::string good = raw_exchange(
      port_,
      "POST /v1/files HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n"
      "Authorization: Bearer t0k3n\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(good.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201", 0), 0u) << good;
}

TEST_F(ApiServerTest, TheTokenCanComeFromAPrivateFile) {
  server_->stop();
  const auto file = tmp_ / "api.token";
  cairn::test::write_file(file, as_bytes("  from-a-file \n"));
  ::chmod(file.c_str(), 0644);
  ApiSettings s = loopback();
  s.token_file = file.string();
  auto refused = start_api_server(node_, s, registry_, spool_dir());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("chmod 600"), std::string::npos)
      << refused.error().message;

  ::chmod(file.c_str(), 0600);
  start(s);
  auto c = client();
  expect_error(c.Post("/v1/files", "x", "application/octet-stream"), 401, "unauthorized");
  auto good = c.Post("/v1/files", {{"Authorization", "Bearer from-a-file"}}, "x",
                     "application/octet-stream");
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 201) << good->body;
}

TEST_F(ApiServerTest, StatusReportsEveryNetworkParameter) {
  const json status = body_json(client().Get("/v1/status"));
  const json& params = status["chain"]["params"];
  const erasure::NetworkParams& want = node_.codec().params();
  // mask_checks went missing once: a client could not rebuild the network's
  // parameters from the status.
  EXPECT_EQ(params.value("mask_checks", uint32_t{0}), want.mask_checks) << params.dump();
  auto parsed = contracts::params_from_json(params);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(*parsed, want);
}

TEST_F(ApiServerTest, RootServesTheHtmlStatusPageAndAnswersHead) {
  auto c = client();
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  const json status = body_json(c.Get("/v1/status"));
  EXPECT_NE(page->body.find(status["id"].get<std::string>()), std::string::npos);
  auto head = c.Head("/");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
}

}  // namespace
}  // namespace cairn::node
