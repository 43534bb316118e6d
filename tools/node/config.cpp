#include "node/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <variant>

#include "cairn/core/log.hpp"

namespace cairn::node {
namespace {

using Ms = std::chrono::milliseconds;
using Sec = std::chrono::seconds;
using Ns = cairn::Duration;
using ShardList = std::optional<std::vector<ShardId>>;
using Ref = std::variant<bool*, int*, uint16_t*, uint32_t*, uint64_t*, double*, std::string*, Ms*, Sec*, Ns*,
                         std::vector<std::string>*, ShardList*>;

struct Field {
  const char* key;
  Ref ref;
};

// Every key, bound to `s`. Keep in the order of docs/config.md.
std::vector<Field> fields(NodeSettings& s) {
  auto& c = s.chain;
  auto& st = s.storage.store;
  auto& w = s.storage.workers;
  auto& sy = s.storage.sync;
  auto& sc = s.storage.scrub;
  auto& p = s.p2p;
  auto& g = s.gossip;
  auto& gs = s.gossip.score;
  auto& d = s.discovery;
  return {
      {"data_dir", &s.data_dir},
      {"listen", &s.listen},
      {"advertise", &s.advertise},
      {"bootstrap", &s.bootstrap},
      {"shards", &s.shards},
      {"stop_timeout_ms", &s.stop_timeout},

      {"chain.backend", &c.backend},
      {"chain.network", &c.network},
      {"chain.block_time_ms", &c.block_time_ms},
      {"chain.serve_rpc", &c.serve_rpc},
      {"chain.registry_refresh_ms", &c.registry_refresh},
      {"chain.devchain.max_mempool_txs", &c.chain.devchain.max_mempool_txs},
      {"chain.devchain.max_block_txs", &c.chain.devchain.max_block_txs},
      {"chain.devchain.verify_threads", &c.chain.devchain.verify_threads},
      {"chain.devchain.sync_writes", &c.chain.devchain.sync_writes},
      {"chain.rpc.host", &c.chain.rpc.host},
      {"chain.rpc.port", &c.chain.rpc.port},
      {"chain.rpc.max_body_bytes", &c.chain.rpc.max_body_bytes},
      {"chain.rpc.max_batch", &c.chain.rpc.max_batch},
      {"chain.rpc.threads", &c.chain.rpc.threads},
      {"chain.rpc.max_pending_connections", &c.chain.rpc.max_pending_connections},
      {"chain.rpc.read_timeout_ms", &c.chain.rpc.read_timeout_ms},
      {"chain.rpc.max_headers_per_call", &c.chain.rpc.max_headers_per_call},
      {"chain.client.connect_timeout_ms", &c.chain.client.connect_timeout_ms},
      {"chain.client.read_timeout_ms", &c.chain.client.read_timeout_ms},
      {"chain.client.poll_interval_ms", &c.chain.client.poll_interval_ms},
      {"chain.client.max_catchup_blocks", &c.chain.client.max_catchup_blocks},

      {"api.listen", &s.api.listen},
      {"api.token", &s.api.token},
      {"api.threads", &s.api.threads},
      {"api.max_upload_bytes", &s.api.max_upload_bytes},
      {"api.read_timeout_ms", &s.api.read_timeout},
      {"api.token_file", &s.api.token_file},
      {"api.max_pending_connections", &s.api.max_pending_connections},
      {"metrics.listen", &s.metrics.listen},

      {"upload.min_replicas", &s.upload.min_replicas},
      {"upload.ack_timeout_ms", &s.upload.ack_timeout},
      {"upload.max_blobs_in_flight", &s.upload.max_blobs_in_flight},
      {"upload.register_batch", &s.upload.register_batch},
      {"upload.reannounce_interval_ms", &s.upload.reannounce_interval},
      {"upload.pull_timeout_ms", &s.upload.pull_timeout},
      {"upload.max_concurrent_pulls", &s.upload.max_concurrent_pulls},
      {"upload.max_pull_queue", &s.upload.max_pull_queue},

      {"challenge.enabled", &s.challenge.enabled},
      {"challenge.retain_epochs", &s.challenge.retain_epochs},
      {"challenge.max_verify_queue", &s.challenge.max_verify_queue},
      {"challenge.settle_blocks", &s.challenge.settle_blocks},
      {"challenge.resubmit_blocks", &s.challenge.resubmit_blocks},
      {"challenge.invalid_response_penalty", &s.challenge.invalid_response_penalty},

      {"fetch.parallel_peers", &s.fetch.parallel_peers},
      {"fetch.hedge_after_ms", &s.fetch.hedge_after},
      {"fetch.request_timeout_ms", &s.fetch.request_timeout},
      {"fetch.blob_timeout_ms", &s.fetch.blob_timeout},
      {"fetch.readahead_blobs", &s.fetch.readahead_blobs},

      {"storage.store.sync_writes", &st.sync_writes},
      {"storage.store.block_cache_bytes", &st.block_cache_bytes},
      {"storage.store.write_buffer_bytes", &st.write_buffer_bytes},
      {"storage.store.max_background_jobs", &st.max_background_jobs},
      {"storage.store.max_open_files", &st.max_open_files},
      {"storage.store.separate_fragment_values", &st.separate_fragment_values},
      {"storage.store.bytes_per_sync", &st.bytes_per_sync},
      {"storage.workers.threads", &w.threads},
      {"storage.workers.queue_capacity", &w.queue_capacity},
      {"storage.sync.max_in_flight", &sy.max_in_flight},
      {"storage.sync.max_in_flight_per_peer", &sy.max_in_flight_per_peer},
      {"storage.sync.hedge_after_ms", &sy.hedge_after_ms},
      {"storage.sync.retry_backoff_ms", &sy.retry_backoff_ms},
      {"storage.sync.bad_peer_avoid_ms", &sy.bad_peer_avoid_ms},
      {"storage.sync.plan_batch", &sy.plan_batch},
      {"storage.sync.cursor_every_blobs", &sy.cursor_every_blobs},
      {"storage.sync.tick_ms", &sy.tick_ms},
      {"storage.sync.settle_blocks", &sy.settle_blocks},
      {"storage.sync.hint_retry_ms", &sy.hint_retry_ms},
      {"storage.sync.max_hint_rounds", &sy.max_hint_rounds},
      {"storage.scrub.enabled", &sc.enabled},
      {"storage.scrub.bytes_per_second", &sc.bytes_per_second},
      {"storage.scrub.max_job_bytes", &sc.max_job_bytes},
      {"storage.scrub.max_queued_jobs", &sc.max_queued_jobs},
      {"storage.scrub.tick_ms", &sc.tick_ms},
      {"storage.scrub.pass_pause_s", &sc.pass_pause_s},

      {"p2p.handshake_timeout_ms", &p.handshake_timeout},
      {"p2p.connect_timeout_ms", &p.connect_timeout},
      {"p2p.max_pending_handshakes", &p.max_pending_handshakes},
      {"p2p.max_frame_payload", &p.max_frame_payload},
      {"p2p.compression", &p.compression},
      {"p2p.compress_threshold", &p.compress_threshold},
      {"p2p.compression_level", &p.compression_level},
      {"p2p.max_inbound_peers", &p.max_inbound_peers},
      {"p2p.max_outbound_peers", &p.max_outbound_peers},
      {"p2p.max_queue_bytes", &p.max_queue_bytes},
      {"p2p.max_queue_frames", &p.max_queue_frames},
      {"p2p.ping_interval_ms", &p.ping_interval},
      {"p2p.idle_timeout_ms", &p.idle_timeout},
      {"p2p.reconnect_base_ms", &p.reconnect_base},
      {"p2p.reconnect_max_ms", &p.reconnect_max},
      {"p2p.reconnect_jitter", &p.reconnect_jitter},
      {"p2p.score_half_life_ms", &p.score_half_life},
      {"p2p.ban_threshold", &p.ban_threshold},
      {"p2p.ban_duration_ms", &p.ban_duration},
      {"p2p.max_bans", &p.max_bans},
      {"p2p.max_scored_peers", &p.max_scored_peers},
      {"p2p.penalty_protocol_violation", &p.penalty_protocol_violation},
      {"p2p.max_requests_in_flight", &p.max_requests_in_flight},
      {"p2p.max_inbound_requests", &p.max_inbound_requests},
      {"p2p.request_timeout_ms", &p.request_timeout},

      {"gossip.mesh_degree", &g.mesh_degree},
      {"gossip.mesh_degree_low", &g.mesh_degree_low},
      {"gossip.mesh_degree_high", &g.mesh_degree_high},
      {"gossip.mesh_degree_lazy", &g.mesh_degree_lazy},
      {"gossip.gossip_factor", &g.gossip_factor},
      {"gossip.mesh_keep_best", &g.mesh_keep_best},
      {"gossip.mesh_outbound_min", &g.mesh_outbound_min},
      {"gossip.heartbeat_interval_ms", &g.heartbeat_interval},
      {"gossip.opportunistic_graft_ticks", &g.opportunistic_graft_ticks},
      {"gossip.opportunistic_graft_peers", &g.opportunistic_graft_peers},
      {"gossip.opportunistic_graft_threshold", &g.opportunistic_graft_threshold},
      {"gossip.fanout_ttl_ms", &g.fanout_ttl},
      {"gossip.flood_publish", &g.flood_publish},
      {"gossip.history_length", &g.history_length},
      {"gossip.history_gossip", &g.history_gossip},
      {"gossip.mcache_window_max", &g.mcache_window_max},
      {"gossip.seen_ttl_ms", &g.seen_ttl},
      {"gossip.seen_max", &g.seen_max},
      {"gossip.max_message_bytes", &g.max_message_bytes},
      {"gossip.max_rpc_bytes", &g.max_rpc_bytes},
      {"gossip.prune_backoff_s", &g.prune_backoff},
      {"gossip.unsubscribe_backoff_s", &g.unsubscribe_backoff},
      {"gossip.backoff_slack_heartbeats", &g.backoff_slack_heartbeats},
      {"gossip.max_ihave_messages", &g.max_ihave_messages},
      {"gossip.max_ihave_length", &g.max_ihave_length},
      {"gossip.iwant_followup_ms", &g.iwant_followup},
      {"gossip.gossip_retransmission", &g.gossip_retransmission},
      {"gossip.max_topics_per_peer", &g.max_topics_per_peer},
      {"gossip.score.first_delivery_weight", &gs.first_delivery_weight},
      {"gossip.score.first_delivery_cap", &gs.first_delivery_cap},
      {"gossip.score.invalid_message_weight", &gs.invalid_message_weight},
      {"gossip.score.behaviour_penalty_weight", &gs.behaviour_penalty_weight},
      {"gossip.score.behaviour_penalty_threshold", &gs.behaviour_penalty_threshold},
      {"gossip.score.decay", &gs.decay},
      {"gossip.score.decay_to_zero", &gs.decay_to_zero},
      {"gossip.score.gossip_threshold", &gs.gossip_threshold},
      {"gossip.score.publish_threshold", &gs.publish_threshold},
      {"gossip.score.graylist_threshold", &gs.graylist_threshold},
      {"gossip.score.retain_score_ms", &gs.retain_score},
      {"gossip.score.max_retained_scores", &gs.max_retained_scores},

      {"discovery.target_peers_per_shard", &d.target_peers_per_shard},
      {"discovery.min_peers_per_shard", &d.min_peers_per_shard},
      {"discovery.max_dials_in_flight", &d.max_dials_in_flight},
      {"discovery.max_known_peers", &d.max_known_peers},
      {"discovery.px_records", &d.px_records},
      {"discovery.px_answer_interval_ms", &d.px_answer_interval},
      {"discovery.px_ask_peers", &d.px_ask_peers},
      {"discovery.px_ask_interval_ms", &d.px_ask_interval},
      {"discovery.dial_backoff_base_ms", &d.dial_backoff_base},
      {"discovery.dial_backoff_max_ms", &d.dial_backoff_max},
      {"discovery.px_max_failures", &d.px_max_failures},
      {"discovery.bootstrap_retry_ms", &d.bootstrap_retry},
      {"discovery.bootstrap_refresh_ms", &d.bootstrap_refresh},
      {"discovery.chain_refresh_ms", &d.chain_refresh},
      {"discovery.unrelated_grace_ms", &d.unrelated_grace},

      {"log.level", &s.log.level},
      {"log.format", &s.log.format},
      {"log.file", &s.log.file},
  };
}

// Keys whose value is a secret: --print-config shows kRedacted instead.
bool is_secret(std::string_view key) { return key == "api.token"; }

// Keys whose text has a syntax of its own, checked where they are set so
// the error names the source (file, variable, flag).
Status check_syntax(const NodeSettings& s, std::string_view key, std::string_view source) {
  if (key == "log.level") {
    if (auto spec = log::parse_level_spec(s.log.level); !spec) {
      return make_error(Errc::invalid_argument, "invalid log level '" + s.log.level + "' in " + std::string(source) +
                                                    ": " + spec.error().message);
    }
  } else if (key == "log.format") {
    if (auto f = log::parse_format(s.log.format); !f) {
      return make_error(Errc::invalid_argument,
                        "invalid log format in " + std::string(source) + ": " + f.error().message);
    }
  }
  return {};
}

Status bad(std::string_view source, std::string_view key, const std::string& why) {
  return make_error(Errc::invalid_argument, std::string(source) + ": " + std::string(key) + ": " + why);
}

std::string trim(std::string_view v) {
  size_t b = 0, e = v.size();
  while (b < e && std::isspace(static_cast<unsigned char>(v[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(v[e - 1]))) --e;
  return std::string(v.substr(b, e - b));
}

std::vector<std::string> split_list(std::string_view v) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= v.size()) {
    const size_t comma = v.find(',', start);
    const size_t end = comma == std::string_view::npos ? v.size() : comma;
    std::string item = trim(v.substr(start, end - start));
    if (!item.empty()) out.push_back(std::move(item));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

template <class Int>
Result<Int> parse_int(std::string_view text) {
  const std::string t = trim(text);
  long long v = 0;
  unsigned long long u = 0;
  if constexpr (std::is_signed_v<Int>) {
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || ptr != t.data() + t.size())
      return make_error(Errc::invalid_argument, "'" + t + "' is not an integer");
    if (v < std::numeric_limits<Int>::min() || v > std::numeric_limits<Int>::max()) {
      return make_error(Errc::invalid_argument, "'" + t + "' is out of range");
    }
    return static_cast<Int>(v);
  } else {
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), u);
    if (ec != std::errc() || ptr != t.data() + t.size()) {
      return make_error(Errc::invalid_argument, "'" + t + "' is not a non-negative integer");
    }
    if (u > std::numeric_limits<Int>::max()) return make_error(Errc::invalid_argument, "'" + t + "' is out of range");
    return static_cast<Int>(u);
  }
}

// "auto", or a comma list of shard numbers and ranges "0-3,7".
Result<ShardList> parse_shards(std::string_view text) {
  const std::string t = trim(text);
  if (t == "auto") return ShardList{};
  std::vector<ShardId> out;
  for (const std::string& item : split_list(t)) {
    const size_t dash = item.find('-');
    if (dash == std::string::npos) {
      auto v = parse_int<uint32_t>(item);
      if (!v) return tl::unexpected(v.error());
      out.push_back(ShardId{*v});
      continue;
    }
    auto lo = parse_int<uint32_t>(item.substr(0, dash));
    auto hi = parse_int<uint32_t>(item.substr(dash + 1));
    if (!lo || !hi || *hi < *lo || *hi - *lo > 65535) {
      return make_error(Errc::invalid_argument, "'" + item + "' is not a shard range LOW-HIGH (at most 65536 shards)");
    }
    for (uint64_t s = *lo; s <= *hi; ++s) out.push_back(ShardId{static_cast<uint32_t>(s)});
  }
  if (out.empty()) return make_error(Errc::invalid_argument, "an empty shard list (use \"auto\" to serve every shard)");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return ShardList{std::move(out)};
}

Result<bool> parse_bool(std::string_view text) {
  std::string t = trim(text);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return false;
  return make_error(Errc::invalid_argument, "'" + t + "' is not a boolean (true/false)");
}

Result<double> parse_double(std::string_view text) {
  const std::string t = trim(text);
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size())
    return make_error(Errc::invalid_argument, "'" + t + "' is not a number");
  return v;
}

