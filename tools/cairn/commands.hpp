#pragma once
// Subcommand registration for the `cairn` binary. Each command lives in its
// own cmd_<name>.cpp: it declares its flags into a Settings struct and, when
// selected, runs and stores its exit code in `exit_code`.

#include <string>

#include "cairn/core/result.hpp"

namespace CLI {
class App;
}

namespace cairn::tools {

// Documented exit codes (docs/cli.md). Stable: scripts depend on them.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,       // the operation ran and failed (invalid proof, short count, not found)
  kExitUsage = 2,        // bad flags or arguments
  kExitEnvironment = 3,  // local I/O or configuration problem (data dir, key file, disk)
  kExitCorruption = 4,   // stored or received data failed its checksum or commitment
  kExitUnavailable = 5,  // a node or peer was unreachable, busy or timed out
};

int exit_code_for(const Error& e);
// Prints "cairn <command>: <message>" to stderr and returns exit_code_for(e).
int report_error(const std::string& command, const Error& e);

void register_version(CLI::App& app, int& exit_code);
void register_keygen(CLI::App& app, int& exit_code);
void register_id(CLI::App& app, int& exit_code);
void register_node(CLI::App& app, int& exit_code);
void register_bench(CLI::App& app, int& exit_code);
void register_devchain(CLI::App& app, int& exit_code);
void register_verify(CLI::App& app, int& exit_code);
void register_put(CLI::App& app, int& exit_code);
void register_get(CLI::App& app, int& exit_code);
void register_stat(CLI::App& app, int& exit_code);
void register_status(CLI::App& app, int& exit_code);
void register_proof(CLI::App& app, int& exit_code);
void register_localnet(CLI::App& app, int& exit_code);

// Whether a command may write binary output to `output` (its -o value):
// ok for a file, for "-" (stdout, asked for explicitly) and for stdout that
// is not a terminal; invalid_argument saying how to get the bytes when
// `output` is empty and stdout is a terminal, where binary would scramble it.
Status binary_output_allowed(const std::string& output, const std::string& what);

// Default data directory: $CAIRN_DATA_DIR, else $XDG_DATA_HOME/cairn, else
// $HOME/.local/share/cairn, else ./cairn-data.
std::string default_data_dir();

}  // namespace cairn::tools
