#include "node/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <dirent.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace cairn::node::metrics {
namespace {

enum Type : int { kCounter = 0, kGauge = 1, kHistogram = 2 };

constexpr std::string_view type_name(int t) {
  switch (t) {
    case kCounter:
      return "counter";
    case kGauge:
      return "gauge";
    default:
      return "histogram";
  }
}

bool valid_name(std::string_view s, bool allow_colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

bool valid_label_name(const std::string& k) { return valid_name(k, false) && k.rfind("__", 0) != 0 && k != "le"; }

bool labels_valid(const Labels& labels) {
  return std::all_of(labels.begin(), labels.end(), [](const auto& kv) { return valid_label_name(kv.first); });
}

void check_labels(const Labels& labels, const std::string& metric) {
  for (const auto& [k, v] : labels) {
    if (!valid_label_name(k)) throw std::logic_error("metric " + metric + ": invalid label name '" + k + "'");
  }
}

std::string render_labels(const Labels& labels, const std::pair<std::string, std::string>* extra = nullptr) {
  if (labels.empty() && extra == nullptr) return {};
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::string& k, const std::string& v) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    out += escape_label_value(v);
    out += '"';
  };
  for (const auto& [k, v] : labels) add(k, v);
  if (extra != nullptr) add(extra->first, extra->second);
  out += '}';
  return out;
}

}  // namespace

// ---- Histogram ----

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  bounds_.erase(std::remove_if(bounds_.begin(), bounds_.end(), [](double b) { return std::isinf(b) || std::isnan(b); }),
                bounds_.end());
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) noexcept {
  // Buckets are few (<= ~20): a linear scan beats a binary search's branches.
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  s.count = running;
  return s;
}

std::vector<double> Histogram::latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

std::vector<double> Histogram::size_buckets() {
  std::vector<double> b;
  for (double v = 1024; v <= 1024.0 * 1024 * 1024; v *= 4) b.push_back(v);
  return b;
}

ScopedTimer::ScopedTimer(Histogram& h, const Clock& clock) noexcept : h_(h), clock_(clock), start_(clock.now()) {}
ScopedTimer::~ScopedTimer() { h_.observe(std::chrono::duration<double>(clock_.now() - start_).count()); }

// ---- Registry ----

