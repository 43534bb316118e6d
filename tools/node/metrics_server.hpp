#pragma once
// The optional metrics listener (setting metrics.listen): serves GET /metrics
// (the same exposition as the HTTP API's /metrics) and nothing else, on its
// own address, so Prometheus can scrape a node whose API stays on loopback.
// Read-only, so no token is needed on any address (docs/config.md).

#include <memory>
#include <string>

#include "cairn/core/result.hpp"
#include "node/metrics.hpp"

namespace cairn::node {

class MetricsServer {
 public:
  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds `listen` ("HOST:PORT"; port 0 picks a free one) and serves
  // `registry`, which must outlive the server, on two connection threads.
  // invalid_argument naming metrics.listen when the address is malformed;
  // io_error when it cannot be bound.
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& listen, const metrics::Registry& registry);

  // Stops accepting and joins the threads. Idempotent.
  void stop();
  // The bound "host:port".
  std::string address() const;

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::node
