#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "commands.hpp"

namespace cairn::tools {

int exit_code_for(const Error& e) {
  switch (e.code) {
    case Errc::ok: return kExitOk;
    case Errc::invalid_argument: return kExitUsage;
    case Errc::io_error: return kExitEnvironment;
    case Errc::corruption: return kExitCorruption;
    case Errc::busy:
    case Errc::timeout:
    case Errc::cancelled: return kExitUnavailable;
    default: return kExitFailed;
  }
}

int report_error(const std::string& command, const Error& e) {
  std::cerr << "cairn " << command << ": " << e.message << "\n";
  return exit_code_for(e);
}

std::string default_data_dir() {
  if (const char* d = std::getenv("CAIRN_DATA_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/cairn";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/share/cairn";
  return "cairn-data";
}

}  // namespace cairn::tools

int main(int argc, char** argv) {
  using namespace cairn::tools;
  // A peer closing a socket (HTTP client or server, JSON-RPC) must turn a
  // write into an EPIPE error the code handles, not kill the process:
  // cpp-httplib writes without MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"cairn: peer-to-peer storage rollup node"};
  app.name("cairn");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(CAIRN_VERSION));
  int exit_code = kExitOk;
  register_version(app, exit_code);
  register_keygen(app, exit_code);
  register_id(app, exit_code);
  register_node(app, exit_code);
  register_bench(app, exit_code);
  register_devchain(app, exit_code);
  register_verify(app, exit_code);
  register_put(app, exit_code);
  register_get(app, exit_code);
  register_stat(app, exit_code);
  register_status(app, exit_code);
  register_proof(app, exit_code);
  register_localnet(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  return exit_code;
}