struct Registry::Family {
  std::string name;
  std::string help;
  int type = kCounter;
  // One series per label set; std::map keeps them in label order and the
  // unique_ptrs keep references stable.
  std::map<Labels, std::unique_ptr<Counter>> counters;
  std::map<Labels, std::unique_ptr<Gauge>> gauges;
  std::map<Labels, std::unique_ptr<Histogram>> histograms;
  std::map<Labels, std::function<double()>> fns;
  SeriesFn series;  // gauge_series_fn; empty when none
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Family& Registry::family(const std::string& name, const std::string& help, int type) {
  if (!valid_name(name, true)) throw std::logic_error("invalid metric name '" + name + "'");
  auto it = families_.find(name);
  if (it == families_.end()) {
    auto f = std::make_unique<Family>();
    f->name = name;
    f->help = help;
    f->type = type;
    it = families_.emplace(name, std::move(f)).first;
  } else if (it->second->type != type) {
    throw std::logic_error("metric " + name + " registered as " + std::string(type_name(it->second->type)) +
                           " and as " + std::string(type_name(type)));
  }
  return *it->second;
}

Counter& Registry::counter(const std::string& name, const std::string& help, Labels labels) {
  check_labels(labels, name);
  std::lock_guard lock(mu_);
  auto& f = family(name, help, kCounter);
  auto& slot = f.counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, Labels labels) {
  check_labels(labels, name);
  std::lock_guard lock(mu_);
  auto& f = family(name, help, kGauge);
  auto& slot = f.gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, std::vector<double> upper_bounds,
                               Labels labels) {
  check_labels(labels, name);
  std::lock_guard lock(mu_);
  auto& f = family(name, help, kHistogram);
  auto& slot = f.histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(std::move(upper_bounds));
  return *slot;
}

void Registry::gauge_fn(const std::string& name, const std::string& help, std::function<double()> read, Labels labels) {
  check_labels(labels, name);
  std::lock_guard lock(mu_);
  family(name, help, kGauge).fns[labels] = std::move(read);
}

void Registry::counter_fn(const std::string& name, const std::string& help, std::function<double()> read,
                          Labels labels) {
  check_labels(labels, name);
  std::lock_guard lock(mu_);
  family(name, help, kCounter).fns[labels] = std::move(read);
}

void Registry::gauge_series_fn(const std::string& name, const std::string& help, SeriesFn read) {
  std::lock_guard lock(mu_);
  family(name, help, kGauge).series = std::move(read);
}

void Registry::remove_fns(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  it->second->fns.clear();
  it->second->series = nullptr;
}

std::string Registry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(families_.size() * 160);
  for (const auto& [name, f] : families_) {
    // A series callback may return no series (no shard served yet): the
    // family is then left out like an empty one.
    std::vector<std::pair<Labels, double>> computed;
    if (f->series) computed = f->series();
    if (f->counters.empty() && f->gauges.empty() && f->histograms.empty() && f->fns.empty() && computed.empty()) {
      continue;
    }
    out += "# HELP " + name + " ";
    // HELP text escapes backslash and newline.
    for (char c : f->help) {
      if (c == '\\')
        out += "\\\\";
      else if (c == '\n')
        out += "\\n";
      else
        out += c;
    }
    out += "\n# TYPE " + name + " " + std::string(type_name(f->type)) + "\n";
    // Merge stored and callback series in label order.
    std::map<Labels, std::string> lines;
    for (const auto& [labels, c] : f->counters) {
      lines[labels] = name + render_labels(labels) + " " + format_value(static_cast<double>(c->value())) + "\n";
    }
    for (const auto& [labels, g] : f->gauges) {
      lines[labels] = name + render_labels(labels) + " " + format_value(g->value()) + "\n";
    }
    for (const auto& [labels, fn] : f->fns) {
      lines[labels] = name + render_labels(labels) + " " + format_value(fn ? fn() : 0.0) + "\n";
    }
    for (const auto& [labels, value] : computed) {
      if (!labels_valid(labels)) continue;
      lines[labels] = name + render_labels(labels) + " " + format_value(value) + "\n";
    }
    for (const auto& [labels, h] : f->histograms) {
      const auto s = h->snapshot();
      std::string block;
      for (size_t i = 0; i <= s.upper_bounds.size(); ++i) {
        const std::pair<std::string, std::string> le{
            "le", i < s.upper_bounds.size() ? format_value(s.upper_bounds[i]) : "+Inf"};
        block += name + "_bucket" + render_labels(labels, &le) + " " +
                 format_value(static_cast<double>(s.cumulative[i])) + "\n";
      }
      block += name + "_sum" + render_labels(labels) + " " + format_value(s.sum) + "\n";
      block += name + "_count" + render_labels(labels) + " " + format_value(static_cast<double>(s.count)) + "\n";
      lines[labels] = std::move(block);
    }
    for (const auto& [labels, text] : lines) out += text;
  }
  return out;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Integers up to 2^53 print exactly, without exponent or decimals.
  if (std::fabs(v) < 9007199254740992.0 && v == std::floor(v)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    return buf;
  }
  // Shortest text that reads back as the same double.
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

namespace {

// Fields of /proc/self/stat after the command name (which may hold spaces and
// parentheses, so parsing starts after the last ')'). Field 3 (state) is
// index 0 here; utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
std::vector<std::string> proc_stat_fields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  const auto close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

double stat_field(const std::vector<std::string>& fields, size_t field_number) {
  const size_t i = field_number - 3;
  if (i >= fields.size()) return 0;
  double v = 0;
  const auto& f = fields[i];
  std::from_chars(f.data(), f.data() + f.size(), v);
  return v;
}

double boot_time_seconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double v = 0;
      in >> v;
      return v;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

double open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;  // the descriptor opendir itself holds
}

}  // namespace

void register_process_metrics(Registry& registry) {
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  // The start time never changes: read it once.
  const double start = boot_time_seconds() + stat_field(proc_stat_fields(), 22) / ticks;
  registry.counter_fn("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", [ticks] {
    const auto f = proc_stat_fields();
    return (stat_field(f, 14) + stat_field(f, 15)) / ticks;
  });
  registry.gauge_fn("process_resident_memory_bytes", "Resident memory size in bytes.",
                    [page] { return stat_field(proc_stat_fields(), 24) * page; });
  registry.gauge_fn("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                    [] { return stat_field(proc_stat_fields(), 23); });
  registry.gauge_fn("process_open_fds", "Number of open file descriptors.", [] { return open_fds(); });
  registry.gauge_fn("process_max_fds", "Maximum number of open file descriptors.", [] {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 0.0;
    return static_cast<double>(r.rlim_cur);
  });
  registry.gauge_fn("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                    [start] { return start; });
}

void register_disk_metrics(Registry& registry, const std::string& path) {
  const auto read = [path](bool total) {
    struct statvfs v {};
    if (::statvfs(path.c_str(), &v) != 0) return 0.0;
    const double unit = static_cast<double>(v.f_frsize);
    return unit * static_cast<double>(total ? v.f_blocks : v.f_bavail);
  };
  registry.gauge_fn("cairn_store_disk_free_bytes", "Bytes still free to the node on the data dir's filesystem.",
                    [read] { return read(false); });
  registry.gauge_fn("cairn_store_disk_total_bytes", "Size of the data dir's filesystem in bytes.",
                    [read] { return read(true); });
}

}  // namespace cairn::node::metrics
