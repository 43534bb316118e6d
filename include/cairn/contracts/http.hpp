#pragma once
// HTTP plumbing shared by cairn's cpp-httplib servers (the dev chain's
// JSON-RPC server, the node's HTTP API) and clients: a listener that runs an
// httplib::Server on a bounded thread pool with a bounded connection queue,
// and the parsing of "http://host:port/path" URLs. httplib itself stays out
// of this header; includers that register routes include <httplib.h>.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/core/clock.hpp"
#include "cairn/core/result.hpp"

namespace httplib {
class Server;
class ContentReader;
struct Request;
struct Response;
}  // namespace httplib

namespace cairn::contracts {

struct HttpListenerSettings {
  // Address and TCP port to bind; port 0 picks a free one.
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  // Threads serving connections. Each open keep-alive connection holds one
  // for its lifetime, so this caps the clients served at once.
  unsigned threads = 8;
  // Accepted connections waiting for a thread; when full, accepting pauses
  // and the kernel backlog takes the rest.
  size_t max_pending_connections = 64;
  // A connection stalled in a read or a write this long is closed, ms.
  uint32_t io_timeout_ms = 5000;
  // A keep-alive connection with no request for this long is closed, ms
  // (whole seconds, at least 1). stop() waits up to this long for idle
  // connections, since httplib's threads only look up between requests.
  uint32_t keep_alive_timeout_ms = 5000;
  // Largest request body, bytes, when the request declares its length
  // (httplib answers 413 itself); chunked bodies are counted by the handler.
  size_t max_body_bytes = 4u << 20;
};

// Runs an httplib::Server whose routes the caller registered. Threads:
// settings.threads connection threads and one accept thread, owned by the
// listener and joined by stop(). The server must outlive the listener.
class HttpListener {
 public:
  // Installs the bounded task queue, timeouts, TCP_NODELAY and the body
  // limit on `server`, binds and starts accepting. invalid_argument when
  // threads or max_pending_connections is 0; io_error naming `what` and the
  // address when it cannot be bound.
  static Result<std::unique_ptr<HttpListener>> start(httplib::Server& server,
                                                     const HttpListenerSettings& settings,
                                                     std::string_view what);
  ~HttpListener();  // stop()
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Stops accepting, finishes requests in flight, joins the threads. Idempotent.
  void stop();
  const std::string& host() const;
  uint16_t port() const;    // the bound port (useful with port 0)
  std::string url() const;  // "http://host:port" ("http://[::1]:port" for IPv6)

 private:
  struct Impl;
  explicit HttpListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- request bodies a handler refuses ----
//
// A server that answers before it has read a request body and then closes
// makes the kernel reset the connection, and a client still sending loses
// the answer. httplib (0.11) also keeps a connection open whatever the
// response's Connection header says, so leftover body bytes would be read
// as the next request. The helpers below read and discard what remains (for
// a bounded time) and close the connection after the answer.

struct BodyReceipt {
  uint64_t received = 0;     // bytes handed to the sink
  bool complete = false;     // the whole body was read and the sink took all of it
  bool too_large = false;    // the body exceeded the limit (the rest was discarded)
  bool sink_failed = false;  // the sink refused a piece (the rest was discarded)
};

// Streams the body of `req` to `sink` (multipart bodies as their parts'
// bytes). Once the body exceeds `limit` bytes or `sink` returns false, the
// rest is read and discarded for at most `drain` of `clock`, then reading
// stops.
BodyReceipt receive_body(const Clock& clock, const httplib::Request& req,
                         const httplib::ContentReader& reader, uint64_t limit,
                         const std::function<bool(const char*, size_t)>& sink,
                         std::chrono::milliseconds drain);
// Reads and discards the body for at most `drain` (after an early answer).
void discard_body(const Clock& clock, const httplib::Request& req,
                  const httplib::ContentReader& reader, std::chrono::milliseconds drain);
// Makes `res` close the connection once it is written: the body goes out
// through a provider that writes every byte and then reports failure, the
// only way httplib closes a connection after an answer.
void close_after(httplib::Response& res);

struct HttpUrl {
  std::string origin;  // "scheme://host:port", what httplib::Client takes
  std::string path;    // "/" when the URL has none
};

// Splits "http[s]://host[:port][/path]". invalid_argument naming `what`
// (e.g. "chain URL") when the scheme is missing or not http(s), or the host
// is empty; `example` is shown as the expected form.
Result<HttpUrl> parse_http_url(std::string_view url, std::string_view what,
                               std::string_view example);

}  // namespace cairn::contracts
