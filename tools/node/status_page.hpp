#pragma once
// The HTML status page served at GET / of the HTTP API (docs/http-api.md):
// one self-contained document for people (inline CSS and SVG, no scripts, no
// external assets), rendered from the same NodeStatus /v1/status encodes. It
// refreshes itself every kStatusPageRefreshSeconds with a meta refresh.
//
// Every string that can come from the network or the chain (peer addresses,
// endpoints, error strings, reasons) is HTML-escaped. Elements a test or a
// script may read carry stable ids, classes and data- attributes:
//   #node-id, #chain-head, #peer-count, tr.shard-row[data-shard][data-held],
//   tr.peer-row, tr.upload-row[data-id], svg.challenge-chart[data-shard],
//   g.epoch[data-epoch][data-valid][data-missing][data-walk-seconds].

#include <cstdint>
#include <string>
#include <string_view>

#include "node/node_service.hpp"

namespace cairn::node {

inline constexpr int kStatusPageRefreshSeconds = 5;

// `text` with & < > " ' replaced by their character references (safe in
// element content and in quoted attribute values).
std::string html_escape(std::string_view text);

// The whole page. `now_unix_ms` is the wall clock the head's age and the
// uploads' times are measured against (injected for tests).
std::string render_status_page(const NodeStatus& status, uint64_t now_unix_ms);

}  // namespace cairn::node
