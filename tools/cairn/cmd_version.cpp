#include <openssl/opensslv.h>
#include <rocksdb/version.h>
#include <sodium.h>
#include <zstd.h>
#include <CLI/CLI.hpp>

#include <iostream>

#include "commands.hpp"

namespace cairn::tools {

void register_version(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("version", "Print the cairn version and the library versions it runs on");
  cmd->callback([&exit_code] {
    std::cout << "cairn " << CAIRN_VERSION << "\n"
              << "  rocksdb " << ROCKSDB_MAJOR << "." << ROCKSDB_MINOR << "." << ROCKSDB_PATCH << "\n"
              << "  libsodium " << sodium_version_string() << "\n"
              << "  zstd " << ZSTD_versionString() << "\n"
              << "  " << OPENSSL_VERSION_TEXT << "\n";
    exit_code = kExitOk;
  });
}

}  // namespace cairn::tools
