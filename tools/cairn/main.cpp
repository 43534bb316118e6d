#include <CLI/CLI.hpp>

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cairn/core/log.hpp"
#include "commands.hpp"

namespace cairn::tools {

int exit_code_for(const Error& e) {
  switch (e.code) {
    case Errc::ok:
      return kExitOk;
    case Errc::invalid_argument:
      return kExitUsage;
    case Errc::io_error:
      return kExitEnvironment;
    case Errc::corruption:
      return kExitCorruption;
    case Errc::busy:
    case Errc::timeout:
    case Errc::cancelled:
      return kExitUnavailable;
    default:
      return kExitFailed;
  }
}

namespace {
bool json_errors = false;  // set once by main before any command runs
}  // namespace

int report_error(const std::string& command, const Error& e) {
  const std::string where = command.empty() ? "cairn" : "cairn " + command;
  if (json_errors) {
    const nlohmann::json j = {{"error",
                               {{"code", std::string(errc_name(e.code))},
                                {"message", where + ": " + e.message},
                                {"exit_code", exit_code_for(e)}}}};
    std::cout << j.dump() << std::endl;
  } else {
    std::cerr << where << ": " << e.message << "\n";
  }
  return exit_code_for(e);
}

Status binary_output_allowed(const std::string& output, const std::string& what) {
  if (!output.empty() || ::isatty(STDOUT_FILENO) == 0) return {};
  return make_error(Errc::invalid_argument,
                    what +
                        " is binary and stdout is a terminal; give -o FILE, redirect stdout, or -o - to print it "
                        "anyway");
}

std::string default_data_dir() {
  if (const char* d = std::getenv("CAIRN_DATA_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/cairn";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/share/cairn";
  return "cairn-data";
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// What the command line names before CLI11 parses it: the deepest
// subcommand, its path ("localnet down"), and the first word that should
// have been a subcommand of it but is none ("" when there is none).
struct Selected {
  CLI::App* app = nullptr;
  std::string path;
  std::string unknown;
};
Selected selected_command(CLI::App& app, int argc, char** argv) {
  Selected s{&app, "", ""};
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") break;
    if (word.empty() || word[0] == '-') continue;
    if (s.app->get_subcommands({}).empty()) break;  // a leaf: the rest are its arguments
    CLI::App* sub = nullptr;
    for (CLI::App* c : s.app->get_subcommands({})) {
      if (c->check_name(word)) sub = c;
    }
    if (sub == nullptr) {
      // Words after options may be option values; only a leading word
      // that cannot be one is known to be a mistyped command.
      if (i == 1 || (argv[i - 1][0] != '-')) s.unknown = word;
      break;
    }
    s.app = sub;
    s.path += (s.path.empty() ? "" : " ") + word;
  }
  return s;
}

// "did you mean 'status'?" for the nearest subcommand of `parent`, if any
// is close (at most a third of the word's letters off, and at least 2).
std::string suggestion(CLI::App& parent, const std::string& word) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const CLI::App* sub : parent.get_subcommands({})) {
    const size_t d = edit_distance(word, sub->get_name());
    if (d < best_d) {
      best_d = d;
      best = sub->get_name();
    }
  }
  return best.empty() ? "" : "; did you mean '" + best + "'?";
}

bool has_json_flag(int argc, char** argv) {
  for (int i = 1; i < argc && std::string(argv[i]) != "--"; ++i) {
    if (std::string(argv[i]) == "--json") return true;
  }
  return false;
}

}  // namespace
}  // namespace cairn::tools

int main(int argc, char** argv) {
  using namespace cairn;
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
  const Selected selected = selected_command(app, argc, argv);
  json_errors = selected.app->get_option_no_throw("--json") != nullptr && has_json_flag(argc, argv);
  if (!selected.unknown.empty()) {
    return report_error(selected.path, Error{Errc::invalid_argument,
                                             "unknown command '" + selected.unknown + "'" +
                                                 suggestion(*selected.app, selected.unknown) + " (see cairn " +
                                                 (selected.path.empty() ? "" : selected.path + " ") + "--help)"});
  }
  // Every command logs through CAIRN_LOG: a value the logger cannot read is
  // a usage error, not a silent "info". `cairn node` checks it with its
  // other settings (where --log-level may override it).
  if (const char* spec = std::getenv("CAIRN_LOG"); spec != nullptr && selected.path.rfind("node", 0) != 0) {
    auto levels = log::parse_level_spec(spec);
    if (!levels) {
      return report_error(selected.path,
                          Error{Errc::invalid_argument, "invalid log level '" + std::string(spec) +
                                                            "' in environment CAIRN_LOG: " + levels.error().message});
    }
    log::set_levels(std::move(*levels));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11's message as "cairn <command>: <what was wrong>".
    std::string what = e.what();
    // "The following ..." reads "the following ..." after the colon; "ID is ..." stays.
    if (what.size() > 1 && std::islower(static_cast<unsigned char>(what[1]))) {
      what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
    }
    report_error(selected.path,
                 Error{Errc::invalid_argument,
                       what + " (see cairn " + (selected.path.empty() ? "" : selected.path + " ") + "--help)"});
    return kExitUsage;
  }
  return exit_code;
}
