#include "cairn/contracts/http.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace cairn::contracts {
namespace {

// httplib's stock ThreadPool queues accepted sockets without bound. This one
// holds at most `max_pending`; when full, enqueue() blocks the accept loop,
// so further connections wait in the kernel backlog.
class BoundedTaskQueue final : public httplib::TaskQueue {
 public:
  BoundedTaskQueue(unsigned threads, size_t max_pending) : max_pending_(max_pending) {
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~BoundedTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return jobs_.size() < max_pending_ || shutdown_; });
    if (shutdown_) {
      lock.unlock();
      fn();  // never drop a job: it owns (and closes) a socket
      return;
    }
    jobs_.push_back(std::move(fn));
    not_empty_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (shutdown_) return;
      shutdown_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        not_empty_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
        not_full_.notify_one();
      }
      fn();
    }
  }

  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::function<void()>> jobs_;
  bool shutdown_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace

struct HttpListener::Impl {
  httplib::Server& http;
  HttpListenerSettings settings;
  std::thread listener;
  std::atomic<bool> listener_done{false};
  uint16_t port = 0;
  std::mutex stop_mu;
  bool stopped = false;

  Impl(httplib::Server& server, const HttpListenerSettings& s) : http(server), settings(s) {}
};

HttpListener::HttpListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpListener::~HttpListener() { stop(); }

Result<std::unique_ptr<HttpListener>> HttpListener::start(httplib::Server& http,
                                                          const HttpListenerSettings& settings,
                                                          std::string_view what) {
  if (settings.threads == 0 || settings.max_pending_connections == 0) {
    return make_error(Errc::invalid_argument,
                      std::string(what) + ": threads and max_pending_connections must be > 0");
  }
  auto impl = std::make_unique<Impl>(http, settings);
  const unsigned threads = settings.threads;
  const size_t pending = settings.max_pending_connections;
  http.new_task_queue = [threads, pending] { return new BoundedTaskQueue(threads, pending); };
  http.set_payload_max_length(settings.max_body_bytes);
  const auto timeout_s = static_cast<time_t>(settings.io_timeout_ms / 1000);
  const auto timeout_us = static_cast<time_t>((settings.io_timeout_ms % 1000) * 1000);
  http.set_read_timeout(timeout_s, timeout_us);
  http.set_write_timeout(timeout_s, timeout_us);
  http.set_keep_alive_timeout(
      std::max<time_t>(1, static_cast<time_t>((settings.keep_alive_timeout_ms + 999) / 1000)));
  http.set_keep_alive_max_count(100000);
  // httplib writes headers and body separately: without TCP_NODELAY, Nagle
  // and delayed ACKs add ~40 ms to every exchange.
  http.set_tcp_nodelay(true);
  // httplib's default also sets SO_REUSEPORT, which lets a second server
  // bind the same port and silently take half the connections: a second
  // node or chain started on a port in use must fail instead.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (settings.port == 0) {
    const int port = http.bind_to_any_port(settings.host);
    if (port <= 0) {
      return make_error(Errc::io_error,
                        std::string(what) + ": cannot bind " + settings.host + ":0");
    }
    impl->port = static_cast<uint16_t>(port);
  } else {
    if (!http.bind_to_port(settings.host, settings.port)) {
      return make_error(Errc::io_error, std::string(what) + ": cannot bind " + settings.host + ":" +
                                            std::to_string(settings.port) +
                                            " (in use, or not a local address)");
    }
    impl->port = settings.port;
  }
  Impl* raw = impl.get();
  impl->listener = std::thread([raw] {
    raw->http.listen_after_bind();
    raw->listener_done = true;
  });
  return std::unique_ptr<HttpListener>(new HttpListener(std::move(impl)));
}

void HttpListener::stop() {
  std::lock_guard lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  // httplib's stop() only acts on a running loop: wait for the listener to
  // get there (microseconds after start()) so a quick stop cannot be lost.
  while (!impl_->http.is_running() && !impl_->listener_done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->http.stop();
  if (impl_->listener.joinable()) impl_->listener.join();
}

const std::string& HttpListener::host() const { return impl_->settings.host; }
uint16_t HttpListener::port() const { return impl_->port; }
std::string HttpListener::url() const {
  const std::string& h = impl_->settings.host;
  const bool v6 = h.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + h + "]" : h) + ":" + std::to_string(impl_->port);
}

BodyReceipt receive_body(const Clock& clock, const httplib::Request& req,
                         const httplib::ContentReader& reader, uint64_t limit,
                         const std::function<bool(const char*, size_t)>& sink,
                         std::chrono::milliseconds drain) {
  BodyReceipt r;
  TimePoint deadline{};
  const auto receive = [&](const char* data, size_t n) {
    if (!r.too_large && !r.sink_failed) {
      if (r.received + n > limit) {
        r.too_large = true;
      } else if (sink && !sink(data, n)) {
        r.sink_failed = true;
      } else {
        r.received += n;
        return true;
      }
      deadline = clock.now() + drain;
    }
    return clock.now() < deadline;
  };
  bool read = false;
  if (req.is_multipart_form_data()) {
    read = reader([](const httplib::MultipartFormData&) { return true; }, receive);
  } else {
    read = reader(receive);
  }
  r.complete = read && !r.too_large && !r.sink_failed;
  return r;
}

void discard_body(const Clock& clock, const httplib::Request& req,
                  const httplib::ContentReader& reader, std::chrono::milliseconds drain) {
  (void)receive_body(clock, req, reader, 0, nullptr, drain);
}

void close_after(httplib::Response& res) {
  res.set_header("Connection", "close");
  if (res.body.empty()) return;
  auto body = std::make_shared<std::string>(std::move(res.body));
  res.body.clear();
  const std::string type = res.get_header_value("Content-Type");
  res.headers.erase("Content-Type");  // set_content_provider sets it again
  res.set_content_provider(body->size(), type,
                           [body](size_t offset, size_t, httplib::DataSink& sink) {
                             sink.write(body->data() + offset, body->size() - offset);
                             return false;
                           });
}

Result<HttpUrl> parse_http_url(std::string_view url, std::string_view what,
                               std::string_view example) {
  const std::string quoted = std::string(what) + " '" + std::string(url) + "'";
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return make_error(Errc::invalid_argument,
                      quoted + " needs a scheme, e.g. " + std::string(example));
  }
  const std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return make_error(Errc::invalid_argument, quoted + ": scheme must be http or https");
  }
  const size_t path_start = url.find('/', scheme_end + 3);
  HttpUrl u;
  u.origin = std::string(url.substr(0, path_start));
  u.path = path_start == std::string_view::npos ? "/" : std::string(url.substr(path_start));
  if (u.origin.size() == scheme_end + 3) {
    return make_error(Errc::invalid_argument, quoted + " has no host");
  }
  return u;
}

}  // namespace cairn::contracts
