#include "node/metrics_server.hpp"

#include <httplib.h>

#include "cairn/contracts/http.hpp"
#include "cairn/core/log.hpp"
#include "cairn/p2p/tcp_address.hpp"

namespace cairn::node {

struct MetricsServer::Impl {
  httplib::Server http;
  std::unique_ptr<contracts::HttpListener> listener;
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop() {
  if (impl_ && impl_->listener) impl_->listener->stop();
}

std::string MetricsServer::address() const {
  const std::string& h = impl_->listener->host();
  const bool v6 = h.find(':') != std::string::npos;
  return (v6 ? "[" + h + "]" : h) + ":" + std::to_string(impl_->listener->port());
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& listen,
                                                            const metrics::Registry& registry) {
  auto address = p2p::parse_tcp_address(listen);
  if (!address) return tl::unexpected(with_context(address.error(), "metrics.listen"));
  auto impl = std::make_unique<Impl>();
  impl->http.Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  impl->http.Get(".*", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 404;
    res.set_content("not found: " + req.path + " (this listener serves only /metrics)\n", "text/plain");
  });
  contracts::HttpListenerSettings s;
  s.host = address->host;
  s.port = address->port;
  // Scrapers are few and each request is short: two threads, a small queue.
  s.threads = 2;
  s.max_pending_connections = 16;
  s.max_body_bytes = 1024;  // GETs only
  auto listener = contracts::HttpListener::start(impl->http, s, "metrics");
  if (!listener) return tl::unexpected(listener.error());
  impl->listener = std::move(*listener);
  auto server = std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
  CAIRN_LOG(log::Level::info, "api", "metrics on http://" << server->address() << "/metrics");
  return server;
}

}  // namespace cairn::node
