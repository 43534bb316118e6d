#include <CLI/CLI.hpp>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cairn/erasure/file.hpp"
#include "cairn/erasure/mapped_file.hpp"
#include "commands.hpp"

namespace cairn::tools {

void register_id(CLI::App& app, int& exit_code) {
  struct Settings {
    std::vector<std::string> files;
    bool json = false;
    bool no_compress = false;
  };
  auto settings = std::make_shared<Settings>();
  auto* cmd = app.add_subcommand(
      "id", "Print the file id an upload of FILE would get, computed offline (nothing is stored or sent)");
  cmd->add_option("FILE", settings->files, "Files to hash")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--json", settings->json, "One JSON object per file");
  cmd->add_flag("--no-compress", settings->no_compress, "Id for an upload made with compression disabled");
  cmd->callback([settings, &exit_code] {
    auto codec = erasure::Codec::create(erasure::NetworkParams::defaults());
    if (!codec) {
      exit_code = report_error("id", codec.error());
      return;
    }
    erasure::FileOptions options;
    if (settings->no_compress) options.compress = erasure::FileOptions::Compress::never;
    for (const auto& path : settings->files) {
      auto file = erasure::MappedFile::open(path);
      if (!file) {
        exit_code = report_error("id", file.error());
        return;
      }
      auto summary =
          erasure::encode_file(**codec, (*file)->bytes(), options, [](const erasure::BlobPiece&) { return Status{}; });
      if (!summary) {
        exit_code = report_error("id", with_context(summary.error(), path));
        return;
      }
      const std::string id = summary->id.hex();
      if (settings->json) {
        std::cout << nlohmann::json{{"file", path},
                                    {"id", id},
                                    {"uri", "cairn://" + id},
                                    {"size", summary->size},
                                    {"stored_size", summary->stored_size},
                                    {"compression",
                                     summary->compression == erasure::Compression::zstd ? "zstd" : "none"},
                                    {"sha256", to_hex(summary->sha256)},
                                    {"data_blobs", summary->data_blobs},
                                    {"manifest_blobs", summary->manifest_blobs}}
                         .dump()
                  << "\n";
      } else if (settings->files.size() == 1) {
        std::cout << id << "\n";
      } else {
        std::cout << id << "  " << path << "\n";
      }
    }
    exit_code = kExitOk;
  });
}

}  // namespace cairn::tools
