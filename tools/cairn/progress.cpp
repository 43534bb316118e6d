#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace cairn::tools {
namespace {

// The current rate is measured over this window: long enough to smooth TCP
// bursts, short enough to follow a change of speed.
constexpr auto kRateWindow = std::chrono::seconds(3);
constexpr auto kRedrawEvery = std::chrono::milliseconds(100);

// A bar narrower than this says nothing the percentage does not.
constexpr size_t kMinBar = 10;
// The label never takes more than half the line while other fields could
// use it, nor is it cut below this many columns while a field it could
// replace is still shown.
constexpr size_t kMinLabel = 12;
constexpr size_t kSep = 2;  // columns between fields

// `s` cut to at most `n` columns: "..." and its end (the end of a path or
// name tells files apart), starting at a UTF-8 character boundary.
std::string shorten(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  if (n <= 3) return std::string(n, '.');
  size_t from = s.size() - (n - 3);
  while (from < s.size() && (static_cast<unsigned char>(s[from]) & 0xC0) == 0x80) ++from;
  return "..." + s.substr(from);
}

}  // namespace

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

size_t terminal_columns(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* env = std::getenv("COLUMNS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0 && v < 100000) return static_cast<size_t>(v);
  }
  return 80;
}

std::string layout_progress_line(const ProgressLine& line, size_t columns) {
  const size_t max = columns > 0 ? columns - 1 : 0;
  const double fraction = std::clamp(line.fraction, 0.0, 1.0);
  char pct_buf[8];
  std::snprintf(pct_buf, sizeof pct_buf, "%3d%%", static_cast<int>(fraction * 100));
  const std::string pct = pct_buf;
  const size_t label_cap = std::max(kMinLabel, max / 2);
  const size_t label_want = std::min(line.label.size(), label_cap);
  // Columns of the label's separator and the optional fields.
  const auto width_of = [&](bool counts, bool tail) {
    size_t w = kSep + pct.size();
    if (counts && !line.counts.empty()) w += kSep + line.counts.size();
    if (tail && !line.tail.empty()) w += kSep + line.tail.size();
    return w;
  };
  const auto render = [&](size_t label_width, size_t bar_width, bool counts, bool tail) {
    std::string out = shorten(line.label, label_width) + std::string(kSep, ' ') + pct;
    if (bar_width > 0) {
      const auto filled = static_cast<size_t>(fraction * static_cast<double>(bar_width));
      std::string bar(bar_width, ' ');
      std::fill_n(bar.begin(), filled, '=');
      if (filled < bar_width && filled > 0) bar[filled] = '>';
      out += " [" + bar + "]";
    }
    if (counts && !line.counts.empty()) out += std::string(kSep, ' ') + line.counts;
    if (tail && !line.tail.empty()) out += std::string(kSep, ' ') + line.tail;
    return out;
  };
  // 1. Everything, the bar taking what the label leaves.
  const size_t full = label_want + width_of(true, true) + 3;  // " [" and "]"
  if (full + kMinBar <= max) return render(label_want, max - full, true, true);
  // 2.-4. Without the bar, then without the tail, then without the counts.
  const size_t label_floor = std::min(line.label.size(), kMinLabel);
  for (const auto& [counts, tail] : {std::pair{true, true}, std::pair{true, false}, std::pair{false, false}}) {
    const size_t others = width_of(counts, tail);
    if (others >= max) continue;
    const size_t label_width = std::min(label_want, max - others);
    if (label_width >= label_floor) return render(label_width, 0, counts, tail);
  }
  // A very narrow terminal: label and percentage, cut to fit.
  if (max >= pct.size() + kSep + 1) return render(max - pct.size() - kSep, 0, false, false);
  return pct.substr(0, max);
}

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
  const double fraction = total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
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
  // With a status (the bytes are sent, the node works) the counts say
  // nothing the percentage does not: the status gets their room.
  const std::string counts = status_.empty() || final ? format_bytes(done_) + "/" + format_bytes(total_) : "";
  const std::string text =
      layout_progress_line(ProgressLine{label_, fraction, counts, tail}, terminal_columns(STDERR_FILENO));
  std::cerr << "\r\033[K" << text << std::flush;
  open_ = true;
}

}  // namespace cairn::tools