// Sets a field from text.
Status set_text(const Ref& ref, std::string_view text) {
  return std::visit(
      [&](auto* ptr) -> Status {
        using T = std::remove_pointer_t<decltype(ptr)>;
        if constexpr (std::is_same_v<T, bool>) {
          auto v = parse_bool(text);
          if (!v) return tl::unexpected(v.error());
          *ptr = *v;
        } else if constexpr (std::is_same_v<T, double>) {
          auto v = parse_double(text);
          if (!v) return tl::unexpected(v.error());
          *ptr = *v;
        } else if constexpr (std::is_integral_v<T>) {
          auto v = parse_int<T>(text);
          if (!v) return tl::unexpected(v.error());
          *ptr = *v;
        } else if constexpr (std::is_same_v<T, std::string>) {
          *ptr = std::string(text);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          *ptr = split_list(text);
        } else if constexpr (std::is_same_v<T, ShardList>) {
          auto v = parse_shards(text);
          if (!v) return tl::unexpected(v.error());
          *ptr = *v;
        } else {
          // A duration in the key's unit (ms or s).
          auto v = parse_int<int64_t>(text);
          if (!v) return tl::unexpected(v.error());
          if (*v < 0) return make_error(Errc::invalid_argument, "a negative duration");
          if constexpr (std::is_same_v<T, Ns>) {
            *ptr = std::chrono::duration_cast<Ns>(Ms(*v));
          } else {
            *ptr = T(*v);
          }
        }
        return {};
      },
      ref);
}

