#pragma once
// Transfer progress on stderr for the client commands (put, get): one line
// redrawn in place with percentage, bytes, rate and ETA. Drawn only when
// stderr is a terminal and the command is not printing --json, so scripts
// and logs never see control characters.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

namespace cairn::tools {

// Whether stderr is a terminal (isatty).
bool stderr_is_terminal();

// Columns of the terminal on `fd` (TIOCGWINSZ), else $COLUMNS when it is a
// positive number, else 80. Asked again at every redraw, so a resized
// window is followed at the next one.
size_t terminal_columns(int fd);

// The parts of one progress line, most important first: label and percent
// are always shown (the label shortened from the left when needed), then
// the counts, then the tail (rate and ETA, or a status), then the bar.
struct ProgressLine {
  std::string label;    // file name or id
  double fraction = 0;  // 0..1, drawn as the percentage and the bar
  std::string counts;   // "1.5 MiB/30.0 MiB"
  std::string tail;     // "2.0 MiB/s  ETA 0:14", or a status
};

// The line as drawn on a terminal `columns` wide: at most columns - 1
// columns (the last column would wrap on some terminals), so it never
// spills into a staircase. The bar is dropped first, then the tail, then
// the counts; the label is shortened to "..." and its end. Bytes are
// counted as columns: labels in UTF-8 only make the line shorter than
// allowed, never longer, and are cut at a character boundary.
std::string layout_progress_line(const ProgressLine& line, size_t columns);

// "0 B", "1023 B", "1.5 KiB", "30.0 MiB", ... (binary units, one decimal).
std::string format_bytes(uint64_t n);
// "0:07", "12:34", "1:02:03".
std::string format_duration(std::chrono::seconds s);

class ProgressBar {
 public:
  // `total` bytes are expected; `enabled` false makes every call a no-op.
  ProgressBar(std::string label, uint64_t total, bool enabled);
  ~ProgressBar();  // clear() if neither finish() nor clear() ran
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Records `done` bytes; redraws at most 10 times a second.
  void update(uint64_t done);
  // Replaces the rate/ETA part with `status` (e.g. while the node stores
  // an upload whose bytes are all sent) and redraws now.
  void set_status(std::string status);
  // Draws the final state (average rate, elapsed time) and ends the line.
  void finish();
  // Erases the line (before an error message).
  void clear();

 private:
  using Clock = std::chrono::steady_clock;
  void draw(bool final);
  double rate_bytes_per_s() const;

  std::string label_;
  uint64_t total_;
  bool enabled_;
  bool open_ = false;  // a line is on screen
  uint64_t done_ = 0;
  std::string status_;
  Clock::time_point start_;
  Clock::time_point last_draw_{};
  // (time, bytes) samples of the last few seconds, for the current rate.
  std::deque<std::pair<Clock::time_point, uint64_t>> samples_;
};

}  // namespace cairn::tools
