// `cairn id FILE`: the offline file id, as a user runs it.

#include <gtest/gtest.h>

#include <string>

#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/file.hpp"
#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn::test {
namespace {

// docs/blob-format.md, test vectors.
constexpr const char* kHelloId = "8dc45f4fa0c6ce51644d1c504ba062bd70a3cf838086c93fb642b9ed406423ba";

TEST(CairnId, PrintsTheDocumentedIdOfAFile) {
  TempDir dir;
  write_file(dir / "hello.txt", as_bytes("hello, cairn\n"));
  auto r = run({cairn_binary(), "id", (dir / "hello.txt").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::string(kHelloId) + "\n");
}

TEST(CairnId, AgreesWithTheLibraryForSeveralFilesAndJson) {
  TempDir dir;
  auto rng = seeded_rng(1);
  const Bytes random = random_bytes(rng, 300000);
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "cairn stores blobs " + std::to_string(i % 7) + "\n";
  write_file(dir / "random.bin", random);
  write_file(dir / "text.txt", as_bytes(text));

  auto codec = *erasure::Codec::create(erasure::NetworkParams::defaults());
  auto id_of = [&](ByteSpan content, erasure::FileOptions::Compress mode) {
    erasure::FileOptions options;
    options.compress = mode;
    return erasure::encode_file(*codec, content, options,
                                [](const erasure::BlobPiece&) { return Status{}; })
        ->id.hex();
  };
  const std::string random_id = id_of(random, erasure::FileOptions::Compress::automatic);
  const std::string text_id = id_of(as_bytes(text), erasure::FileOptions::Compress::automatic);
  const std::string text_plain_id = id_of(as_bytes(text), erasure::FileOptions::Compress::never);
  ASSERT_NE(text_id, text_plain_id);

  auto r = run({cairn_binary(), "id", (dir / "random.bin").string(), (dir / "text.txt").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, random_id + "  " + (dir / "random.bin").string() + "\n" + text_id + "  " +
                       (dir / "text.txt").string() + "\n");

  auto plain = run({cairn_binary(), "id", "--no-compress", (dir / "text.txt").string()});
  EXPECT_EQ(plain.out, text_plain_id + "\n");

  auto json = run({cairn_binary(), "id", "--json", (dir / "text.txt").string()});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_NE(json.out.find("\"id\":\"" + text_id + "\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"uri\":\"cairn://" + text_id + "\""), std::string::npos);
  EXPECT_NE(json.out.find("\"compression\":\"zstd\""), std::string::npos);
  EXPECT_NE(json.out.find("\"size\":" + std::to_string(text.size())), std::string::npos);
}

TEST(CairnId, MissingFileIsAUsageError) {
  TempDir dir;
  auto r = run({cairn_binary(), "id", (dir / "nope").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

}  // namespace
}  // namespace cairn::test
