#include "node/status_page.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <vector>

namespace cairn::node {

namespace {

std::string bytes_text(double b) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  size_t u = 0;
  while (b >= 1024 && u + 1 < std::size(kUnits)) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, kUnits[u]);
  return buf;
}

std::string duration_text(uint64_t ms) {
  const uint64_t s = ms / 1000;
  char buf[48];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " min %" PRIu64 " s", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " h %" PRIu64 " min", s / 3600, (s / 60) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " d %" PRIu64 " h", s / 86400, (s / 3600) % 24);
  }
  return buf;
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "1a2b3c4d…" with the full id in a title attribute.
std::string short_id(const std::string& hex) {
  return "<span class=\"mono\" title=\"" + html_escape(hex) + "\">" + html_escape(hex.substr(0, 12)) +
         (hex.size() > 12 ? "&hellip;" : "") + "</span>";
}

const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f4f6f8;color:#1d2733}
header{background:#1d2733;color:#fff;padding:14px 24px;display:flex;align-items:baseline;gap:18px;flex-wrap:wrap}
header h1{font-size:20px;margin:0;font-weight:600}
header .meta{color:#b8c4d0}
main{padding:16px 24px;max-width:1240px}
section{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:12px 16px;margin:0 0 16px}
h2{font-size:15px;margin:0 0 10px;color:#33475b;text-transform:uppercase;letter-spacing:.04em}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:16px;margin-bottom:16px}
.cards section{margin:0}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:0}
dt{color:#5b6b7b}dd{margin:0;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:4px 10px 4px 0;border-bottom:1px solid #edf0f3;vertical-align:top}
th{color:#5b6b7b;font-weight:600;font-size:12px;text-transform:uppercase}
td.num,th.num{text-align:right}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
.ok{color:#1a7f37}.warn{color:#b35900}.bad{color:#c62828}.muted{color:#7a8894}
.chart{margin:4px 0 12px}
svg text{font:11px system-ui,sans-serif;fill:#33475b}
)";

// Per-shard challenge chart: counted (valid) / invalid / missing nodes per
// epoch as stacked bars, and this node's walk time per epoch against the
// deadline (deadline_blocks * block_time_ms) below.
void chart(std::ostringstream& o, uint32_t shard, const std::vector<const EpochChallengeStatus*>& epochs,
           double deadline_s) {
  const int w = 1180, left = 56, right = 16, top_h = 150, bot_h = 110, gap = 46, top_y = 28;
  const int plot_w = w - left - right;
  const int bot_y = top_y + top_h + gap;
  const int h = bot_y + bot_h + 40;
  uint32_t max_nodes = 1;
  double max_walk = deadline_s > 0 ? deadline_s : 1;
  for (const auto* e : epochs) {
    max_nodes = std::max<uint32_t>(max_nodes, e->valid + static_cast<uint32_t>(e->invalid.size() + e->missing.size()));
    max_walk = std::max(max_walk, e->walk_seconds);
  }
  max_walk *= 1.1;
  const size_t n = std::max<size_t>(epochs.size(), 1);
  const double slot = static_cast<double>(plot_w) / static_cast<double>(std::max<size_t>(n, 8));
  const double bar = std::max(2.0, slot * 0.6);

  o << "<svg class=\"challenge-chart\" data-shard=\"" << shard << "\" width=\"" << w << "\" height=\"" << h
    << "\" viewBox=\"0 0 " << w << ' ' << h << "\" role=\"img\" aria-label=\"challenge results of shard " << shard
    << "\">";
  // Legend.
  o << "<g class=\"legend\">"
    << "<rect x=\"" << left << "\" y=\"6\" width=\"12\" height=\"12\" fill=\"#2e9d5b\"/><text x=\"" << left + 16
    << "\" y=\"16\">counted (valid)</text>"
    << "<rect x=\"" << left + 130 << "\" y=\"6\" width=\"12\" height=\"12\" fill=\"#f0a030\"/><text x=\"" << left + 146
    << "\" y=\"16\">invalid</text>"
    << "<rect x=\"" << left + 210 << "\" y=\"6\" width=\"12\" height=\"12\" fill=\"#d64545\"/><text x=\"" << left + 226
    << "\" y=\"16\">missing</text>"
    << "<rect x=\"" << left + 290 << "\" y=\"6\" width=\"12\" height=\"12\" fill=\"#4a78c2\"/><text x=\"" << left + 306
    << "\" y=\"16\">own walk time</text>"
    << "<line x1=\"" << left + 410 << "\" y1=\"12\" x2=\"" << left + 434
    << "\" y2=\"12\" stroke=\"#c62828\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/><text x=\"" << left + 440
    << "\" y=\"16\">deadline</text></g>";
  // Axes and grid: nodes (top), seconds (bottom).
  const auto axis = [&](int y0, int ph, double max, const char* label, const auto& fmt) {
    for (int i = 0; i <= 4; ++i) {
      const double v = max * i / 4.0;
      const double y = y0 + ph - ph * i / 4.0;
      o << "<line x1=\"" << left << "\" y1=\"" << fixed(y, 1) << "\" x2=\"" << w - right << "\" y2=\"" << fixed(y, 1)
        << "\" stroke=\"#e3e8ee\"/><text x=\"" << left - 6 << "\" y=\"" << fixed(y + 4, 1) << "\" text-anchor=\"end\">"
        << fmt(v) << "</text>";
    }
    o << "<text transform=\"translate(14 " << y0 + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">" << label
      << "</text>";
  };
  axis(top_y, top_h, static_cast<double>(max_nodes), "nodes", [](double v) { return fixed(v, v < 4 ? 1 : 0); });
  axis(bot_y, bot_h, max_walk, "walk (s)", [](double v) { return fixed(v, v < 10 ? 2 : 0); });
  const double dy = bot_y + bot_h - bot_h * (deadline_s / max_walk);
  if (deadline_s > 0) {
    o << "<line class=\"deadline\" x1=\"" << left << "\" y1=\"" << fixed(dy, 1) << "\" x2=\"" << w - right << "\" y2=\""
      << fixed(dy, 1) << "\" stroke=\"#c62828\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>"
      << "<text x=\"" << w - right << "\" y=\"" << fixed(dy - 4, 1) << "\" text-anchor=\"end\" class=\"bad\">deadline "
      << fixed(deadline_s, 1) << " s</text>";
  }
  const double label_every = std::ceil(static_cast<double>(epochs.size()) / 16.0);
  for (size_t i = 0; i < epochs.size(); ++i) {
    const EpochChallengeStatus& e = *epochs[i];
    const double x = left + slot * static_cast<double>(i) + (slot - bar) / 2;
    const auto inv = static_cast<uint32_t>(e.invalid.size());
    const auto mis = static_cast<uint32_t>(e.missing.size());
    o << "<g class=\"epoch\" data-epoch=\"" << e.epoch.value << "\" data-valid=\"" << e.valid << "\" data-invalid=\""
      << inv << "\" data-missing=\"" << mis << "\" data-own=\"" << html_escape(e.own) << "\" data-walk-seconds=\""
      << fixed(e.walk_seconds, 3) << "\"><title>epoch " << e.epoch.value << ": " << e.valid << " counted, " << inv
      << " invalid, " << mis << " missing; own " << html_escape(e.own) << ", walk " << fixed(e.walk_seconds, 2)
      << " s</title>";
    double y = top_y + top_h;
    const auto seg = [&](uint32_t count, const char* cls, const char* color) {
      if (count == 0) return;
      const double hh = top_h * static_cast<double>(count) / max_nodes;
      y -= hh;
      o << "<rect class=\"" << cls << "\" x=\"" << fixed(x, 1) << "\" y=\"" << fixed(y, 1) << "\" width=\""
        << fixed(bar, 1) << "\" height=\"" << fixed(hh, 1) << "\" fill=\"" << color << "\"/>";
    };
    seg(e.valid, "valid", "#2e9d5b");
    seg(inv, "invalid", "#f0a030");
    seg(mis, "missing", "#d64545");
    const double wh = bot_h * (e.walk_seconds / max_walk);
    const bool late = deadline_s > 0 && e.walk_seconds > deadline_s;
    o << "<rect class=\"walk\" x=\"" << fixed(x, 1) << "\" y=\"" << fixed(bot_y + bot_h - wh, 1) << "\" width=\""
      << fixed(bar, 1) << "\" height=\"" << fixed(std::max(wh, 0.5), 1) << "\" fill=\""
      << (e.own == "anchored" ? (late ? "#f0a030" : "#4a78c2") : "#d64545") << "\"/>";
    if (label_every <= 1 || i % static_cast<size_t>(label_every) == 0 || i + 1 == epochs.size()) {
      o << "<text x=\"" << fixed(x + bar / 2, 1) << "\" y=\"" << bot_y + bot_h + 16 << "\" text-anchor=\"middle\">"
        << e.epoch.value << "</text>";
    }
    o << "</g>";
  }
  o << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << h - 6 << "\" text-anchor=\"middle\">epoch</text>";
  o << "</svg>";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_status_page(const NodeStatus& s, uint64_t now_unix_ms) {
  std::ostringstream o;
  const ChainStatus& c = s.chain;
  const std::string id = s.id.hex();
  o << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta http-equiv=\"refresh\" content=\"" << kStatusPageRefreshSeconds << "\">"
    << "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    << "<title>cairn node " << html_escape(id.substr(0, 12)) << "</title><style>" << kStyle << "</style></head><body>";

  o << "<header><h1>cairn node</h1><span id=\"node-id\" class=\"mono\">" << html_escape(id) << "</span>"
    << "<span class=\"meta\">version <span id=\"version\">" << html_escape(s.version) << "</span> &middot; up "
    << duration_text(s.uptime_ms) << (s.stopping ? " &middot; <b>stopping</b>" : "") << "</span></header><main>";

  // Cards: chain, storage, node.
  const uint64_t age_ms = now_unix_ms > c.head_timestamp_ms ? now_unix_ms - c.head_timestamp_ms : 0;
  const uint64_t block_ms = c.params.block_time_ms;
  const uint64_t lag_blocks = block_ms > 0 ? age_ms / block_ms : 0;
  const char* age_cls = c.head_timestamp_ms == 0 ? "muted" : lag_blocks <= 2 ? "ok" : lag_blocks <= 10 ? "warn" : "bad";
  o << "<div class=\"cards\"><section id=\"chain\"><h2>Chain</h2><dl>"
    << "<dt>head</dt><dd><span id=\"chain-head\">" << c.head << "</span></dd>"
    << "<dt>head age</dt><dd class=\"" << age_cls << "\" id=\"chain-age\" data-lag-blocks=\"" << lag_blocks << "\">"
    << (c.head_timestamp_ms == 0 ? std::string("unknown")
                                 : duration_text(age_ms) + " (" + std::to_string(lag_blocks) + " blocks behind)")
    << "</dd><dt>backend</dt><dd>" << html_escape(c.backend) << "</dd>"
    << "<dt>blobs</dt><dd>" << c.blob_count << " registered</dd>"
    << "<dt>this node</dt><dd class=\"" << (c.registered ? "ok\">registered" : "warn\">not registered yet")
    << "</dd></dl></section>";
  o << "<section id=\"storage\"><h2>Storage</h2><dl>"
    << "<dt>stored</dt><dd id=\"bytes-stored\" data-bytes=\"" << s.bytes_stored << "\">"
    << bytes_text(static_cast<double>(s.bytes_stored)) << "</dd>"
    << "<dt>blobs</dt><dd id=\"blobs-stored\">" << s.blobs_stored << "</dd>"
    << "<dt>pending uploads</dt><dd id=\"pending-uploads\" class=\"" << (s.pending_uploads ? "warn" : "") << "\">"
    << s.pending_uploads << "</dd>"
    << "<dt>scrub</dt><dd>" << s.scrub.passes << " passes, "
    << "<span class=\""
    << (s.scrub.fragments_unrepairable ? "bad"
        : s.scrub.fragments_bad        ? "warn"
                                       : "")
    << "\">" << s.scrub.fragments_bad << " bad, " << s.scrub.fragments_unrepairable
    << " unrepairable</span></dd></dl></section>";
  o << "<section id=\"node\"><h2>Node</h2><dl>"
    << "<dt>p2p</dt><dd class=\"mono\">" << html_escape(s.p2p_address) << "</dd>"
    << "<dt>advertised</dt><dd class=\"mono\">" << html_escape(s.advertised_address) << "</dd>"
    << "<dt>api</dt><dd class=\"mono\">" << html_escape(s.api_address) << "</dd>"
    << "<dt>peers</dt><dd><span id=\"peer-count\">" << s.peers.size() << "</span></dd>"
    << "<dt>blob size</dt><dd>" << bytes_text(c.params.blob_size) << ", " << c.params.data_fragments << "+"
    << c.params.parity_fragments << " fragments</dd></dl></section></div>";

  // Shards.
  std::map<uint32_t, size_t> peers_of;
  for (const PeerStatus& p : s.peers) {
    for (ShardId sh : p.shards) ++peers_of[sh.value];
  }
  std::map<uint32_t, const shards::SyncProgress*> sync_of;
  for (const shards::SyncProgress& y : s.sync) sync_of[y.shard.value] = &y;
  o << "<section id=\"shards\"><h2>Shards served</h2><table><thead><tr><th>shard</th><th class=\"num\">registered</th>"
       "<th class=\"num\">held</th><th class=\"num\">remaining</th><th>sync</th><th class=\"num\">rate</th>"
       "<th class=\"num\">fetched</th><th class=\"num\">peers</th><th>last error</th></tr></thead><tbody>";
  for (ShardId sh : s.shards) {
    const auto y = sync_of.find(sh.value);
    const shards::SyncProgress* st = y == sync_of.end() ? nullptr : y->second;
    const size_t pc = peers_of[sh.value];
    o << "<tr class=\"shard-row\" data-shard=\"" << sh.value << "\" data-registered=\"" << (st ? st->known : 0)
      << "\" data-held=\"" << (st ? st->held : 0) << "\" data-peers=\"" << pc << "\"><td>" << sh.value << "</td>";
    if (st) {
      const double pct = st->known ? 100.0 * static_cast<double>(st->held) / static_cast<double>(st->known) : 100.0;
      o << "<td class=\"num\">" << st->known << "</td><td class=\"num\">" << st->held << " <span class=\"muted\">("
        << fixed(pct, 0) << "%)</span></td><td class=\"num\">" << st->remaining << "</td><td class=\""
        << (st->state == shards::SyncState::synced    ? "ok"
            : st->state == shards::SyncState::waiting ? "warn"
                                                      : "")
        << "\">" << html_escape(std::string(shards::sync_state_name(st->state))) << "</td><td class=\"num\">"
        << bytes_text(st->bytes_per_second) << "/s</td><td class=\"num\">" << st->fetched_blobs << "</td>";
    } else {
      o << "<td class=\"num\">&ndash;</td><td class=\"num\">&ndash;</td><td class=\"num\">&ndash;</td>"
           "<td class=\"muted\">not started</td><td></td><td></td>";
    }
    o << "<td class=\"num " << (pc == 0 ? "bad" : "") << "\">" << pc << "</td><td class=\"bad\">"
      << (st ? html_escape(st->last_error) : "") << "</td></tr>";
  }
  o << "</tbody></table></section>";

  // Challenges.
  const double deadline_s = static_cast<double>(c.params.deadline_blocks) * static_cast<double>(block_ms) / 1000.0;
  std::map<uint32_t, std::vector<const EpochChallengeStatus*>> by_shard;
  for (const EpochChallengeStatus& e : s.challenge_history) by_shard[e.shard.value].push_back(&e);
  o << "<section id=\"challenges\"><h2>Storage challenges</h2>";
  if (by_shard.empty()) o << "<p class=\"muted\">No epoch with blobs has finished yet.</p>";
  for (const auto& [shard, epochs] : by_shard) {
    const EpochChallengeStatus& last = *epochs.back();
    o << "<h3>shard " << shard << " <span class=\"muted\">&middot; last " << epochs.size()
      << " epochs &middot; latest epoch " << last.epoch.value << ": " << last.valid << " counted, "
      << last.missing.size() << " missing, own <span class=\"" << (last.own == "anchored" ? "ok" : "bad") << "\">"
      << html_escape(last.own) << "</span></span></h3><div class=\"chart\">";
    chart(o, shard, epochs, deadline_s);
    o << "</div>";
    if (!last.own_detail.empty()) o << "<p class=\"bad\">own: " << html_escape(last.own_detail) << "</p>";
    if (!last.invalid.empty() || !last.missing.empty()) {
      o << "<table class=\"not-counted\"><thead><tr><th>not counted in epoch " << last.epoch.value
        << "</th><th>endpoint</th><th>reason</th></tr></thead><tbody>";
      const auto rows = [&](const std::vector<PeerChallengeResult>& list, const char* kind) {
        for (const auto& r : list) {
          o << "<tr class=\"" << kind << "-row\"><td>" << short_id(r.node.hex()) << " <span class=\"muted\">" << kind
            << "</span></td><td class=\"mono\">" << html_escape(r.endpoint) << "</td><td>" << html_escape(r.reason)
            << "</td></tr>";
        }
      };
      rows(last.invalid, "invalid");
      rows(last.missing, "missing");
      o << "</tbody></table>";
    }
  }
  o << "</section>";

  // Recent uploads.
  o << "<section id=\"uploads\"><h2>Recent uploads</h2>";
  if (s.recent_uploads.empty()) {
    o << "<p class=\"muted\">Nothing uploaded through this node since it started.</p>";
  } else {
    o << "<table><thead><tr><th>id</th><th>kind</th><th class=\"num\">size</th><th class=\"num\">replicas</th>"
         "<th class=\"num\">uploaded</th></tr></thead><tbody>";
    for (const RecentUpload& u : s.recent_uploads) {
      const std::string hex = u.id.hex();
      const uint64_t ago = now_unix_ms > u.unix_ms ? now_unix_ms - u.unix_ms : 0;
      o << "<tr class=\"upload-row\" data-id=\"" << hex << "\"><td class=\"mono\">" << hex << "</td><td>"
        << (u.kind == ObjectKind::file ? "file" : "blob") << "</td><td class=\"num\">"
        << bytes_text(static_cast<double>(u.size)) << "</td><td class=\"num\">" << u.replicas
        << "</td><td class=\"num\">" << duration_text(ago) << " ago</td></tr>";
    }
    o << "</tbody></table>";
  }
  o << "</section>";

  // Peers.
  o << "<section id=\"peers\"><h2>Peers (" << s.peers.size() << ")</h2>";
  if (s.peers.empty()) {
    o << "<p class=\"bad\">No peer connected.</p>";
  } else {
    o << "<table><thead><tr><th>peer</th><th>address</th><th>direction</th><th>shards</th><th class=\"num\">rtt</th>"
         "<th class=\"num\">score</th></tr></thead><tbody>";
    for (const PeerStatus& p : s.peers) {
      o << "<tr class=\"peer-row\" data-peer=\"" << p.id.hex() << "\"><td>" << short_id(p.id.hex())
        << "</td><td class=\"mono\">" << html_escape(p.address) << "</td><td>" << (p.outbound ? "outbound" : "inbound")
        << "</td><td>";
      for (size_t i = 0; i < p.shards.size(); ++i) o << (i ? ", " : "") << p.shards[i].value;
      o << "</td><td class=\"num\">"
        << (p.rtt_us ? fixed(static_cast<double>(p.rtt_us) / 1000.0, 1) + " ms" : std::string("&ndash;"))
        << "</td><td class=\"num\">" << fixed(p.score, 1) << "</td></tr>";
    }
    o << "</tbody></table>";
  }
  o << "</section><p class=\"muted\">Refreshes every " << kStatusPageRefreshSeconds
    << " s. Machine-readable: <a href=\"/v1/status\">/v1/status</a>, <a href=\"/metrics\">/metrics</a>.</p>"
    << "</main></body></html>\n";
  return o.str();
}

}  // namespace cairn::node
