// The persisted store format, pinned to the examples in docs/store-format.md
// (computed there with an independent CRC-32C), and the record decoders'
// refusal of malformed bytes.

#include <gtest/gtest.h>

#include "format.hpp"
#include "records.hpp"

namespace cairn::shards {
namespace {

using format::Family;

TEST(StoreFormat, EnvelopeMatchesTheDocumentedExamples) {
  // Sync cursor of shard 7: next index 42, updated at 1700000000000 ms.
  const auto key = format::shard_key(ShardId{7});
  EXPECT_EQ(to_hex(key), "00000007");
  const Bytes payload = records::encode_sync_cursor(SyncCursor{BlobIndex{42}, 1700000000000});
  EXPECT_EQ(to_hex(format::seal_envelope(Family::sync_cursors, key, payload)),
            "01000000000000002a0000018bcfe56800f4734cdd");

  // Fragment 3 of blob index 4097 in shard 1, payload "cairn".
  const auto fkey = format::fragment_key(ShardId{1}, BlobIndex{4097}, FragmentIndex{3});
  EXPECT_EQ(to_hex(fkey), "00000001000000000000100103");
  EXPECT_EQ(to_hex(format::seal_envelope(Family::fragments, fkey, as_bytes("cairn"))),
            "01636169726e894b1605");
}

TEST(StoreFormat, FamilyTagsAndNamesAreFixed) {
  // Persisted: renumbering or renaming breaks every existing store.
  const char* names[] = {"default",      "fragments", "blobs", "blob_ids", "pending",
                         "sync_cursors", "responses", "peers", "chain"};
  ASSERT_EQ(std::size(names), format::kFamilyCount);
  for (size_t i = 0; i < format::kFamilyCount; ++i) {
    EXPECT_EQ(format::family_name(format::family_at(i)), names[i]);
  }
  EXPECT_EQ(static_cast<int>(FragmentEncoding::plain), 0);
  EXPECT_EQ(static_cast<int>(FragmentEncoding::sealed), 1);
}

TEST(StoreFormat, OpenEnvelopeChecksKeyFamilyAndLength) {
  const auto key = format::blob_key(ShardId{2}, BlobIndex{9000});
  const Bytes value = format::seal_envelope(Family::blobs, key, as_bytes("payload"));
  auto ok = format::open_envelope(Family::blobs, key, value);
  ASSERT_TRUE(ok);
  EXPECT_EQ(Bytes(ok->begin(), ok->end()),
            Bytes(as_bytes("payload").begin(), as_bytes("payload").end()));

  const auto other_key = format::blob_key(ShardId{2}, BlobIndex{9001});
  EXPECT_EQ(format::open_envelope(Family::blobs, other_key, value).error().code, Errc::corruption);
  EXPECT_EQ(format::open_envelope(Family::blob_ids, key, value).error().code, Errc::corruption);
  EXPECT_EQ(format::open_envelope(Family::blobs, key, ByteSpan(value).first(4)).error().code,
            Errc::corruption);
  auto named = format::open_envelope(Family::blobs, other_key, value);
  EXPECT_NE(named.error().message.find("shard 2 index 9001"), std::string::npos)
      << named.error().message;

  // A checksummed value of a future envelope version is unsupported, not corrupt.
  Bytes future = value;
  future[0] = 2;
  const auto parts_crc = format::envelope_checksum(Family::blobs, key, 2, as_bytes("payload"));
  put_be<uint32_t>(future.data() + future.size() - 4, parts_crc);
  EXPECT_EQ(format::open_envelope(Family::blobs, key, future).error().code, Errc::unsupported);
}

TEST(StoreFormat, BlobRecordRoundTripsAndMalformedRecordsAreRefused) {
  BlobRecord r;
  r.id.bytes[0] = 0xab;
  r.index = BlobIndex{77};
  r.length = 1000;
  r.fragment_size = 2048;
  r.data_fragments = 4;
  r.encoding = FragmentEncoding::sealed;
  r.fragment_roots.resize(6);
  for (size_t i = 0; i < 6; ++i) r.fragment_roots[i][0] = static_cast<uint8_t>(i);
  const Bytes enc = records::encode_blob_record(r);
  EXPECT_EQ(enc.size(), 43u + 6 * 32);
  auto back = records::decode_blob_record(enc, BlobIndex{77}, "test");
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, r);

  for (size_t cut = 0; cut < enc.size(); cut += 7) {
    auto bad = records::decode_blob_record(ByteSpan(enc).first(cut), BlobIndex{77}, "test");
    ASSERT_FALSE(bad) << cut;
    EXPECT_EQ(bad.error().code, Errc::corruption);
  }
  Bytes k_above_n = enc;
  k_above_n[40] = 7;  // k = 7 > n = 6
  EXPECT_EQ(records::decode_blob_record(k_above_n, BlobIndex{77}, "t").error().code,
            Errc::corruption);
  Bytes unknown_encoding = enc;
  unknown_encoding[42] = 9;
  EXPECT_EQ(records::decode_blob_record(unknown_encoding, BlobIndex{77}, "t").error().code,
            Errc::unsupported);
  Bytes extra = enc;
  extra.push_back(0);
  EXPECT_EQ(records::decode_blob_record(extra, BlobIndex{77}, "t").error().code, Errc::corruption);
}

}  // namespace
}  // namespace cairn::shards