// Sets a field from a TOML value.
Status set_toml(const Ref& ref, const toml::node& node) {
  return std::visit(
      [&](auto* ptr) -> Status {
        using T = std::remove_pointer_t<decltype(ptr)>;
        if constexpr (std::is_same_v<T, bool>) {
          if (!node.is_boolean()) return make_error(Errc::invalid_argument, "expected true or false");
          *ptr = node.as_boolean()->get();
          return {};
        } else if constexpr (std::is_same_v<T, double>) {
          if (node.is_floating_point()) {
            *ptr = node.as_floating_point()->get();
          } else if (node.is_integer()) {
            *ptr = static_cast<double>(node.as_integer()->get());
          } else {
            return make_error(Errc::invalid_argument, "expected a number");
          }
          return {};
        } else if constexpr (std::is_same_v<T, std::string>) {
          if (!node.is_string()) return make_error(Errc::invalid_argument, "expected a string");
          *ptr = node.as_string()->get();
          return {};
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          if (node.is_string()) {
            *ptr = split_list(node.as_string()->get());
            return {};
          }
          if (!node.is_array()) return make_error(Errc::invalid_argument, "expected an array of strings");
          std::vector<std::string> out;
          for (const auto& item : *node.as_array()) {
            if (!item.is_string()) return make_error(Errc::invalid_argument, "expected an array of strings");
            out.push_back(item.as_string()->get());
          }
          *ptr = std::move(out);
          return {};
        } else if constexpr (std::is_same_v<T, ShardList>) {
          if (node.is_string()) return set_text(ref, node.as_string()->get());
          if (!node.is_array()) return make_error(Errc::invalid_argument, "expected \"auto\", \"0-3,7\" or [0, 1]");
          std::string text;
          for (const auto& item : *node.as_array()) {
            if (!item.is_integer()) return make_error(Errc::invalid_argument, "expected an array of shard numbers");
            text += std::to_string(item.as_integer()->get()) + ",";
          }
          return set_text(ref, text);
        } else {
          // Integers and durations.
          if (!node.is_integer()) return make_error(Errc::invalid_argument, "expected an integer");
          return set_text(ref, std::to_string(node.as_integer()->get()));
        }
      },
      ref);
}

