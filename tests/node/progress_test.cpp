// The progress line of `cairn put` / `cairn get` (tools/cairn/progress.hpp)
// at the widths terminals come in: it must never reach the last column
// (the line would wrap and every redraw start a new one), and what is kept
// when it must shrink is what a user needs most.

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>

#include "cairn/progress.hpp"

namespace cairn::tools {
namespace {

constexpr size_t kWidths[] = {20, 40, 60, 80, 200};

ProgressLine upload_line(std::string label) {
  return ProgressLine{std::move(label), 0.42, "12.6 MiB/30.0 MiB", "2.0 MiB/s  ETA 0:09"};
}

TEST(ProgressLine, NeverReachesTheLastColumnAndKeepsLabelAndPercent) {
  for (const std::string& label :
       {std::string("a.bin"), std::string("photos/2026/holiday-in-the-mountains.tar.zst"),
        std::string(300, 'x')}) {
    for (size_t w : kWidths) {
      const std::string text = layout_progress_line(upload_line(label), w);
      SCOPED_TRACE("width " + std::to_string(w) + ", label of " + std::to_string(label.size()) +
                   ": '" + text + "'");
      EXPECT_LE(text.size(), w - 1);
      EXPECT_NE(text.find(" 42%"), std::string::npos);
      // The label, or its end after "...", starts the line.
      const std::string shown = text.substr(0, text.find("   42%"));
      if (shown.rfind("...", 0) == 0) {
        EXPECT_EQ(label.substr(label.size() - (shown.size() - 3)), shown.substr(3));
      } else {
        EXPECT_EQ(shown, label);
      }
      EXPECT_EQ(text.find('\n'), std::string::npos);
    }
  }
}

TEST(ProgressLine, DropsTheBarFirstThenRateAndEta) {
  const auto line = upload_line("photos/holiday.tar");
  const std::string at200 = layout_progress_line(line, 200);
  const std::string at80 = layout_progress_line(line, 80);
  const std::string at60 = layout_progress_line(line, 60);
  const std::string at40 = layout_progress_line(line, 40);
  const std::string at20 = layout_progress_line(line, 20);
  // Wide terminals: every field, and the bar takes the rest of the line.
  for (const std::string& t : {at200, at80}) {
    EXPECT_NE(t.find("photos/holiday.tar   42% ["), std::string::npos) << t;
    EXPECT_NE(t.find("]  12.6 MiB/30.0 MiB  2.0 MiB/s  ETA 0:09"), std::string::npos) << t;
  }
  EXPECT_EQ(at200.size(), 199u);
  EXPECT_EQ(at80.size(), 79u);
  // 60 columns: no room for a bar worth drawing; the label gives up its
  // start, counts, rate and ETA stay.
  EXPECT_EQ(at60, "...oliday.tar   42%  12.6 MiB/30.0 MiB  2.0 MiB/s  ETA 0:09");
  EXPECT_EQ(at60.size(), 59u);
  // 40: the rate and ETA go, the counts stay.
  EXPECT_EQ(at40, "...holiday.tar   42%  12.6 MiB/30.0 MiB");
  // 20: the end of the label and the percentage.
  EXPECT_EQ(at20, "...liday.tar   42%");
}

TEST(ProgressLine, AStatusTooLongForTheLineIsDroppedBeforeTheCounts) {
  // After the bytes are sent the bar shows the total and the node's phase.
  ProgressLine line{"big.iso", 1.0, "4.0 GiB", "replicas 2/3 confirmed (need 2)"};
  EXPECT_EQ(layout_progress_line(line, 60),
            "big.iso  100%  4.0 GiB  replicas 2/3 confirmed (need 2)");
  EXPECT_EQ(layout_progress_line(line, 40), "big.iso  100%  4.0 GiB");
  for (size_t w : kWidths) EXPECT_LE(layout_progress_line(line, w).size(), w - 1);
}

TEST(ProgressLine, ShortensUtf8LabelsAtACharacterBoundary) {
  ProgressLine line{"\xC3\xA9t\xC3\xA9-\xC3\xA0-la-montagne-\xC3\xA9t\xC3\xA9.bin", 0.5, "", ""};
  for (size_t w = 10; w <= 30; ++w) {
    const std::string text = layout_progress_line(line, w);
    EXPECT_LE(text.size(), w - 1);
    ASSERT_GE(text.size(), 4u);
    // After "..." the first byte is never a UTF-8 continuation byte.
    if (text.rfind("...", 0) == 0 && text.size() > 3) {
      EXPECT_NE(static_cast<unsigned char>(text[3]) & 0xC0, 0x80) << text;
    }
  }
}

TEST(ProgressLine, TerminalColumnsFallsBackToColumnsThen80) {
  // A pipe is not a terminal: TIOCGWINSZ fails.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const char* saved = std::getenv("COLUMNS");
  const std::string restore = saved ? saved : "";
  ::setenv("COLUMNS", "57", 1);
  EXPECT_EQ(terminal_columns(fds[1]), 57u);
  ::setenv("COLUMNS", "wide", 1);
  EXPECT_EQ(terminal_columns(fds[1]), 80u);
  ::unsetenv("COLUMNS");
  EXPECT_EQ(terminal_columns(fds[1]), 80u);
  if (saved) ::setenv("COLUMNS", restore.c_str(), 1);
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace cairn::tools
