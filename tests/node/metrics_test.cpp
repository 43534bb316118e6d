#include "node/metrics.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cairn::node::metrics {
namespace {

TEST(Metrics, RendersCountersGaugesAndHistogramsInExpositionFormat) {
  Registry r;
  auto& uploads = r.counter("cairn_uploads_total", "Uploads accepted.");
  auto& shard3 = r.gauge("cairn_store_blobs", "Blobs held.", {{"shard", "3"}});
  auto& shard1 = r.gauge("cairn_store_blobs", "Blobs held.", {{"shard", "1"}});
  auto& latency = r.histogram("cairn_put_seconds", "Upload latency.", {0.1, 1});
  uploads.inc();
  uploads.inc(2);
  shard3.set(7);
  shard1.add(2.5);
  latency.observe(0.05);
  latency.observe(0.5);
  latency.observe(5);

  const std::string text = r.render();
  EXPECT_NE(text.find("# HELP cairn_uploads_total Uploads accepted.\n"
                      "# TYPE cairn_uploads_total counter\n"
                      "cairn_uploads_total 3\n"),
            std::string::npos)
      << text;
  // Series of a family in label order.
  EXPECT_NE(text.find("# TYPE cairn_store_blobs gauge\n"
                      "cairn_store_blobs{shard=\"1\"} 2.5\n"
                      "cairn_store_blobs{shard=\"3\"} 7\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE cairn_put_seconds histogram\n"
                      "cairn_put_seconds_bucket{le=\"0.1\"} 1\n"
                      "cairn_put_seconds_bucket{le=\"1\"} 2\n"
                      "cairn_put_seconds_bucket{le=\"+Inf\"} 3\n"
                      "cairn_put_seconds_sum 5.55\n"
                      "cairn_put_seconds_count 3\n"),
            std::string::npos)
      << text;
}

TEST(Metrics, SameNameAndLabelsIsTheSameSeries) {
  Registry r;
  auto& a = r.counter("cairn_x_total", "x", {{"peer", "a"}});
  auto& b = r.counter("cairn_x_total", "x", {{"peer", "a"}});
  auto& c = r.counter("cairn_x_total", "x", {{"peer", "b"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
}

TEST(Metrics, WiringMistakesThrow) {
  Registry r;
  r.counter("cairn_y_total", "y");
  EXPECT_THROW(r.gauge("cairn_y_total", "y"), std::logic_error);
  EXPECT_THROW(r.counter("9bad", "bad name"), std::logic_error);
  EXPECT_THROW(r.counter("cairn_z_total", "z", {{"le", "1"}}), std::logic_error);
  EXPECT_THROW(r.counter("cairn_z_total", "z", {{"bad-label", "1"}}), std::logic_error);
}

TEST(Metrics, CallbackSeriesAreReadAtRenderTimeAndCanBeRemoved) {
  Registry r;
  double depth = 4;
  r.gauge_fn("cairn_queue_depth", "Jobs waiting.", [&] { return depth; });
  EXPECT_NE(r.render().find("cairn_queue_depth 4\n"), std::string::npos);
  depth = 9;
  EXPECT_NE(r.render().find("cairn_queue_depth 9\n"), std::string::npos);
  r.remove_fns("cairn_queue_depth");
  EXPECT_EQ(r.render().find("cairn_queue_depth"), std::string::npos);
}

TEST(Metrics, SeriesCallbacksRenderOneLabelledSeriesPerEntry) {
  Registry r;
  std::vector<std::pair<Labels, double>> shards;
  r.gauge_series_fn("cairn_sync_blobs_held", "Held.", [&] { return shards; });
  EXPECT_EQ(r.render().find("cairn_sync_blobs_held"), std::string::npos) << "no series, no family";
  shards = {{{{"shard", "1"}}, 7}, {{{"shard", "0"}}, 3}};
  const std::string text = r.render();
  EXPECT_NE(text.find("# TYPE cairn_sync_blobs_held gauge\n"
                      "cairn_sync_blobs_held{shard=\"0\"} 3\n"
                      "cairn_sync_blobs_held{shard=\"1\"} 7\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("\ncairn_sync_blobs_held "), std::string::npos)
      << "no unlabelled sum: " << text;
  shards = {{{{"shard", "2"}}, 1}};
  EXPECT_NE(r.render().find("cairn_sync_blobs_held{shard=\"2\"} 1\n"), std::string::npos);
  EXPECT_EQ(r.render().find("shard=\"0\""), std::string::npos)
      << "a shard no longer served drops out";
  r.remove_fns("cairn_sync_blobs_held");
  EXPECT_EQ(r.render().find("cairn_sync_blobs_held"), std::string::npos);
}

TEST(Metrics, LabelValuesAreEscaped) {
  Registry r;
  r.gauge("cairn_info", "i", {{"path", "a\\b\"c\nd"}}).set(1);
  EXPECT_NE(r.render().find("cairn_info{path=\"a\\\\b\\\"c\\nd\"} 1\n"), std::string::npos)
      << r.render();
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(1e20), "1e+20");
  EXPECT_EQ(format_value(-3), "-3");
}

TEST(Metrics, ConcurrentUpdatesAreNotLost) {
  Registry r;
  auto& c = r.counter("cairn_c_total", "c");
  auto& h = r.histogram("cairn_h", "h", {1});
  auto& g = r.gauge("cairn_g", "g");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c.inc();
        h.observe(0.5);
        g.add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 400000u);
  EXPECT_EQ(h.snapshot().count, 400000u);
  EXPECT_EQ(g.value(), 400000.0);
}

// The value of the unlabelled series `name` in an exposition, or -1 if absent.
double series_value(const std::string& text, const std::string& name) {
  const std::string key = "\n" + name + " ";
  const auto at = text.find(key);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + key.size()));
}

TEST(Metrics, ProcessSeriesDescribeThisProcess) {
  Registry r;
  register_process_metrics(r);
  // Burn a little CPU and hold an extra descriptor so both show.
  volatile double sink = 0;
  for (int i = 0; i < 20'000'000; ++i) sink = sink + i * 0.5;
  const std::string before = r.render();
  FILE* extra = std::fopen("/proc/self/stat", "r");
  ASSERT_NE(extra, nullptr);
  const std::string after = r.render();
  std::fclose(extra);

  EXPECT_NE(before.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos) << before;
  EXPECT_GT(series_value(before, "process_cpu_seconds_total"), 0.0) << before;
  // Resident memory of a running test binary: more than 1 MiB, less than virtual.
  const double rss = series_value(before, "process_resident_memory_bytes");
  EXPECT_GT(rss, 1 << 20);
  EXPECT_GT(series_value(before, "process_virtual_memory_bytes"), rss);
  EXPECT_GE(series_value(before, "process_open_fds"), 3.0);  // stdin, stdout, stderr
  EXPECT_EQ(series_value(after, "process_open_fds"), series_value(before, "process_open_fds") + 1);
  EXPECT_GT(series_value(before, "process_max_fds"), series_value(before, "process_open_fds"));
  // Started within the last hour, not in the future (Unix seconds).
  const double start = series_value(before, "process_start_time_seconds");
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 3600);
}

TEST(Metrics, DiskSeriesDescribeTheDataDirFilesystem) {
  Registry r;
  register_disk_metrics(r, "/");
  const std::string text = r.render();
  const double total = series_value(text, "cairn_store_disk_total_bytes");
  const double free = series_value(text, "cairn_store_disk_free_bytes");
  EXPECT_GT(total, 0.0) << text;
  EXPECT_GE(free, 0.0);
  EXPECT_LE(free, total);

  Registry missing;
  register_disk_metrics(missing, "/nonexistent/cairn-data");
  EXPECT_EQ(series_value(missing.render(), "cairn_store_disk_total_bytes"), 0.0);
}

}  // namespace
}  // namespace cairn::node::metrics
