#include <CLI/CLI.hpp>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cairn/core/log.hpp"
#include "commands.hpp"
#include "node/api_server.hpp"
#include "node/config.hpp"
#include "node/node.hpp"

namespace cairn::tools {
namespace {

// Flags as given; applied after the config file and the environment.
struct NodeFlags {
  std::optional<std::string> data_dir, listen, advertise, api, chain, shards, network, config;
  std::optional<std::string> log_level, log_format, log_file;
  std::optional<uint32_t> min_replicas, block_time_ms;
  std::vector<std::string> bootstrap;
  std::vector<std::string> sets;
  bool print_config = false;
};

Result<node::NodeSettings> settings_from(const NodeFlags& f) {
  node::NodeSettings s;
  s.data_dir = default_data_dir();
  if (f.config) CAIRN_TRY_STATUS(node::apply_toml_file(s, *f.config));
  CAIRN_TRY_STATUS(node::apply_env(s));
  auto set = [&](const char* key, const std::optional<std::string>& v, const char* flag) -> Status {
    if (!v) return {};
    return node::set_key(s, key, *v, flag);
  };
  CAIRN_TRY_STATUS(set("data_dir", f.data_dir, "--data-dir"));
  CAIRN_TRY_STATUS(set("listen", f.listen, "--listen"));
  CAIRN_TRY_STATUS(set("advertise", f.advertise, "--advertise"));
  CAIRN_TRY_STATUS(set("api.listen", f.api, "--api"));
  CAIRN_TRY_STATUS(set("chain.backend", f.chain, "--chain"));
  CAIRN_TRY_STATUS(set("shards", f.shards, "--shards"));
  CAIRN_TRY_STATUS(set("chain.network", f.network, "--network"));
  CAIRN_TRY_STATUS(set("log.level", f.log_level, "--log-level"));
  CAIRN_TRY_STATUS(set("log.format", f.log_format, "--log-format"));
  CAIRN_TRY_STATUS(set("log.file", f.log_file, "--log-file"));
  if (f.min_replicas) s.upload.min_replicas = *f.min_replicas;
  if (f.block_time_ms) s.chain.block_time_ms = *f.block_time_ms;
  if (!f.bootstrap.empty()) s.bootstrap = f.bootstrap;
  for (const std::string& kv : f.sets) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) {
      return make_error(Errc::invalid_argument, "--set '" + kv + "': expected KEY=VALUE, e.g. upload.min_replicas=3");
    }
    CAIRN_TRY_STATUS(node::set_key(s, kv.substr(0, eq), kv.substr(eq + 1)));
  }
  CAIRN_TRY_STATUS(node::validate(s));
  return s;
}

// Points the logger at log.file / log.format / log.level (validated).
Status start_logging(const node::NodeSettings& s) {
  log::set_format(*log::parse_format(s.log.format));
  CAIRN_TRY_STATUS(log::set_file(s.log.file));
  log::set_levels(*log::parse_level_spec(s.log.level));
  return {};
}

// SIGHUP: reopen the log file (logrotate moved it) and apply log.level as
// the config file, environment and flags now give it. Any error is logged
// and the running levels stay; the node keeps running either way.
void reload_logging(const NodeFlags& flags) {
  std::string reopened;
  if (auto st = log::reopen(); !st) {
    CAIRN_LOG(log::Level::error, "node", "SIGHUP: " << st.error().message << "; still writing the old file");
  } else if (!log::file().empty()) {
    reopened = "reopened " + log::file() + "; ";
  }
  auto settings = settings_from(flags);
  if (!settings) {
    CAIRN_LOG(log::Level::error, "node",
              "SIGHUP: " << settings.error().message << "; keeping log level " << log::levels().to_string());
    return;
  }
  const log::LevelSpec next = *log::parse_level_spec(settings->log.level);
  const log::LevelSpec previous = log::set_levels(next);
  // The output is chosen at start; say so rather than ignore an edit.
  const bool output_changed =
      settings->log.file != log::file() || *log::parse_format(settings->log.format) != log::format();
  const char* later = output_changed ? "; the new log.file / log.format take effect at the next start" : "";
  if (previous == next) {
    CAIRN_LOG(log::Level::info, "node",
              "SIGHUP: " << reopened << "log level unchanged (" << next.to_string() << ")" << later);
  } else {
    CAIRN_LOG(log::Level::info, "node",
              "SIGHUP: " << reopened << "log level " << previous.to_string() << " -> " << next.to_string() << later);
  }
}

