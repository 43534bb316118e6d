#pragma once
// The `cairn bench` harness. A workload measures our path and the raw
// baseline in the same run, interleaving their rounds so machine noise hits
// both alike, and reports medians and their ratio as one JSON object.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/core/result.hpp"

namespace cairn::bench {

struct Options {
  int rounds = 7;              // interleaved measurement rounds per side
  double round_seconds = 0.5;  // minimum wall time per round
  uint64_t seed = 1;           // for generated data
  std::string work_dir;        // scratch space (empty: a fresh temp dir)
};

// One measured side: `run_once()` does one unit of work and returns the bytes
// (or items) it processed. Rounds repeat it until round_seconds pass.
struct Side {
  std::string name;
  std::function<uint64_t()> run_once;
};

struct SideStats {
  std::vector<double> per_second;  // one rate per round
  double median = 0;
  // Totals over the timed rounds: units of work (scaled like the rates),
  // wall seconds, and this process's CPU seconds (every thread: the side's
  // own, and any background work of the process running meanwhile, such as
  // RocksDB compactions). The report prints cores_busy = cpu / wall and
  // cpu_ms_per_unit (per MB for MB/s): the cost of the path, which noise
  // from other processes on the machine inflates less than the rate.
  double units = 0;
  double wall_seconds = 0;
  double cpu_seconds = 0;
};

// Runs ours and baseline round-robin for opts.rounds rounds each.
std::pair<SideStats, SideStats> measure_pair(const Options& opts, Side& ours, Side& baseline);

// The standard result object:
// {"workload", "unit", "ours": {"name","median","rounds"}, "baseline": {...},
//  "ratio": ours.median / baseline.median, "rounds", "round_seconds"}
nlohmann::json pair_report(const std::string& workload, const std::string& unit, const Side& ours,
                           const SideStats& ours_stats, const Side& baseline, const SideStats& baseline_stats,
                           const Options& opts);

double median(std::vector<double> v);

// Multiplies every rate and the median by `factor` (e.g. 1e-6: bytes/s to MB/s).
void scale(SideStats& stats, double factor);

// Runs every side round-robin for opts.rounds rounds, rotating which side
// goes first each round so drift favours none; one stats entry per side.
std::vector<SideStats> measure_sides(const Options& opts, const std::vector<Side*>& sides);

// {"name", "median", "rounds"} of one side, rates multiplied by `scale`
// (e.g. 1e-6 to report bytes/s as MB/s).
nlohmann::json side_report(const Side& side, const SideStats& stats, double scale = 1.0);

// CPU time of the calling thread, seconds: what a piece of work costs on a
// core of its own, whatever else a shared machine runs meanwhile (valid for
// work that does not wait on the disk or the network).
double thread_cpu_seconds();

// Scratch space for a workload: `requested`/<name> (emptied first) when a
// --dir was given, else a fresh temporary directory removed afterwards.
struct ScratchDir {
  std::filesystem::path path;
  bool owned = false;
  ScratchDir(const std::string& requested, const std::string& name);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

struct Workload {
  std::string name;
  std::string description;
  std::function<Result<nlohmann::json>(const Options&)> run;
};

// Every workload, in the order `cairn bench --list` shows them.
const std::vector<Workload>& workloads();

// Workload factories (one per file in bench/workloads/).
Workload codec_workload();
Workload store_workload();
Workload gossip_workload();
Workload transport_workload();
Workload chain_workload();
Workload challenge_workload();
Workload verify_workload();
Workload put_workload();
Workload get_workload();
Workload sync_workload();
Workload api_workload();
Workload e2e_workload();

}  // namespace cairn::bench
