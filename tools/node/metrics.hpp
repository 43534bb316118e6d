#pragma once
// Typed node metrics (counters, gauges, histograms) and their Prometheus text
// exposition (format 0.0.4), rendered at the HTTP API's /metrics.
//
// Cost: registering a metric takes a lock and allocates (do it once, at
// start-up, and keep the returned reference); updating one is a relaxed
// atomic operation on the caller's thread, safe from any thread, with no
// lock and no allocation. References stay valid as long as the Registry.
//
// Naming (Prometheus conventions): `cairn_<module>_<what>_<unit>`; counters
// end in `_total`; sizes in bytes, durations in seconds. Each series has a
// fixed label set given at registration (e.g. {{"shard", "3"}}); the same
// name registered twice with the same labels returns the same metric.

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/core/clock.hpp"

namespace cairn::node::metrics {

// Label pairs of one series, e.g. {{"shard", "3"}, {"kind", "data"}}.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Monotonic count of events.
class Counter {
 public:
  void inc(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (peers connected, bytes stored).
class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  void sub(double d) noexcept { value_.fetch_sub(d, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Distribution of observed values over fixed buckets (upper bounds,
// ascending; +Inf is implicit).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v) noexcept;

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  // Consistent enough for monitoring: buckets and sum are read one by one
  // while writers may run, so count can briefly disagree with the buckets.
  Snapshot snapshot() const;

  // Buckets for latencies in seconds: 100 us .. 30 s, roughly x2.5 apart.
  static std::vector<double> latency_buckets();
  // Buckets for sizes in bytes: 1 KiB .. 1 GiB, x4 apart.
  static std::vector<double> size_buckets();

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 (+Inf)
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Times a scope on `clock` into a histogram (seconds).
class ScopedTimer {
 public:
  ScopedTimer(Histogram& h, const Clock& clock) noexcept;
  ~ScopedTimer();
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  Histogram& h_;
  const Clock& clock_;
  TimePoint start_;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registers (or finds) a series. A name must keep one type and one help
  // text; registering it with another type throws std::logic_error (a
  // wiring bug, not a runtime condition), as does a name or label name that
  // is not a valid Prometheus identifier.
  Counter& counter(const std::string& name, const std::string& help, Labels labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, Labels labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> upper_bounds,
                       Labels labels = {});

  // A gauge (or counter, with `counter` true) whose value is computed when
  // the metrics are rendered, for state another component already keeps
  // (queue depth, block height). `read` runs on the rendering thread under
  // the registry lock: it must be thread-safe, quick, and must not call
  // back into the registry. Replaces an earlier callback of the same series.
  void gauge_fn(const std::string& name, const std::string& help, std::function<double()> read, Labels labels = {});
  void counter_fn(const std::string& name, const std::string& help, std::function<double()> read, Labels labels = {});
  // A gauge family whose series and their label sets are both computed when
  // the metrics are rendered: for a set that changes at run time (one series
  // per served shard). `read` returns (labels, value) pairs; the same rules
  // as gauge_fn apply, and a label set it returns twice keeps the last
  // value. Replaces an earlier series callback of `name`; series registered
  // with gauge_fn under the same labels are overridden by it.
  using SeriesFn = std::function<std::vector<std::pair<Labels, double>>()>;
  void gauge_series_fn(const std::string& name, const std::string& help, SeriesFn read);
  // Drops every callback series of `name`, gauge_series_fn's included (a
  // component going away before the registry does).
  void remove_fns(const std::string& name);

  // Every family in name order, each series in label order, as Prometheus
  // text exposition format 0.0.4.
  std::string render() const;

 private:
  struct Family;
  Family& family(const std::string& name, const std::string& help, int type);
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>> families_;
};

// Formats a label value / number the way the exposition format wants them
// (escaping \, " and newlines; +Inf, -Inf, NaN; integers without exponent).
std::string escape_label_value(std::string_view v);
std::string format_value(double v);

// The process_* series Prometheus client libraries export on Linux
// (process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds), read from /proc/self when rendered. A file
// that cannot be read renders as 0 (not a scrape failure).
void register_process_metrics(Registry& registry);

// cairn_store_disk_free_bytes / cairn_store_disk_total_bytes of the
// filesystem holding `path` (statvfs when rendered; free counts the bytes an
// unprivileged process may still use). 0 when statvfs fails.
void register_disk_metrics(Registry& registry, const std::string& path);

}  // namespace cairn::node::metrics
