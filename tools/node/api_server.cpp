#include "node/api_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <variant>
#include <vector>

#include "cairn/contracts/http.hpp"
#include "cairn/core/log.hpp"
#include "cairn/p2p/tcp_address.hpp"
#include "node/api_json.hpp"
#include "node/http_range.hpp"
#include "node/status_page.hpp"

namespace cairn::node {
namespace {

using json = nlohmann::json;
using httplib::ContentReader;
using httplib::Request;
using httplib::Response;

constexpr const char* kJson = "application/json";
constexpr const char* kOctets = "application/octet-stream";
// A file upload asking for this media type in Accept gets its progress as
// newline-delimited JSON events before the answer (docs/http-api.md).
constexpr const char* kNdjson = "application/x-ndjson";
constexpr const char* kApiLog = "api";

// An early rejection of an upload (bad token, oversize, wrong media type)
// reads and discards the body for at most this long before closing, so a
// client that sends the body without waiting (no Expect: 100-continue)
// reads the answer instead of a connection reset. Bounds the thread time a
// rejected client can hold beyond the read timeout.
constexpr auto kRejectDrain = std::chrono::seconds(2);

// An idle keep-alive connection is closed after this long. Short, because
// stopping the server waits for idle connections (httplib notices a stop
// only between requests) and clients of this API (the CLI, scrapers)
// reconnect cheaply.
constexpr uint32_t kIdleTimeoutMs = 2000;

// Spool writes are batched into this many bytes (httplib hands the body
// over in 4 KiB reads).
constexpr size_t kSpoolBuffer = size_t{1} << 20;

// A failure answered with a JSON body {"error": code, "message": ...}.
struct HttpError {
  int status = 500;
  std::string code;  // errc name, or an HTTP-level code (docs/http-api.md "Errors")
  std::string message;
};

int status_for(Errc c) {
  switch (c) {
    case Errc::invalid_argument:
      return 400;
    case Errc::not_found:
      return 404;
    case Errc::conflict:
      return 409;
    case Errc::busy:
    case Errc::cancelled:
    case Errc::too_many_losses:
      return 503;
    case Errc::timeout:
      return 504;
    case Errc::unsupported:
      return 501;
    default:
      return 500;  // corruption, verification_failed, io_error, internal
  }
}

HttpError from_error(const Error& e) {
  return HttpError{status_for(e.code), std::string(errc_name(e.code)), e.message};
}

void send_error(Response& res, const HttpError& e) {
  res.status = e.status;
  res.set_content(json{{"error", e.code}, {"message", e.message}}.dump() + "\n", kJson);
  if (e.status == 503) res.set_header("Retry-After", "1");
}

void send_json(Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", kJson);
}

// 201 with encode(value) and Location: <base><id>, or the error.
template <class T, class Encode>
void created(Response& res, const Result<T>& r, const char* base, Encode encode) {
  if (!r) {
    send_error(res, from_error(r.error()));
    return;
  }
  res.set_header("Location", base + r->id.hex());
  send_json(res, 201, encode(*r));
}

// 200 with encode(value), or the error.
template <class T, class Encode>
void answer(Response& res, const Result<T>& r, Encode encode) {
  if (!r) {
    send_error(res, from_error(r.error()));
    return;
  }
  send_json(res, 200, encode(*r));
}

// httplib (0.11) applies a request's Range itself to every response: it
// slices error bodies and answers out-of-range requests with overlong
// bodies. The API decides ranges itself (http_range.hpp), so the parsed
// ranges are dropped before httplib looks at them. httplib owns the Request
// as a non-const object and hands handlers a const reference, so this
// const_cast is defined behaviour.
void drop_httplib_ranges(const Request& req) { const_cast<Request&>(req).ranges.clear(); }

// Counts a request in flight for the scope.
class InFlight {
 public:
  explicit InFlight(metrics::Gauge& g) : g_(g) { g_.add(1); }
  ~InFlight() { g_.sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  metrics::Gauge& g_;
};

// A temporary file in the spool dir holding one upload body; removed on
// destruction. Not fsync'ed: it only has to outlive the put_file call.
class SpoolFile {
 public:
  static Result<SpoolFile> create(const std::filesystem::path& dir) {
    std::string pattern = (dir / "upload-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0) {
      return make_error(Errc::io_error, "creating a spool file in " + dir.string() + ": " + std::strerror(errno));
    }
    return SpoolFile(fd, pattern);
  }
  SpoolFile(SpoolFile&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)), buffer_(std::move(o.buffer_)) {
    o.path_.clear();
  }
  SpoolFile& operator=(SpoolFile&&) = delete;
  ~SpoolFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  // false with errno set when the disk refuses the bytes.
  bool write(const char* data, size_t n) {
    if (buffer_.size() + n > kSpoolBuffer && !flush()) return false;
    if (n >= kSpoolBuffer) return write_all(data, n);
    buffer_.insert(buffer_.end(), data, data + n);
    return true;
  }
  bool finish() {
    if (!flush()) return false;
    const int rc = ::close(std::exchange(fd_, -1));
    return rc == 0;
  }
  const std::string& path() const { return path_; }