std::string to_text(const Ref& ref) {
  return std::visit(
      [](auto* ptr) -> std::string {
        using T = std::remove_pointer_t<decltype(ptr)>;
        if constexpr (std::is_same_v<T, bool>) {
          return *ptr ? "true" : "false";
        } else if constexpr (std::is_same_v<T, double>) {
          std::ostringstream os;
          os << *ptr;
          std::string s = os.str();
          if (s.find_first_of(".eEni") == std::string::npos) s += ".0";
          return s;
        } else if constexpr (std::is_integral_v<T>) {
          return std::to_string(*ptr);
        } else if constexpr (std::is_same_v<T, std::string>) {
          std::string out = "\"";
          for (char ch : *ptr) {
            if (ch == '"' || ch == '\\') out += '\\';
            out += ch;
          }
          return out + "\"";
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string out = "[";
          for (size_t i = 0; i < ptr->size(); ++i) out += (i ? ", \"" : "\"") + (*ptr)[i] + "\"";
          return out + "]";
        } else if constexpr (std::is_same_v<T, ShardList>) {
          if (!*ptr) return "\"auto\"";
          std::string out = "[";
          for (size_t i = 0; i < (*ptr)->size(); ++i) out += (i ? ", " : "") + std::to_string((**ptr)[i].value);
          return out + "]";
        } else if constexpr (std::is_same_v<T, Ns>) {
          return std::to_string(std::chrono::duration_cast<Ms>(*ptr).count());
        } else {
          return std::to_string(ptr->count());
        }
      },
      ref);
}

