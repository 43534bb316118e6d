#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <stdexcept>

#include <sys/resource.h>

#include "bench.hpp"

namespace cairn::bench {
double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

ScratchDir::ScratchDir(const std::string& requested, const std::string& name) {
  if (!requested.empty()) {
    path = std::filesystem::path(requested) / ("bench-" + name);
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    return;
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / ("cairn-bench-" + name + "-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
  owned = true;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  if (owned) std::filesystem::remove_all(path, ec);
}

void scale(SideStats& stats, double factor) {
  for (double& v : stats.per_second) v *= factor;
  stats.median *= factor;
  stats.units *= factor;
}

double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

namespace {
// One timed round of `side`, recorded into `stats`.
void run_round(const Options& opts, Side& side, SideStats& stats) {
  using clock = std::chrono::steady_clock;
  const double cpu_start = process_cpu_seconds();
  const auto start = clock::now();
  const auto min = std::chrono::duration<double>(opts.round_seconds);
  uint64_t units = 0;
  std::chrono::duration<double> elapsed{};
  do {
    units += side.run_once();
    elapsed = clock::now() - start;
  } while (elapsed < min);
  stats.per_second.push_back(static_cast<double>(units) / elapsed.count());
  stats.units += static_cast<double>(units);
  stats.wall_seconds += elapsed.count();
  stats.cpu_seconds += process_cpu_seconds() - cpu_start;
}
}  // namespace

std::pair<SideStats, SideStats> measure_pair(const Options& opts, Side& ours, Side& baseline) {
  SideStats a, b;
  // One untimed warm-up call each (page faults, table builds, caches).
  ours.run_once();
  baseline.run_once();
  for (int r = 0; r < opts.rounds; ++r) {
    // Alternate which side goes first so drift does not favour one.
    if (r % 2 == 0) {
      run_round(opts, ours, a);
      run_round(opts, baseline, b);
    } else {
      run_round(opts, baseline, b);
      run_round(opts, ours, a);
    }
  }
  a.median = median(a.per_second);
  b.median = median(b.per_second);
  return {a, b};
}

std::vector<SideStats> measure_sides(const Options& opts, const std::vector<Side*>& sides) {
  std::vector<SideStats> stats(sides.size());
  for (Side* s : sides) s->run_once();  // untimed warm-up
  for (int r = 0; r < opts.rounds; ++r) {
    for (size_t k = 0; k < sides.size(); ++k) {
      const size_t i = (k + static_cast<size_t>(r)) % sides.size();
      run_round(opts, *sides[i], stats[i]);
    }
  }
  for (auto& st : stats) st.median = median(st.per_second);
  return stats;
}

nlohmann::json side_report(const Side& side, const SideStats& stats, double scale) {
  std::vector<double> rounds;
  for (double v : stats.per_second) rounds.push_back(v * scale);
  nlohmann::json j{{"name", side.name}, {"median", stats.median * scale}, {"rounds", rounds}};
  if (stats.wall_seconds > 0) j["cores_busy"] = stats.cpu_seconds / stats.wall_seconds;
  if (stats.units > 0) j["cpu_ms_per_unit"] = stats.cpu_seconds * 1e3 / (stats.units * scale);
  return j;
}

nlohmann::json pair_report(const std::string& workload, const std::string& unit, const Side& ours,
                           const SideStats& ours_stats, const Side& baseline, const SideStats& baseline_stats,
                           const Options& opts) {
  return nlohmann::json{
      {"workload", workload},
      {"unit", unit},
      {"ours", side_report(ours, ours_stats)},
      {"baseline", side_report(baseline, baseline_stats)},
      {"ratio", baseline_stats.median > 0 ? ours_stats.median / baseline_stats.median : 0.0},
      {"rounds", opts.rounds},
      {"round_seconds", opts.round_seconds},
  };
}

const std::vector<Workload>& workloads() {
  static const std::vector<Workload> all = {
      codec_workload(),     store_workload(),     chain_workload(),  gossip_workload(),
      transport_workload(), challenge_workload(), verify_workload(), put_workload(),
      get_workload(),       sync_workload(),      api_workload(),    e2e_workload(),
  };
  return all;
}

}  // namespace cairn::bench
