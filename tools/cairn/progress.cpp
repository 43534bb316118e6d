#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace cairn::tools {
namespace {

// The current rate is measured over this window: long enough to smooth TCP
// bursts, short enough to follow a change of speed.
constexpr auto kRateWindow = std::chrono::seconds(3);
constexpr auto kRedrawEvery = std::chrono::milliseconds(100);

size_t terminal_columns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) return ws.ws_col;
  return 80;
}

}  // namespace

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

std::string format_bytes(uint64_t n) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (n < 1024) return std::to_string(n) + " B";
  double v = static_cast<double>(n) / 1024.0;
  size_t unit = 0;
  while (v >= 1024.0 && unit + 1 < std::size(kUnits)) {
    v /= 1024.0;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[unit]);
  return buf;
}

std::string format_duration(std::chrono::seconds s) {
  const auto total = s.count() < 0 ? 0 : s.count();
  const long long h = total / 3600;
  const long long m = (total / 60) % 60;
  const long long sec = total % 60;
  char buf[32];
  if (h > 0) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, sec);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", m, sec);
  }
  return buf;
}

ProgressBar::ProgressBar(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), start_(Clock::now()) {
  if (enabled_) {
    samples_.emplace_back(start_, 0);
    draw(false);
  }
}

ProgressBar::~ProgressBar() {
  if (open_) clear();
}

void ProgressBar::update(uint64_t done) {
  if (!enabled_) return;
  done_ = done;
  const auto now = Clock::now();
  samples_.emplace_back(now, done);
  while (samples_.size() > 2 && now - samples_.front().first > kRateWindow) samples_.pop_front();
  if (now - last_draw_ >= kRedrawEvery) draw(false);
}

void ProgressBar::set_status(std::string status) {
  if (!enabled_) return;
  status_ = std::move(status);
  draw(false);
}

void ProgressBar::finish() {
  if (!enabled_) return;
  done_ = std::max(done_, total_);
  status_.clear();
  draw(true);
  std::cerr << "\n" << std::flush;
  open_ = false;
}

void ProgressBar::clear() {
  if (!enabled_ || !open_) return;
  std::cerr << "\r\033[K" << std::flush;
  open_ = false;
}

double ProgressBar::rate_bytes_per_s() const {
  if (samples_.size() < 2) return 0;
  const auto& [t0, b0] = samples_.front();
  const auto& [t1, b1] = samples_.back();
  const double dt = std::chrono::duration<double>(t1 - t0).count();
  return dt > 0 ? static_cast<double>(b1 - b0) / dt : 0;
}

void ProgressBar::draw(bool final) {
  const auto now = Clock::now();
  last_draw_ = now;
  const double fraction =
      total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
  std::string tail;
  if (final) {
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double avg = secs > 0 ? static_cast<double>(done_) / secs : 0;
    tail = format_bytes(static_cast<uint64_t>(avg)) + "/s  in " +
           format_duration(std::chrono::seconds(static_cast<long long>(secs + 0.5)));
  } else if (!status_.empty()) {
    tail = status_;
  } else {
    const double rate = rate_bytes_per_s();
    tail = format_bytes(static_cast<uint64_t>(rate)) + "/s";
    if (rate > 0 && done_ < total_) {
      const double eta = static_cast<double>(total_ - done_) / rate;
      tail += "  ETA " + format_duration(std::chrono::seconds(static_cast<long long>(eta + 0.5)));
    }
  }
  char pct[8];
  std::snprintf(pct, sizeof pct, "%3d%%", static_cast<int>(fraction * 100));
  const std::string counts = format_bytes(done_) + "/" + format_bytes(total_);
  const size_t columns = terminal_columns();
  std::string label = label_;
  // label, percentage, bar, counts and tail; the bar takes what is left.
  const size_t fixed = 2 + 5 + 2 + counts.size() + 2 + tail.size() + 3;
  if (label.size() + fixed + 10 > columns) {
    const size_t keep = columns > fixed + 13 ? columns - fixed - 13 : 8;
    if (label.size() > keep) label = "..." + label.substr(label.size() - keep);
  }
  const size_t bar_width = columns > label.size() + fixed + 1 ? columns - label.size() - fixed - 1 : 10;
  const auto filled = static_cast<size_t>(fraction * static_cast<double>(bar_width));
  std::string bar(bar_width, ' ');
  std::fill_n(bar.begin(), filled, '=');
  if (filled < bar_width && filled > 0) bar[filled] = '>';
  std::cerr << "\r\033[K" << label << "  " << pct << " [" << bar << "]  " << counts << "  " << tail
            << std::flush;
  open_ = true;
}

}  // namespace cairn::tools