void collect_leaves(const toml::table& table, const std::string& prefix,
                    std::vector<std::pair<std::string, const toml::node*>>& out) {
  for (const auto& [k, v] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = v.as_table()) {
      collect_leaves(*sub, key, out);
    } else {
      out.emplace_back(std::move(key), &v);
    }
  }
}

}  // namespace

std::vector<std::string> config_keys() {
  NodeSettings s;
  std::vector<std::string> out;
  for (const Field& f : fields(s)) out.emplace_back(f.key);
  return out;
}

std::string env_name(std::string_view key) {
  // The logger reads CAIRN_LOG on its own too (tests, other commands).
  if (key == "log.level") return "CAIRN_LOG";
  std::string out = "CAIRN_";
  for (char ch : key) out += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

Status set_key(NodeSettings& settings, std::string_view key, std::string_view value, std::string_view source) {
  for (const Field& f : fields(settings)) {
    if (key == f.key) {
      auto st = set_text(f.ref, value);
      if (!st) return bad(source, key, st.error().message);
      return check_syntax(settings, key, source);
    }
  }
  return bad(source, key, "no such setting (cairn node --print-config lists them)");
}

Status apply_toml(NodeSettings& settings, std::string_view toml_text, std::string_view source) {
  toml::table table;
  try {
    table = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << e.description() << " (line " << e.source().begin.line << ", column " << e.source().begin.column << ")";
    return make_error(Errc::invalid_argument, std::string(source) + ": " + os.str());
  }
  std::vector<std::pair<std::string, const toml::node*>> leaves;
  collect_leaves(table, "", leaves);
  auto all = fields(settings);
  for (const auto& [key, node] : leaves) {
    // A named reference for the lambda: clang before 16 cannot capture a
    // structured binding, and the fuzz build uses clang 14.
    const std::string& name = key;
    auto it = std::find_if(all.begin(), all.end(), [&](const Field& f) { return name == f.key; });
    if (it == all.end()) return bad(source, key, "no such setting (cairn node --print-config lists them)");
    auto st = set_toml(it->ref, *node);
    if (!st) return bad(source, key, st.error().message);
    CAIRN_TRY_STATUS(check_syntax(settings, key, source));
  }
  return {};
}

Status apply_toml_file(NodeSettings& settings, const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return make_error(Errc::invalid_argument, "config file " + path.string() + " does not exist or is not a file");
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof()) return make_error(Errc::io_error, "cannot read config file " + path.string());
  return apply_toml(settings, ss.str(), path.string());
}

