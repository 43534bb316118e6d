#include <CLI/CLI.hpp>

#include <iostream>

#include "commands.hpp"
#include "node_client.hpp"
#include "progress.hpp"

namespace cairn::tools {
namespace {

std::string shard_list(const json& shards) {
  std::string out;
  for (const json& s : shards) {
    if (!s.is_number_unsigned()) continue;
    if (!out.empty()) out += ", ";
    out += std::to_string(s.get<uint64_t>());
  }
  return out.empty() ? "none" : out;
}

void print_status(const json& s) {
  const json& chain = obj_field(s, "chain");
  const json& scrub = obj_field(s, "scrub");
  const json& peers = list_field(s, "peers");
  std::cout << "node      " << str_field(s, "id") << "\n"
            << "version   " << str_field(s, "version") << (bool_field(s, "stopping") ? "  (stopping)" : "") << "\n"
            << "uptime    " << format_duration(std::chrono::seconds(u64_field(s, "uptime_ms") / 1000)) << "\n"
            << "p2p       " << str_field(s, "p2p_address");
  const std::string advertised = str_field(s, "advertised_address");
  if (!advertised.empty() && advertised != str_field(s, "p2p_address"))
    std::cout << " (advertised " << advertised << ")";
  std::cout << "\n"
            << "api       " << str_field(s, "api_address") << "\n"
            << "chain     " << str_field(chain, "backend") << ", head " << u64_field(chain, "head") << ", "
            << u64_field(chain, "blob_count") << " blobs registered, this node "
            << (bool_field(chain, "registered") ? "registered" : "not registered yet") << "\n"
            << "shards    " << shard_list(list_field(s, "shards")) << "\n"
            << "stored    " << u64_field(s, "blobs_stored") << " blobs, " << format_bytes(u64_field(s, "bytes_stored"))
            << " sealed\n"
            << "pending   " << u64_field(s, "pending_uploads") << " blobs waiting for replicas\n"
            << "peers     " << peers.size() << "\n";
  for (const json& p : peers) {
    std::cout << "          " << str_field(p, "id").substr(0, 16) << "  " << str_field(p, "address")
              << (bool_field(p, "outbound") ? "  out" : "  in") << "  shards " << shard_list(list_field(p, "shards"));
    if (const uint64_t rtt = u64_field(p, "rtt_us"); rtt > 0)
      std::cout << "  rtt " << static_cast<double>(rtt) / 1000.0 << " ms";
    std::cout << "\n";
  }
  for (const json& y : list_field(s, "sync")) {
    const std::string state = str_field(y, "state", bool_field(y, "active") ? "syncing" : "");
    std::cout << "sync      shard " << u64_field(y, "shard") << ": " << u64_field(y, "held") << "/"
              << u64_field(y, "registered") << " held" << (state.empty() ? "" : ", " + state) << ", "
              << u64_field(y, "fetched") << " fetched";
    if (bool_field(y, "active")) {
      std::cout << " (" << format_bytes(static_cast<uint64_t>(y.value("bytes_per_second", 0.0))) << "/s)";
    }
    std::cout << ", " << u64_field(y, "failed") << " failed attempts\n";
  }
  std::cout << "scrub     " << u64_field(scrub, "passes") << " passes, " << u64_field(scrub, "fragments_checked")
            << " fragments checked, " << u64_field(scrub, "fragments_bad") << " bad, "
            << u64_field(scrub, "repaired_local") + u64_field(scrub, "repaired_remote") << " repaired, "
            << u64_field(scrub, "unrepairable") << " unrepairable\n";
  // The latest finished storage-challenge epoch of each served shard.
  for (const json& c : list_field(s, "challenges")) {
    std::cout << "challenge shard " << u64_field(c, "shard") << " epoch " << u64_field(c, "epoch") << " ("
              << u64_field(c, "blob_count") << " blobs): own " << str_field(c, "own");
    if (const std::string d = str_field(c, "own_detail"); !d.empty()) std::cout << " (" << d << ")";
    std::cout << ", walk " << c.value("walk_seconds", 0.0) * 1000.0 << " ms; " << u64_field(c, "valid") << " valid, "
              << list_field(c, "invalid").size() << " invalid, " << list_field(c, "missing").size() << " missing\n";
    for (const char* kind : {"invalid", "missing"}) {
      for (const json& p : list_field(c, kind)) {
        std::cout << "          " << kind << " " << str_field(p, "node").substr(0, 16) << "  "
                  << str_field(p, "endpoint") << "  " << str_field(p, "reason") << "\n";
      }
    }
  }
  std::cout << std::flush;
}

}  // namespace

void register_status(CLI::App& app, int& exit_code) {
  struct Settings {
    std::string node;
    bool json = false;
  };
  auto settings = std::make_shared<Settings>();
  auto* cmd = app.add_subcommand(
      "status", "Show a running node: id, chain head, shards, peers, bytes stored, sync and scrub progress");
  add_node_option(cmd, settings->node);
  cmd->add_flag("--json", settings->json, "The node's status as one JSON object");
  cmd->callback([settings, &exit_code] {
    auto client = NodeClient::create(settings->node);
    if (!client) {
      exit_code = report_error("status", client.error());
      return;
    }
    auto status = (*client)->get_json("/v1/status");
    if (!status) {
      exit_code = report_error("status", status.error());
      return;
    }
    if (settings->json) {
      std::cout << status->dump() << std::endl;
    } else {
      print_status(*status);
    }
    exit_code = kExitOk;
  });
}

}  // namespace cairn::tools