int run_node(const NodeFlags& flags) {
  // Block the stop and reload signals before any thread starts (threads
  // inherit the mask); the main thread takes them with sigwait.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  auto settings = settings_from(flags);
  if (!settings) return report_error("node", settings.error());
  if (flags.print_config) {
    std::cout << node::to_toml(*settings);
    return kExitOk;
  }
  if (auto st = start_logging(*settings); !st) return report_error("node", st.error());
  node::NodeOptions options;
  // Upload bodies are spooled next to the store (same filesystem, same owner).
  options.api = node::api_server_factory(std::filesystem::path(settings->data_dir) / "spool");
  auto opened = node::Node::open(*settings, options);
  if (!opened) return report_error("node", opened.error());
  node::Node& n = **opened;
  if (auto st = n.start(); !st) return report_error("node", st.error());
  auto status = n.service().status();
  if (!status) return report_error("node", status.error());

  std::cout << "cairn node " << CAIRN_VERSION << "\n"
            << "  node id   " << n.id().hex() << (n.identity_created() ? "  (new identity)" : "") << "\n"
            << "  data dir  " << settings->data_dir << "\n"
            << "  store     " << settings->data_dir << "/store (" << status->blobs_stored << " blobs)\n"
            << "  chain     " << status->chain.backend << " (head " << status->chain.head << ", chain id "
            << to_hex(ByteSpan(status->chain.chain_id).first(8)) << ")\n"
            << "  p2p       " << n.p2p_address() << "\n"
            << "  api       " << (n.api_address().empty() ? std::string("off") : "http://" + n.api_address()) << "\n"
            << (n.metrics_address().empty() ? std::string()
                                            : "  metrics   http://" + n.metrics_address() + "/metrics\n")
            << "  shards    "
            << (settings->shards ? std::to_string(settings->shards->size()) + " listed" : "auto (all)") << "\n"
            << "running; press Ctrl-C to stop" << std::endl;
  int sig = 0;
  while (sigwait(&set, &sig) == 0 && sig == SIGHUP) reload_logging(flags);
  std::cout << "received " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", stopping" << std::endl;
  if (auto st = n.stop(); !st) return report_error("node", st.error());
  std::cout << "stopped" << std::endl;
  return kExitOk;
}

}  // namespace

void register_node(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<NodeFlags>();
  auto* cmd = app.add_subcommand("node", "Run a storage node (settings: docs/config.md)");
  cmd->add_option("--data-dir", f->data_dir,
                  "Data directory: identity key, store, embedded chain (default $CAIRN_DATA_DIR, else "
                  "$XDG_DATA_HOME/cairn, else ~/.local/share/cairn)");
  cmd->add_option("--listen", f->listen, "Peer-to-peer address HOST:PORT (default 127.0.0.1:8640)");
  cmd->add_option("--advertise", f->advertise, "Address peers dial, registered on the chain (default: --listen)");
  cmd->add_option("--api", f->api, "HTTP API address HOST:PORT (default 127.0.0.1:8641; \"\" turns it off)");
  cmd->add_option("--chain", f->chain, "\"embedded\" (default) or a dev chain URL http://HOST:PORT");
  cmd->add_option("--network", f->network, "Genesis preset of a new embedded chain: default or localnet");
  cmd->add_option("--block-time-ms", f->block_time_ms, "Block interval of a new embedded chain, ms");
  cmd->add_option("--shards", f->shards, "Shards served: auto (default, every shard) or a list like 0-3,7");
  cmd->add_option("--bootstrap", f->bootstrap, "Peer HOST:PORT to dial at start (repeatable)");
  cmd->add_option("--min-replicas", f->min_replicas, "Confirmed replicas before an upload is acknowledged")
      ->check(CLI::Range(1u, 255u));
  cmd->add_option("--log-level", f->log_level,
                  "Log levels LEVEL[,MODULE=LEVEL...], LEVEL debug|info|warn|error|off (default $CAIRN_LOG, "
                  "else info)");
  cmd->add_option("--log-format", f->log_format, "Log lines as text (default) or json (one object per line)");
  cmd->add_option("--log-file", f->log_file, "Append the log to FILE instead of stderr; SIGHUP reopens it");
  cmd->add_option("--config", f->config, "TOML configuration file (flags and CAIRN_* variables override it)");
  cmd->add_option("--set", f->sets, "Any setting as KEY=VALUE, e.g. upload.min_replicas=3 (repeatable)");
  cmd->add_flag("--print-config", f->print_config, "Print the effective settings as TOML and exit");
  cmd->callback([f, &exit_code] { exit_code = run_node(*f); });
}

}  // namespace cairn::tools