Status apply_env(NodeSettings& settings, const std::function<const char*(const char*)>& getenv_fn) {
  for (const Field& f : fields(settings)) {
    const std::string name = env_name(f.key);
    const char* v = getenv_fn ? getenv_fn(name.c_str()) : std::getenv(name.c_str());
    if (v == nullptr) continue;
    auto st = set_text(f.ref, v);
    if (!st) return bad("environment " + name, f.key, st.error().message);
    CAIRN_TRY_STATUS(check_syntax(settings, f.key, "environment " + name));
  }
  return {};
}

std::string to_toml(const NodeSettings& settings) {
  NodeSettings copy = settings;
  std::string out;
  std::string section;
  for (const Field& f : fields(copy)) {
    const std::string key = f.key;
    const size_t dot = key.rfind('.');
    const std::string table = dot == std::string::npos ? "" : key.substr(0, dot);
    const std::string name = dot == std::string::npos ? key : key.substr(dot + 1);
    if (table != section) {
      out += "\n[" + table + "]\n";
      section = table;
    }
    const bool redact = is_secret(key) && to_text(f.ref) != "\"\"";  // an unset secret prints as empty
    out += name + " = " + (redact ? "\"" + std::string(kRedacted) + "\"" : to_text(f.ref)) + "\n";
  }
  return out;
}

