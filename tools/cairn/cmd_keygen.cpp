#include <CLI/CLI.hpp>

#include <iostream>

#include "cairn/p2p/identity.hpp"
#include "commands.hpp"

namespace cairn::tools {

void register_keygen(CLI::App& app, int& exit_code) {
  struct Settings {
    std::string path;
    bool force = false;
  };
  auto settings = std::make_shared<Settings>();
  auto* cmd = app.add_subcommand("keygen", "Create an ed25519 identity file (mode 0600) and print its node id");
  cmd->add_option("FILE", settings->path, "Where to write the key")->required();
  cmd->add_flag("--force", settings->force, "Replace an existing file");
  cmd->callback([settings, &exit_code] {
    SigningKey key = SigningKey::generate();
    if (auto s = p2p::save_identity(key, settings->path, settings->force); !s) {
      exit_code = report_error("keygen", s.error());
      return;
    }
    std::cout << key.public_key().hex() << "\n";
    exit_code = kExitOk;
  });
}

}  // namespace cairn::tools
