// The one JSON codec of NetworkParams (include/cairn/contracts/params_json.hpp):
// every field travels, and untrusted JSON missing or mistyping one is refused
// with the field's name.

#include "cairn/contracts/params_json.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cairn::contracts {
namespace {

using nlohmann::json;

const std::vector<std::string> kFields = {"blob_size",    "data_fragments",  "parity_fragments",
                                          "chunk_size",   "blobs_per_shard", "block_time_ms",
                                          "epoch_blocks", "deadline_blocks", "walk_steps",
                                          "openings",     "seal_cost",       "mask_checks"};

// Valid parameters with every field away from its default, so a field the
// codec drops or swaps shows.
erasure::NetworkParams unusual() {
  erasure::NetworkParams p;
  p.blob_size = 65536;
  p.data_fragments = 4;
  p.parity_fragments = 3;
  p.chunk_size = 512;
  p.blobs_per_shard = (uint64_t{1} << 40) + 7;  // beyond u32: blobs_per_shard is u64
  p.block_time_ms = 250;
  p.epoch_blocks = 16;
  p.deadline_blocks = 5;
  p.walk_steps = 1000;
  p.openings = 20;
  p.seal_cost = 3;
  p.mask_checks = 6;
  EXPECT_TRUE(p.validate());
  return p;
}

void expect_refused(const json& j, const std::string& words) {
  auto p = params_from_json(j);
  ASSERT_FALSE(p) << j.dump();
  EXPECT_EQ(p.error().code, Errc::invalid_argument);
  EXPECT_NE(p.error().message.find(words), std::string::npos) << p.error().message;
}

TEST(ParamsJson, EveryFieldRoundTrips) {
  const erasure::NetworkParams p = unusual();
  const json j = params_to_json(p);
  ASSERT_EQ(j.size(), kFields.size()) << j.dump();
  for (const std::string& f : kFields) EXPECT_TRUE(j.contains(f)) << f;
  EXPECT_EQ(j["mask_checks"], 6);
  EXPECT_EQ(j["blobs_per_shard"], (uint64_t{1} << 40) + 7);
  auto back = params_from_json(json::parse(j.dump()));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, p);
  EXPECT_EQ(*params_from_json(params_to_json(erasure::NetworkParams::defaults())),
            erasure::NetworkParams::defaults());
}

TEST(ParamsJson, MissingFieldIsNamed) {
  for (const std::string& f : kFields) {
    json j = params_to_json(unusual());
    j.erase(f);
    expect_refused(j, "\"" + f + "\" is missing");
  }
}

TEST(ParamsJson, MistypedFieldIsNamed) {
  for (const std::string& f : kFields) {
    for (const json& wrong : {json("8"), json(-1), json(8.5), json(true), json(nullptr),
                              json::array(), json::object()}) {
      json j = params_to_json(unusual());
      j[f] = wrong;
      expect_refused(j, "\"" + f + "\" is not an unsigned integer");
    }
  }
}

TEST(ParamsJson, OutOfRangeAndInvalidCombinationsAreRefused) {
  json j = params_to_json(unusual());
  j["mask_checks"] = uint64_t{1} << 32;
  expect_refused(j, "\"mask_checks\" is 4294967296, above its maximum 4294967295");
  j = params_to_json(unusual());
  j["chunk_size"] = 0;  // well-typed, but validate() refuses it
  expect_refused(j, "chunk_size must be > 0");
  expect_refused(json::array(), "expected an object, got array");
  expect_refused(json("params"), "expected an object, got string");
}

TEST(ParamsJson, UnknownMembersAreIgnored) {
  json j = params_to_json(unusual());
  j["a_later_field"] = "anything";
  auto p = params_from_json(j);
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(*p, unusual());
}

}  // namespace
}  // namespace cairn::contracts
