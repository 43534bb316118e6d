// decide_range on its own: what the parser accepts beyond what httplib lets
// through to the API's handlers (whitespace, case, saturation, lists).

#include "node/http_range.hpp"

#include <gtest/gtest.h>

namespace cairn::node::http {
namespace {

ByteRange range_of(std::string_view header, uint64_t size) {
  const RangeDecision d = decide_range(header, size);
  EXPECT_TRUE(std::holds_alternative<ByteRange>(d)) << header;
  return std::holds_alternative<ByteRange>(d) ? std::get<ByteRange>(d) : ByteRange{};
}

bool unsatisfiable(std::string_view header, uint64_t size) {
  return std::holds_alternative<Unsatisfiable>(decide_range(header, size));
}

TEST(HttpRange, NoHeaderIsTheWholeBody) {
  EXPECT_TRUE(std::holds_alternative<WholeBody>(decide_range("", 10)));
  EXPECT_TRUE(std::holds_alternative<WholeBody>(decide_range("  ", 0)));
}

TEST(HttpRange, FormsClampAndSuffixes) {
  auto r = range_of("bytes=2-5", 10);
  EXPECT_EQ(r.first, 2u);
  EXPECT_EQ(r.last, 5u);
  EXPECT_EQ(r.length(), 4u);
  r = range_of("bytes=7-", 10);
  EXPECT_EQ(r.first, 7u);
  EXPECT_EQ(r.last, 9u);
  r = range_of("bytes=-3", 10);
  EXPECT_EQ(r.first, 7u);
  EXPECT_EQ(r.last, 9u);
  r = range_of("bytes=-30", 10);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 9u);
  r = range_of("bytes=5-99999999999999999999999", 10);  // saturates, then clamps
  EXPECT_EQ(r.last, 9u);
  r = range_of(" BYTES = 1-1 ", 10);
  EXPECT_EQ(r.first, 1u);
  EXPECT_EQ(r.last, 1u);
}

TEST(HttpRange, ListsAreCoalescedIgnoringUnsatisfiableMembers) {
  auto r = range_of("bytes=8-9, 0-1", 10);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 9u);
  r = range_of("bytes=2-3,,50-60, -1", 10);  // empty element, one beyond the end
  EXPECT_EQ(r.first, 2u);
  EXPECT_EQ(r.last, 9u);
}

TEST(HttpRange, UnsatisfiableAndMalformed) {
  EXPECT_TRUE(unsatisfiable("bytes=10-", 10));
  EXPECT_TRUE(unsatisfiable("bytes=99999999999999999999999-", 10));
  EXPECT_TRUE(unsatisfiable("bytes=-0", 10));
  EXPECT_TRUE(unsatisfiable("bytes=0-", 0));
  EXPECT_TRUE(unsatisfiable("bytes=-5", 0));
  EXPECT_TRUE(unsatisfiable("bytes=5-2", 10));
  EXPECT_TRUE(unsatisfiable("bytes=-", 10));
  EXPECT_TRUE(unsatisfiable("bytes=a-b", 10));
  EXPECT_TRUE(unsatisfiable("bytes=1-2,x", 10));  // one malformed member spoils the list
  EXPECT_TRUE(unsatisfiable("bytes=", 10));
  EXPECT_TRUE(unsatisfiable("bytes 0-1", 10));
  EXPECT_TRUE(unsatisfiable("items=0-1", 10));
  EXPECT_NE(std::get<Unsatisfiable>(decide_range("bytes=20-", 10)).reason.find("10 bytes"),
            std::string::npos);
}

TEST(HttpRange, ContentRangeValues) {
  EXPECT_EQ(content_range(ByteRange{0, 0}, 1), "bytes 0-0/1");
  EXPECT_EQ(content_range(ByteRange{5, 9}, 10), "bytes 5-9/10");
  EXPECT_EQ(unsatisfied_content_range(0), "bytes */0");
}

}  // namespace
}  // namespace cairn::node::http
