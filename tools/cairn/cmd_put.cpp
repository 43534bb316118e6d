#include <CLI/CLI.hpp>

#include <iostream>

#include "commands.hpp"
#include "node_client.hpp"
#include "progress.hpp"

namespace cairn::tools {

namespace {

uint64_t count_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// The bar's status for one upload progress event of the node
// (docs/http-api.md, "Upload progress"); "" for an event it does not know.
std::string upload_phase_text(const json& event) {
  const std::string name = str_field(event, "event");
  const std::string blobs = std::to_string(count_field(event, "blobs"));
  // Short: at 60 columns the status shares the line with the file name.
  if (name == "received") return "received, encoding";
  if (name == "registering") {
    if (!event.value("encoded", false)) return "encoding: " + blobs + (blobs == "1" ? " blob" : " blobs");
    return "registering " + std::to_string(count_field(event, "registered")) + "/" + blobs + " blobs";
  }
  const std::string replicas =
      "replicas " + std::to_string(count_field(event, "confirmed")) + "/" + std::to_string(count_field(event, "need"));
  if (name == "replicating") {
    return replicas + ", blobs " + std::to_string(count_field(event, "acknowledged")) + "/" + blobs + " done";
  }
  if (name == "acknowledged") return "acknowledged, " + replicas;
  return {};
}

}  // namespace

void register_put(CLI::App& app, int& exit_code) {
  struct Settings {
    std::vector<std::string> files;
    std::string node;
    std::string token;
    std::string compress = "auto";
    uint32_t min_replicas = 0;
    bool json = false;
  };
  auto settings = std::make_shared<Settings>();
  auto* cmd =
      app.add_subcommand("put", "Upload files to a node; prints each file's id and cairn:// URI once it is stored");
  cmd->add_option("FILE", settings->files, "Files to upload")->required()->check(CLI::ExistingFile);
  add_node_option(cmd, settings->node);
  cmd->add_option("--token", settings->token, "API token, needed when the node's API listens beyond loopback")
      ->envname("CAIRN_API_TOKEN");
  cmd->add_option("--compress", settings->compress,
                  "zstd before cutting into blobs: auto (when it shrinks the file), never, always "
                  "(part of the file id; `cairn id` assumes auto)")
      ->check(CLI::IsMember({"auto", "never", "always"}))
      ->capture_default_str();
  cmd->add_option("--min-replicas", settings->min_replicas,
                  "Serving nodes that must confirm a replica before the upload is acknowledged "
                  "(default: the node's upload.min_replicas)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", settings->json, "One JSON object per file (JSON Lines), no progress bar");
  cmd->callback([settings, &exit_code] {
    auto client = NodeClient::create(settings->node, settings->token);
    if (!client) {
      exit_code = report_error("put", client.error());
      return;
    }
    std::string path = "/v1/files?compress=" + settings->compress;
    if (settings->min_replicas > 0) path += "&min_replicas=" + std::to_string(settings->min_replicas);
    const bool bars = !settings->json && stderr_is_terminal();
    for (const std::string& file : settings->files) {
      std::error_code ec;
      const uint64_t size = std::filesystem::file_size(file, ec);
      ProgressBar bar(file, ec ? 0 : size, bars);
      NodeClient::UploadEvent phases;
      if (bars) {
        phases = [&](const json& event) {
          if (std::string status = upload_phase_text(event); !status.empty()) bar.set_status(std::move(status));
        };
      }
      auto put = (*client)->upload(
          path, file, [&](uint64_t sent) { bar.update(sent); }, [&] { bar.set_status("sent; the node is storing it"); },
          phases);
      if (!put) {
        bar.clear();
        exit_code = report_error("put", with_context(put.error(), file));
        return;
      }
      bar.finish();
      const std::string id = str_field(*put, "id");
      if (settings->json) {
        json line = *put;
        line["file"] = file;
        std::cout << line.dump() << std::endl;
      } else {
        std::cout << id << "  " << str_field(*put, "uri", "cairn://" + id) << "  " << file << std::endl;
      }
    }
    exit_code = kExitOk;
  });
}

}  // namespace cairn::tools
