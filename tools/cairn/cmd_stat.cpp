#include <CLI/CLI.hpp>

#include <iostream>

#include "commands.hpp"
#include "node_client.hpp"
#include "progress.hpp"

namespace cairn::tools {

void register_stat(CLI::App& app, int& exit_code) {
  struct Settings {
    std::string id;
    std::string node;
    bool json = false;
  };
  auto settings = std::make_shared<Settings>();
  auto* cmd = app.add_subcommand("stat", "Show what an id is: file or blob, size, registry entry, replicas");
  add_id_argument(cmd, settings->id);
  add_node_option(cmd, settings->node);
  cmd->add_flag("--json", settings->json, "One JSON object: the stat, with the blob status under \"status\"");
  cmd->callback([settings, &exit_code] {
    auto fail = [&](const Error& e) { exit_code = report_error("stat", e); };
    auto target = stat_object(settings->node, settings->id);
    if (!target) return fail(target.error());
    const BlobId& id = target->id;
    const json& info = target->info;
    auto status = target->client->get_json("/v1/blobs/" + id.hex() + "/status");
    if (!status) return fail(status.error());
    if (settings->json) {
      json out = info;
      out["status"] = *status;
      std::cout << out.dump() << std::endl;
      exit_code = kExitOk;
      return;
    }
    const bool is_file = str_field(info, "kind") == "file";
    const uint64_t size = u64_field(info, "size");
    std::cout << "id        " << id.hex() << "\n"
              << "uri       " << str_field(info, "uri", "cairn://" + id.hex()) << "\n"
              << "kind      " << (is_file ? "file" : "blob") << "\n"
              << "size      " << format_bytes(size) << " (" << size << " bytes)\n";
    if (is_file) {
      const uint64_t stored = u64_field(info, "stored_size");
      std::cout << "stored    " << format_bytes(stored) << " (" << str_field(info, "compression", "none") << ")\n"
                << "sha256    " << str_field(info, "sha256") << "\n"
                << "blobs     " << u64_field(info, "data_blobs") << " data + manifest\n";
    }
    std::cout << (is_file ? "manifest  " : "index     ") << "index " << u64_field(*status, "index") << ", shard "
              << u64_field(*status, "shard") << ", registered in block " << u64_field(*status, "registered_in") << "\n";
    const json& holders = list_field(*status, "holders");
    std::cout << "replicas  " << holders.size()
              << (bool_field(*status, "pending") ? " (upload still waiting for replicas)" : "") << "\n";
    for (const json& h : holders) {
      const std::string endpoint = str_field(h, "endpoint");
      std::cout << "          " << str_field(h, "node") << (endpoint.empty() ? "" : "  " + endpoint)
                << (bool_field(h, "local") ? "  (this node)" : "") << "\n";
    }
    std::cout << std::flush;
    exit_code = kExitOk;
  });
}

}  // namespace cairn::tools
