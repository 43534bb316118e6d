#pragma once
// The node's HTTP API (docs/http-api.md): upload and download of files and
// blobs (streamed both ways; downloads honour Range), stat, blob status,
// node status and Prometheus /metrics, over a NodeService. cpp-httplib
// serves it on a bounded pool of connection threads; every NodeService call
// runs on one of those threads, never on the node's network thread.
// A file upload may ask for its progress (Accept: application/x-ndjson):
// the events are written by the same connection thread while it waits.
//
// Writes (uploads) need `Authorization: Bearer <token>` whenever a token is
// configured, and a token is mandatory when the API listens beyond loopback.

#include <filesystem>
#include <memory>
#include <string_view>

#include "node/node.hpp"

namespace cairn::node {

// Starts serving `service` on settings.listen. Upload bodies are spooled to
// files in `spool_dir` (created when missing; files an earlier run left
// there are removed) and handed to NodeService::put_file by path. `service`
// and `metrics` must outlive the server; the server registers its metrics
// (cairn_api_*) in `metrics`. Errors: invalid_argument when settings.listen
// is malformed, settings.threads or max_pending_connections is 0, or the
// address is beyond loopback while settings.token is empty (the message says
// what to set); io_error when the spool dir cannot be prepared or the
// address cannot be bound.
Result<std::unique_ptr<ApiServer>> start_api_server(NodeService& service, const ApiSettings& settings,
                                                    metrics::Registry& metrics, const std::filesystem::path& spool_dir);

// A NodeOptions::api factory: start_api_server with `spool_dir`.
ApiServerFactory api_server_factory(std::filesystem::path spool_dir);

// Whether `host` (a literal address or "localhost") can only be reached from
// this machine: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 or "localhost".
// Anything else, including the wildcards 0.0.0.0 and ::, is beyond loopback.
bool is_loopback_host(std::string_view host);

}  // namespace cairn::node
