#include <CLI/CLI.hpp>

#include <iomanip>
#include <iostream>

#include "bench.hpp"
#include "commands.hpp"

namespace cairn::tools {

void register_bench(CLI::App& app, int& exit_code) {
  struct Settings {
    std::string workload;
    bool json = false;
    bool list = false;
    bench::Options options;
  };
  auto settings = std::make_shared<Settings>();
  auto* cmd =
      app.add_subcommand("bench", "Measure a workload against its raw baseline in the same run (medians and ratio)");
  cmd->add_option("WORKLOAD", settings->workload, "Workload name (see --list)");
  cmd->add_flag("--json", settings->json, "Print one JSON object");
  cmd->add_flag("--list", settings->list, "List the workloads");
  cmd->add_option("--rounds", settings->options.rounds, "Interleaved rounds per side")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--round-seconds", settings->options.round_seconds, "Minimum seconds per round")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 600.0));
  cmd->add_option("--seed", settings->options.seed, "Seed for generated data")->capture_default_str();
  cmd->add_option("--dir", settings->options.work_dir, "Scratch directory (default: a temp dir)");
  cmd->callback([settings, &exit_code] {
    const auto& all = bench::workloads();
    if (settings->list || settings->workload.empty()) {
      for (const auto& w : all) std::cout << std::left << std::setw(12) << w.name << w.description << "\n";
      exit_code = settings->list ? kExitOk : kExitUsage;
      return;
    }
    for (const auto& w : all) {
      if (w.name != settings->workload) continue;
      auto result = w.run(settings->options);
      if (!result) {
        exit_code = report_error("bench " + w.name, result.error());
        return;
      }
      if (settings->json) {
        std::cout << result->dump() << "\n";
      } else {
        std::cout << result->dump(2) << "\n";
      }
      exit_code = kExitOk;
      return;
    }
    exit_code = report_error("bench", Error{Errc::invalid_argument, "unknown workload '" + settings->workload +
                                                                        "' (cairn bench --list shows them)"});
  });
}

}  // namespace cairn::tools