 private:
  SpoolFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) { buffer_.reserve(kSpoolBuffer); }
  bool flush() {
    const bool ok = write_all(buffer_.data(), buffer_.size());
    buffer_.clear();
    return ok;
  }
  bool write_all(const char* data, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      data += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  int fd_ = -1;
  std::string path_;
  std::vector<char> buffer_;
};

HttpError spool_error(const std::string& what) {
  const int err = errno;
  // 507: the node's disk is full, not the request's fault.
  return HttpError{err == ENOSPC ? 507 : 500, "io_error", "spooling the upload: " + what + ": " + std::strerror(err)};
}

// The API's routes: the pattern, the methods it answers (for 405 and Allow)
// and the label its requests are counted under in cairn_api_requests_total.
struct Route {
  const char* pattern;
  const char* allow;
  const char* name;
};
constexpr Route kRoutes[] = {
    {"/", "GET, HEAD", "index"},
    {"/v1/files", "POST", "put_file"},
    {"/v1/files/([^/]+)", "GET, HEAD", "get_file"},
    {"/v1/blobs", "POST", "put_blob"},
    {"/v1/blobs/([^/]+)", "GET, HEAD", "get_blob"},
    {"/v1/blobs/([^/]+)/status", "GET, HEAD", "blob_status"},
    {"/v1/stat/([^/]+)", "GET, HEAD", "stat"},
    {"/v1/status", "GET, HEAD", "status"},
    {"/v1/proofs/latest", "GET, HEAD", "proof_latest"},
    {"/v1/proofs/([0-9]+)/([0-9]+)", "GET, HEAD", "proof"},
    {"/metrics", "GET, HEAD", "metrics"},
};
constexpr const char* kOtherRoute = "other";
constexpr const char* kStatusClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

class HttpApiServer;

}  // namespace

bool is_loopback_host(std::string_view host) {
  if (host == "localhost") return true;
  const std::string h(host);
  in_addr v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

namespace {

class HttpApiServer final : public ApiServer {
 public:
  HttpApiServer(NodeService& service, const ApiSettings& settings, metrics::Registry& registry,
                std::filesystem::path spool_dir)
      : service_(service), settings_(settings), spool_dir_(std::move(spool_dir)) {
    for (const Route& r : kRoutes) routes_.push_back(CompiledRoute{std::regex(r.pattern), &r});
    register_metrics(registry);
  }
  ~HttpApiServer() override { stop(); }

  Status start(const std::string& host, uint16_t port);
  std::string address() const override {
    const std::string& h = listener_->host();
    const bool v6 = h.find(':') != std::string::npos;
    return (v6 ? "[" + h + "]" : h) + ":" + std::to_string(listener_->port());
  }
  void stop() override {
    if (listener_) listener_->stop();
  }

 private:
  struct CompiledRoute {
    std::regex re;
    const Route* route;
  };
  struct RouteMetrics {
    std::vector<metrics::Counter*> by_class;  // kStatusClasses order
    metrics::Histogram* duration = nullptr;
  };

  void register_metrics(metrics::Registry& registry);
  void install_routes();
  const Route* route_of(const std::string& path) const;
  void count(const Request& req, const Response& res);

  enum class UploadKind { file, blob };
  struct Upload {
    PutOptions options;
    uint64_t limit = 0;  // body bytes
    const char* limit_name = "";
  };
  // 401 when a token is configured and the request does not carry it.
  std::optional<HttpError> token_refusal(const Request& req) const;
  Result<PutOptions> put_options(const Request& req) const;
  // The network's blob_size, asked of the node once.
  Result<uint64_t> blob_size();
  // Why an upload must be refused before its body is read (token, query,
  // media type, declared length), if it must; fills `upload` otherwise.
  std::optional<HttpError> upload_refusal(const Request& req, UploadKind kind, Upload& upload);
  // The upload's admission, or nullopt after refusing it.
  std::optional<Upload> admit(const Request& req, Response& res, const ContentReader& reader, UploadKind kind);
  // Answers `e` and closes the connection after it.
  static void refuse(Response& res, const HttpError& e);
  // httplib's Expect: 100-continue hook: refuses a doomed upload before the
  // client sends its body; 100 lets it proceed.
  int expect_continue(const Request& req, Response& res);
  // Streams the body (at most upload.limit bytes) to `write`, which returns
  // false with errno set when a local write fails; false after answering
  // 400 (truncated), 413 or 500/507.
  using BodyWriter = std::function<bool(const char*, size_t)>;
  bool receive_body(const Request& req, Response& res, const ContentReader& reader, const Upload& upload,
                    const BodyWriter& write);

  void put_file(const Request& req, Response& res, const ContentReader& reader);
  // Answers 200 with a chunked application/x-ndjson body: "received", the
  // upload's phases, then the object (or error) put_file would answer. The
  // upload runs in the content provider, on this connection's thread.
  void stream_put_file(Response& res, SpoolFile spool, Upload upload, uint64_t received);
  void put_blob(const Request& req, Response& res, const ContentReader& reader);
  void get_file(const Request& req, Response& res);
  void get_blob(const Request& req, Response& res);
  void stat(const Request& req, Response& res);
  void blob_status(const Request& req, Response& res);
  void node_status(Response& res);
  void status_page(Response& res);
  void proof(const Request& req, Response& res);
  void proof_latest(const Request& req, Response& res);
  void wrong_route(const Request& req, Response& res);

  std::optional<BlobId> path_id(const Request& req, Response& res) const;
  // Answers a download of `size` bytes honouring Range; `read` streams a
  // range into a sink (NodeService::read for files, a buffer for blobs).
  using RangeReader = std::function<Status(const ReadRange&, const ByteSink&)>;
  void serve_bytes(const Request& req, Response& res, const BlobId& id, uint64_t size, RangeReader read);

  NodeService& service_;
  const ApiSettings settings_;
  const std::filesystem::path spool_dir_;
  std::vector<CompiledRoute> routes_;
  httplib::Server http_;
  std::unique_ptr<contracts::HttpListener> listener_;

  std::vector<RouteMetrics> route_metrics_;  // kRoutes order, then "other"
  metrics::Counter* upload_bytes_ = nullptr;
  metrics::Counter* download_bytes_ = nullptr;
  metrics::Counter* aborted_downloads_ = nullptr;
  metrics::Gauge* uploads_in_flight_ = nullptr;
  metrics::Histogram* receive_seconds_ = nullptr;

  std::mutex blob_size_mu_;
  uint64_t blob_size_ = 0;  // 0 until known
};

void HttpApiServer::register_metrics(metrics::Registry& registry) {
  const auto bounds = metrics::Histogram::latency_buckets();
  auto add = [&](const char* name) {
    RouteMetrics m;
    for (const char* cls : kStatusClasses) {
      m.by_class.push_back(&registry.counter("cairn_api_requests_total",
                                             "HTTP API requests answered, by route and status class",
                                             {{"route", name}, {"code", cls}}));
    }
    m.duration =
        &registry.histogram("cairn_api_request_duration_seconds",
                            "HTTP API request time from headers read to response written", bounds, {{"route", name}});
    route_metrics_.push_back(std::move(m));
  };
  for (const Route& r : kRoutes) add(r.name);
  add(kOtherRoute);
  upload_bytes_ = &registry.counter("cairn_api_upload_bytes_total", "Upload body bytes received");
  download_bytes_ = &registry.counter("cairn_api_download_bytes_total", "Download body bytes sent");
  aborted_downloads_ =
      &registry.counter("cairn_api_downloads_aborted_total",
                        "Downloads cut short after their headers were sent (read failure or client gone)");
  uploads_in_flight_ = &registry.gauge("cairn_api_uploads_in_flight", "Uploads being received or stored");
  receive_seconds_ = &registry.histogram(
      "cairn_api_upload_receive_seconds",
      "Time to receive (and spool) an upload body; the rest of an upload's request time is the node storing it",
      bounds);
}

const Route* HttpApiServer::route_of(const std::string& path) const {
  for (const auto& r : routes_) {
    if (std::regex_match(path, r.re)) return r.route;
  }
  return nullptr;
}

// Request start time of the request this thread serves (connection threads
// serve one request at a time); TimePoint{} when unknown.
thread_local TimePoint t_request_start{};

void HttpApiServer::count(const Request& req, const Response& res) {
  const Route* route = route_of(req.path);
  size_t i = std::size(kRoutes);
  if (route) i = static_cast<size_t>(route - kRoutes);
  RouteMetrics& m = route_metrics_[i];
  const int cls = res.status / 100;
  if (cls >= 1 && cls <= 5) m.by_class[static_cast<size_t>(cls - 1)]->inc();
  if (t_request_start != TimePoint{}) {
    m.duration->observe(std::chrono::duration<double>(service_.clock().now() - t_request_start).count());
    t_request_start = TimePoint{};
  }
}

std::optional<BlobId> HttpApiServer::path_id(const Request& req, Response& res) const {
  const std::string text = req.matches[1].str();
  auto id = BlobId::from_hex(text);
  if (!id) {
    send_error(res, HttpError{400, "invalid_argument",
                              "malformed id '" + text.substr(0, 80) + "': expected 64 hex digits (a file or blob id)"});
  }
  return id;
}

std::optional<HttpError> HttpApiServer::token_refusal(const Request& req) const {
  if (settings_.token.empty()) return std::nullopt;
  const std::string header = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.empty()) {
    return HttpError{401, "unauthorized", "uploads need 'Authorization: Bearer <token>' (the node's api.token)"};
  }
  if (header.size() <= kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0) {
    return HttpError{401, "unauthorized", "the Authorization header must be 'Bearer <token>'"};
  }
  const std::string_view given = std::string_view(header).substr(kBearer.size());
  const std::string& want = settings_.token;
  if (given.size() == want.size() && sodium_memcmp(given.data(), want.data(), want.size()) == 0) {
    return std::nullopt;
  }
  return HttpError{401, "unauthorized", "wrong API token"};
}

Result<uint64_t> HttpApiServer::blob_size() {
  std::lock_guard lock(blob_size_mu_);
  if (blob_size_ == 0) {
    auto status = service_.status();
    if (!status) return tl::unexpected(status.error());
    blob_size_ = status->chain.params.blob_size;
  }
  return blob_size_;
}

Result<PutOptions> HttpApiServer::put_options(const Request& req) const {
  PutOptions options;
  if (req.has_param("compress")) {
    const std::string v = req.get_param_value("compress");
    if (v == "auto") {
      options.compress = erasure::FileOptions::Compress::automatic;
    } else if (v == "never") {
      options.compress = erasure::FileOptions::Compress::never;
    } else if (v == "always") {
      options.compress = erasure::FileOptions::Compress::always;
    } else {
      return make_error(Errc::invalid_argument, "compress='" + v + "': expected auto, never or always");
    }
  }
  if (req.has_param("min_replicas")) {
    const std::string v = req.get_param_value("min_replicas");
    uint32_t n = 0;
    bool ok = !v.empty() && v.size() <= 9;
    for (char c : v) {
      if (c < '0' || c > '9') ok = false;
      if (ok) n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    if (!ok || n == 0) {
      return make_error(Errc::invalid_argument, "min_replicas='" + v + "': expected a positive integer");
    }
    options.min_replicas = n;
  }
  return options;
}

std::optional<HttpError> HttpApiServer::upload_refusal(const Request& req, UploadKind kind, Upload& upload) {
  if (auto e = token_refusal(req)) return e;
  auto options = put_options(req);
  if (!options) return from_error(options.error());
  upload.options = std::move(*options);
  if (kind == UploadKind::file) {
    upload.limit = settings_.max_upload_bytes;
    upload.limit_name = "api.max_upload_bytes";
  } else {
    auto limit = blob_size();
    if (!limit) return from_error(limit.error());
    upload.limit = *limit;
    upload.limit_name = "the network's blob_size";
  }
  if (req.is_multipart_form_data()) {
    return HttpError{415, "unsupported_media_type",
                     "send the content itself as the body (application/octet-stream), not a multipart form"};
  }
  if (req.has_header("Content-Length")) {
    const auto declared = req.get_header_value<uint64_t>("Content-Length");
    if (declared > upload.limit) {
      return HttpError{413, "payload_too_large",
                       "Content-Length " + std::to_string(declared) + " exceeds the limit of " +
                           std::to_string(upload.limit) + " bytes (" + upload.limit_name + ")"};
    }
  }
  return std::nullopt;
}

void HttpApiServer::refuse(Response& res, const HttpError& e) {
  if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer realm=\"cairn\"");
  send_error(res, e);
  contracts::close_after(res);
}

int HttpApiServer::expect_continue(const Request& req, Response& res) {
  t_request_start = service_.clock().now();
  drop_httplib_ranges(req);
  if (req.method != "POST") return 100;
  std::optional<UploadKind> kind;
  if (req.path == "/v1/files") kind = UploadKind::file;
  if (req.path == "/v1/blobs") kind = UploadKind::blob;
  if (!kind) return 100;  // routing answers (405 / 404) and closes
  Upload upload;
  if (auto e = upload_refusal(req, *kind, upload)) {
    refuse(res, *e);
    return e->status;
  }
  return 100;
}

bool HttpApiServer::receive_body(const Request& req, Response& res, const ContentReader& reader, const Upload& upload,
                                 const BodyWriter& write) {
  metrics::ScopedTimer timer(*receive_seconds_, service_.clock());
  int write_errno = 0;
  const auto r = contracts::receive_body(
      service_.clock(), req, reader, upload.limit,
      [&](const char* data, size_t n) {
        if (!write(data, n)) {
          write_errno = errno;
          return false;
        }
        upload_bytes_->inc(n);
        return true;
      },
      kRejectDrain);
  if (r.complete) return true;
  if (r.sink_failed) {
    errno = write_errno;
    refuse(res, spool_error("writing the body"));
  } else if (r.too_large) {
    refuse(res, HttpError{413, "payload_too_large",
                          "the body exceeds the limit of " + std::to_string(upload.limit) + " bytes (" +
                              upload.limit_name + ")"});
  } else {
    refuse(res, HttpError{400, "truncated_body",
                          "the request body ended early or was malformed (received " + std::to_string(r.received) +
                              " bytes)"});
  }
  return false;
}

std::optional<HttpApiServer::Upload> HttpApiServer::admit(const Request& req, Response& res,
                                                          const ContentReader& reader, UploadKind kind) {
  Upload upload;
  if (auto e = upload_refusal(req, kind, upload)) {
    refuse(res, *e);
    contracts::discard_body(service_.clock(), req, reader, kRejectDrain);
    return std::nullopt;
  }
  return upload;
}

void HttpApiServer::put_file(const Request& req, Response& res, const ContentReader& reader) {
  auto upload = admit(req, res, reader, UploadKind::file);
  if (!upload) return;
  InFlight in_flight(*uploads_in_flight_);
  auto spool = SpoolFile::create(spool_dir_);
  if (!spool) {
    refuse(res, spool_error("creating a file in " + spool_dir_.string()));
    contracts::discard_body(service_.clock(), req, reader, kRejectDrain);
    return;
  }
  const auto write = [&](const char* data, size_t n) { return spool->write(data, n); };
  if (!receive_body(req, res, reader, *upload, write)) return;
  if (!spool->finish()) {
    send_error(res, spool_error("writing " + spool->path()));
    return;
  }
  if (req.get_header_value("Accept").find(kNdjson) != std::string::npos) {
    std::error_code ec;
    const uint64_t received = std::filesystem::file_size(spool->path(), ec);
    stream_put_file(res, std::move(*spool), std::move(*upload), ec ? 0 : received);
    return;
  }
  created(res, service_.put_file(std::filesystem::path(spool->path()), upload->options), "/v1/files/",
          api_json::put_file);
}

void HttpApiServer::stream_put_file(Response& res, SpoolFile spool, Upload upload, uint64_t received) {
  // What the provider needs after this handler returned: the spooled body
  // (removed when the provider is dropped) and the in-flight count.
  struct Stream {
    Stream(SpoolFile s, Upload u, uint64_t r, metrics::Gauge& g)
        : spool(std::move(s)), upload(std::move(u)), received(r), in_flight(g) {}
    SpoolFile spool;
    Upload upload;
    uint64_t received;
    InFlight in_flight;
  };
  auto stream = std::make_shared<Stream>(std::move(spool), std::move(upload), received, *uploads_in_flight_);
  res.status = 200;
  res.set_header("Cache-Control", "no-store");
  res.set_chunked_content_provider(kNdjson, [this, stream](size_t, httplib::DataSink& sink) {
    // Each event goes straight to the socket (no queue: the uploader asks
    // for the latest phase when it is ready for one). A client gone
    // mid-stream stops the events, not the upload: its blobs are
    // acknowledged or stay pending exactly as without a stream.
    bool client_gone = false;
    const auto send = [&](const json& event) {
      if (client_gone) return;
      const std::string line = event.dump() + "\n";
      if (!sink.write(line.data(), line.size())) client_gone = true;
    };
    send(json{{"event", "received"}, {"bytes", stream->received}});
    PutOptions options = stream->upload.options;
    options.phases = [&](const UploadPhase& p) { send(api_json::upload_phase(p)); };
    auto put = service_.put_file(std::filesystem::path(stream->spool.path()), options);
    if (put) {
      send(api_json::put_file(*put));
    } else {
      const HttpError e = from_error(put.error());
      send(json{{"error", e.code}, {"message", e.message}, {"status", e.status}});
    }
    if (client_gone) {
      CAIRN_LOG(log::Level::info, kApiLog,
                "an upload's client left before its progress stream ended; the upload "
                    << (put ? "was acknowledged as " + put->id.hex() : "failed: " + put.error().to_string()));
      return false;  // httplib closes the connection
    }
    sink.done();
    return true;
  });
}

void HttpApiServer::put_blob(const Request& req, Response& res, const ContentReader& reader) {
  auto upload = admit(req, res, reader, UploadKind::blob);
  if (!upload) return;
  InFlight in_flight(*uploads_in_flight_);
  Bytes payload;  // at most blob_size: held in memory
  const auto append = [&](const char* data, size_t n) {
    payload.insert(payload.end(), reinterpret_cast<const uint8_t*>(data), reinterpret_cast<const uint8_t*>(data) + n);
    return true;
  };
  if (!receive_body(req, res, reader, *upload, append)) return;
  created(res, service_.put_blob(payload, upload->options), "/v1/blobs/", api_json::put_blob);
}

void HttpApiServer::serve_bytes(const Request& req, Response& res, const BlobId& id, uint64_t size, RangeReader read) {
  res.set_header("Accept-Ranges", "bytes");
  // Content-addressed: the bytes behind an id never change.
  res.set_header("ETag", "\"" + id.hex() + "\"");
  res.set_header("Cache-Control", "public, max-age=31536000, immutable");
  const http::RangeDecision decision = http::decide_range(req.get_header_value("Range"), size);
  if (const auto* bad = std::get_if<http::Unsatisfiable>(&decision)) {
    res.set_header("Content-Range", http::unsatisfied_content_range(size));
    send_error(res, HttpError{416, "range_not_satisfiable", bad->reason});
    return;
  }
  ReadRange range{0, size};
  res.status = 200;
  if (const auto* r = std::get_if<http::ByteRange>(&decision)) {
    range = ReadRange{r->first, r->length()};
    res.status = 206;
    res.set_header("Content-Range", http::content_range(*r, size));
  }
  const uint64_t length = *range.length;
  if (length == 0) {
    res.set_content("", kOctets);
    return;
  }
  // One provider call streams the whole range; httplib calls again only
  // if bytes are missing, which after a failed read means "abort".
  res.set_content_provider(
      length, kOctets,
      [this, id, range, length, read = std::move(read)](size_t offset, size_t, httplib::DataSink& sink) {
        if (offset != 0) return false;
        uint64_t sent = 0;
        auto st = read(range, [&](ByteSpan chunk) -> Status {
          if (!sink.write(reinterpret_cast<const char*>(chunk.data()), chunk.size())) {
            return make_error(Errc::cancelled, "the client stopped reading");
          }
          sent += chunk.size();
          download_bytes_->inc(chunk.size());
          return {};
        });
        if (st && sent == length) return true;
        aborted_downloads_->inc();
        if (!st) {
          CAIRN_LOG(log::Level::warn, kApiLog,
                    "download of " << id.hex() << " cut short after " << sent << " of " << length
                                   << " bytes: " << st.error().to_string());
        } else {
          CAIRN_LOG(log::Level::error, kApiLog,
                    "download of " << id.hex() << " produced " << sent << " bytes, " << length << " expected");
        }
        return false;  // httplib closes the connection: the client sees a short body
      });
}

void HttpApiServer::get_file(const Request& req, Response& res) {
  auto id = path_id(req, res);
  if (!id) return;
  auto info = service_.stat(*id);
  if (!info) {
    send_error(res, from_error(info.error()));
    return;
  }
  if (info->kind != ObjectKind::file) {
    send_error(res, HttpError{404, "not_found", id->hex() + " is a blob, not a file: GET /v1/blobs/" + id->hex()});
    return;
  }
  serve_bytes(req, res, *id, info->size,
              [this, id = *id](const ReadRange& r, const ByteSink& sink) { return service_.read(id, r, sink); });
}

void HttpApiServer::get_blob(const Request& req, Response& res) {
  auto id = path_id(req, res);
  if (!id) return;
  auto payload = service_.read_blob(*id);
  if (!payload) {
    send_error(res, from_error(payload.error()));
    return;
  }
  const uint64_t size = payload->size();
  auto shared = std::make_shared<const Bytes>(std::move(*payload));
  serve_bytes(req, res, *id, size, [shared](const ReadRange& r, const ByteSink& sink) {
    return sink(ByteSpan(*shared).subspan(r.offset, *r.length));
  });
}

void HttpApiServer::stat(const Request& req, Response& res) {
  if (auto id = path_id(req, res)) answer(res, service_.stat(*id), api_json::object_info);
}

void HttpApiServer::blob_status(const Request& req, Response& res) {
  if (auto id = path_id(req, res)) answer(res, service_.blob_status(*id), api_json::blob_status);
}

void HttpApiServer::node_status(Response& res) { answer(res, service_.status(), api_json::node_status); }

// The HTML page is rendered from the same status() answer /v1/status
// encodes: no work beyond it per request. Errors answer as on every route.
void HttpApiServer::status_page(Response& res) {
  auto status = service_.status();
  if (!status) {
    send_error(res, from_error(status.error()));
    return;
  }
  const auto now =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  res.status = 200;
  res.set_header("Cache-Control", "no-store");
  res.set_content(render_status_page(*status, static_cast<uint64_t>(now.count())), "text/html; charset=utf-8");
}

namespace {

// A proof file: the bytes, what they prove in headers, and a file name.
void send_proof(Response& res, const Result<ProofFile>& proof) {
  if (!proof) {
    send_error(res, from_error(proof.error()));
    return;
  }
  res.status = 200;
  res.set_header("X-Cairn-Shard", std::to_string(proof->shard.value));
  res.set_header("X-Cairn-Epoch", std::to_string(proof->epoch.value));
  res.set_header("X-Cairn-Replicas", std::to_string(proof->replicas));
  res.set_header("Content-Disposition", "attachment; filename=\"cairn-proof-" + std::to_string(proof->shard.value) +
                                            "-" + std::to_string(proof->epoch.value) + ".rcp\"");
  res.set_content(std::string(reinterpret_cast<const char*>(proof->bytes.data()), proof->bytes.size()),
                  "application/octet-stream");
}

}  // namespace

void HttpApiServer::proof(const Request& req, Response& res) {
  const auto number = [&](size_t i, uint64_t max) -> std::optional<uint64_t> {
    const std::string text = req.matches[i].str();
    if (text.size() > 19) return std::nullopt;
    const uint64_t v = std::stoull(text);
    return v <= max ? std::optional<uint64_t>(v) : std::nullopt;
  };
  const auto shard = number(1, UINT32_MAX);
  const auto epoch = number(2, UINT64_MAX);
  if (!shard || !epoch) {
    send_error(res, HttpError{400, "invalid_argument", "shard or epoch out of range in " + req.path});
    return;
  }
  send_proof(res, service_.replica_proof(ShardId{static_cast<uint32_t>(*shard)}, Epoch{*epoch}));
}

void HttpApiServer::proof_latest(const Request& req, Response& res) {
  const std::string text = req.get_param_value("blob");
  auto id = BlobId::from_hex(text);
  if (!id) {
    send_error(res, HttpError{400, "invalid_argument",
                              "GET /v1/proofs/latest needs ?blob=<id>: a file or blob id of 64 hex digits"});
    return;
  }
  send_proof(res, service_.latest_proof(*id));
}

// Every method on every path the routes above did not take: 405 with Allow
// on a known path, 404 otherwise.
void HttpApiServer::wrong_route(const Request& req, Response& res) {
  if (const Route* route = route_of(req.path)) {
    res.set_header("Allow", route->allow);
    if (req.method == "OPTIONS") {
      res.status = 204;
      return;
    }
    send_error(res, HttpError{405, "method_not_allowed", req.method + " " + req.path + ": allowed " + route->allow});
    return;
  }
  send_error(res, HttpError{404, "not_found", "no endpoint " + req.path + " (see docs/http-api.md)"});
}

void HttpApiServer::install_routes() {
  http_.set_pre_routing_handler([this](const Request& req, Response&) {
    t_request_start = service_.clock().now();
    drop_httplib_ranges(req);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // httplib's own refusals (malformed request line or Range, URI too long):
  // give them the same JSON body as the API's errors.
  http_.set_error_handler(httplib::Server::HandlerWithResponse([](const Request& req, Response& res) {
    drop_httplib_ranges(req);
    if (!res.body.empty() || res.content_length_ > 0) return httplib::Server::HandlerResponse::Unhandled;
    std::string code = "http_" + std::to_string(res.status);
    std::string message = "the request was refused with HTTP " + std::to_string(res.status);
    if (res.status == 400) {
      code = "bad_request";
      message = "malformed HTTP request";
    } else if (res.status == 414) {
      code = "uri_too_long";
      message = "the request URI is too long";
    } else if (res.status == 416) {
      code = "range_not_satisfiable";
      message = "malformed Range '" + req.get_header_value("Range") +
                "': expected bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX";
    }
    res.set_content(json{{"error", code}, {"message", message}}.dump() + "\n", kJson);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http_.set_exception_handler([](const Request& req, Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    CAIRN_LOG(log::Level::error, kApiLog, req.method << " " << req.path << ": " << what);
    send_error(res, HttpError{500, "internal", "internal error: " + what});
  });
  http_.set_logger([this](const Request& req, const Response& res) { count(req, res); });
  http_.set_expect_100_continue_handler(
      [this](const Request& req, Response& res) { return expect_continue(req, res); });

  http_.Get("/", [this](const Request&, Response& res) { status_page(res); });
  http_.Post("/v1/files",
             [this](const Request& req, Response& res, const ContentReader& reader) { put_file(req, res, reader); });
  http_.Post("/v1/blobs",
             [this](const Request& req, Response& res, const ContentReader& reader) { put_blob(req, res, reader); });
  http_.Get("/v1/files/([^/]+)", [this](const Request& req, Response& res) { get_file(req, res); });
  http_.Get("/v1/blobs/([^/]+)", [this](const Request& req, Response& res) { get_blob(req, res); });
  http_.Get("/v1/blobs/([^/]+)/status", [this](const Request& req, Response& res) { blob_status(req, res); });
  http_.Get("/v1/stat/([^/]+)", [this](const Request& req, Response& res) { stat(req, res); });
  http_.Get("/v1/status", [this](const Request&, Response& res) { node_status(res); });
  http_.Get("/v1/proofs/latest", [this](const Request& req, Response& res) { proof_latest(req, res); });
  http_.Get("/v1/proofs/([0-9]+)/([0-9]+)", [this](const Request& req, Response& res) { proof(req, res); });
  http_.Get("/metrics", [this](const Request&, Response& res) {
    res.status = 200;
    res.set_content(service_.metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  });

  // Catch-alls. Methods with a body take a ContentReader so httplib does not
  // buffer the body of a request nobody wants; the connection is closed.
  auto refuse_body = [this](const Request& req, Response& res, const ContentReader&) {
    wrong_route(req, res);
    contracts::close_after(res);
  };
  auto wrong = [this](const Request& req, Response& res) { wrong_route(req, res); };
  http_.Get(".*", wrong);
  http_.Options(".*", wrong);
  http_.Post(".*", refuse_body);
  http_.Put(".*", refuse_body);
  http_.Patch(".*", refuse_body);
  http_.Delete(".*", refuse_body);
}

Status HttpApiServer::start(const std::string& host, uint16_t port) {
  install_routes();
  contracts::HttpListenerSettings listen;
  listen.host = host;
  listen.port = port;
  listen.threads = settings_.threads;
  listen.max_pending_connections = settings_.max_pending_connections;
  listen.io_timeout_ms = static_cast<uint32_t>(settings_.read_timeout.count());
  listen.keep_alive_timeout_ms = kIdleTimeoutMs;
  // Upload sizes are enforced by the handlers (which can refuse without
  // reading); httplib's own limit would read and discard a whole oversize body.
  listen.max_body_bytes = std::numeric_limits<size_t>::max();
  auto listener = contracts::HttpListener::start(http_, listen, "HTTP API");
  if (!listener) return tl::unexpected(listener.error());
  listener_ = std::move(*listener);
  return {};
}

// The first line of a private file, trimmed.
Result<std::string> read_token_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error(Errc::io_error, "api.token_file " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    return make_error(Errc::io_error,
                      "api.token_file " + path + " is readable by group or others; run: chmod 600 " + path);
  }
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  const size_t begin = line.find_first_not_of(" \t\r");
  const size_t end = line.find_last_not_of(" \t\r");
  if (!f && !f.eof()) return make_error(Errc::io_error, "api.token_file " + path + ": cannot read");
  if (begin == std::string::npos) {
    return make_error(Errc::invalid_argument, "api.token_file " + path + " holds no token on its first line");
  }
  return line.substr(begin, end - begin + 1);
}

Status prepare_spool_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(Errc::io_error, "creating the upload spool dir " + dir.string() + ": " + ec.message());
  // Bodies of uploads that were in flight when an earlier run stopped.
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().rfind("upload-", 0) == 0) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  if (ec) return make_error(Errc::io_error, "cleaning the upload spool dir " + dir.string() + ": " + ec.message());
  return {};
}

}  // namespace

Result<std::unique_ptr<ApiServer>> start_api_server(NodeService& service, const ApiSettings& given,
                                                    metrics::Registry& metrics,
                                                    const std::filesystem::path& spool_dir) {
  ApiSettings settings = given;
  if (settings.token.empty() && !settings.token_file.empty()) {
    auto token = read_token_file(settings.token_file);
    if (!token) return tl::unexpected(token.error());
    settings.token = std::move(*token);
  }
  auto address = p2p::parse_tcp_address(settings.listen);
  if (!address) return tl::unexpected(with_context(address.error(), "api.listen"));
  const auto& [host, port] = *address;
  if (!is_loopback_host(host) && settings.token.empty()) {
    return make_error(Errc::invalid_argument,
                      "api.listen " + settings.listen +
                          " is reachable beyond this machine, and uploads there need a token: set "
                          "api.token or api.token_file, or listen on 127.0.0.1");
  }
  if (settings.threads == 0 || settings.max_pending_connections == 0) {
    return make_error(Errc::invalid_argument, "api.threads and api.max_pending_connections must be > 0");
  }
  CAIRN_TRY_STATUS(prepare_spool_dir(spool_dir));
  auto server = std::make_unique<HttpApiServer>(service, settings, metrics, spool_dir);
  CAIRN_TRY_STATUS(server->start(host, port));
  CAIRN_LOG(log::Level::info, kApiLog,
            "HTTP API on http://" << server->address() << (settings.token.empty() ? "" : " (uploads need the token)"));
  return std::unique_ptr<ApiServer>(std::move(server));
}

ApiServerFactory api_server_factory(std::filesystem::path spool_dir) {
  return [spool_dir = std::move(spool_dir)](NodeService& service, const ApiSettings& settings,
                                            metrics::Registry& metrics) {
    return start_api_server(service, settings, metrics, spool_dir);
  };
}

}  // namespace cairn::node