Status validate(const NodeSettings& s) {
  if (s.data_dir.empty()) return bad("settings", "data_dir", "empty");
  CAIRN_TRY_STATUS(check_syntax(s, "log.level", "settings"));
  CAIRN_TRY_STATUS(check_syntax(s, "log.format", "settings"));
  if (s.api.token == kRedacted) {
    return bad("settings", "api.token",
               "\"" + std::string(kRedacted) +
                   "\" is what --print-config shows instead of the token: set the real "
                   "token, or use api.token_file");
  }
  if (s.listen.empty()) return bad("settings", "listen", "empty (HOST:PORT)");
  if (s.challenge.retain_epochs == 0) return bad("settings", "challenge.retain_epochs", "must be at least 1");
  if (s.challenge.max_verify_queue == 0) return bad("settings", "challenge.max_verify_queue", "must be at least 1");
  if (s.challenge.resubmit_blocks == 0) return bad("settings", "challenge.resubmit_blocks", "must be at least 1");
  if (s.challenge.invalid_response_penalty < 0) {
    return bad("settings", "challenge.invalid_response_penalty", "must not be negative");
  }
  if (s.upload.min_replicas == 0) return bad("settings", "upload.min_replicas", "must be at least 1");
  if (s.upload.max_blobs_in_flight == 0) return bad("settings", "upload.max_blobs_in_flight", "must be at least 1");
  if (s.upload.max_concurrent_pulls == 0) return bad("settings", "upload.max_concurrent_pulls", "must be at least 1");
  if (s.fetch.parallel_peers == 0) return bad("settings", "fetch.parallel_peers", "must be at least 1");
  if (s.shards && s.shards->empty()) return bad("settings", "shards", "an empty list (use \"auto\")");
  if (s.chain.backend != "embedded" && s.chain.backend.rfind("http://", 0) != 0) {
    return bad("settings", "chain.backend", "'" + s.chain.backend + "' is neither \"embedded\" nor http://HOST:PORT");
  }
  if (s.chain.network != "default" && s.chain.network != "localnet") {
    return bad("settings", "chain.network", "'" + s.chain.network + "' (default, localnet)");
  }
  return {};
}

}  // namespace cairn::node
