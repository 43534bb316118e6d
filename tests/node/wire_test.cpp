#include "node/wire.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "fuzz/node_wire_fuzz.hpp"
#include "support/test_util.hpp"

namespace cairn::node::wire {
namespace {

const erasure::NetworkParams kParams = erasure::NetworkParams::localnet();

BlobId some_id(std::mt19937_64& rng) {
  BlobId id;
  for (auto& b : id.bytes) b = static_cast<uint8_t>(rng());
  return id;
}

TEST(NodeWire, NoticesRoundTripSignedAndBoundToTheirShard) {
  auto rng = cairn::test::seeded_rng(61);
  const SigningKey key = SigningKey::generate();
  Notice n;
  n.kind = NoticeKind::announce;
  n.node = key.public_key();
  n.timestamp_ms = 1700000000123;
  n.entries = {{some_id(rng), BlobIndex{256}, 1000}, {some_id(rng), BlobIndex{511}, 131072}};
  auto bytes = encode_notice(n, ShardId{1}, kParams, key);
  ASSERT_TRUE(bytes) << bytes.error().to_string();
  auto back = decode_notice(*bytes, ShardId{1}, kParams);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, n);

  // Another topic: the entries are not in it (and the signature covers the topic).
  EXPECT_EQ(decode_notice(*bytes, ShardId{2}, kParams).error().code, Errc::invalid_argument);
  // Any flipped byte fails the signature or the structure.
  for (size_t i = 0; i < bytes->size(); i += 7) {
    Bytes bad = *bytes;
    bad[i] ^= 0x01;
    EXPECT_FALSE(decode_notice(bad, ShardId{1}, kParams)) << "byte " << i;
  }
  // Truncated or extended.
  EXPECT_FALSE(decode_notice(ByteSpan(*bytes).first(bytes->size() - 1), ShardId{1}, kParams));
  Bytes longer = *bytes;
  longer.push_back(0);
  EXPECT_FALSE(decode_notice(longer, ShardId{1}, kParams));
  // A newer version is unsupported, not malformed.
  Bytes newer = *bytes;
  newer[0] = 2;
  EXPECT_EQ(decode_notice(newer, ShardId{1}, kParams).error().code, Errc::unsupported);
}

TEST(NodeWire, NoticeEncodingRefusesWhatDecodingWouldReject) {
  auto rng = cairn::test::seeded_rng(62);
  const SigningKey key = SigningKey::generate();
  Notice n;
  n.kind = NoticeKind::stored;
  n.node = key.public_key();
  EXPECT_FALSE(encode_notice(n, ShardId{0}, kParams, key));  // no entries
  n.entries = {{some_id(rng), BlobIndex{300}, 0}};
  EXPECT_FALSE(encode_notice(n, ShardId{0}, kParams, key));  // index outside the shard
  n.entries[0].index = BlobIndex{3};
  n.node = SigningKey::generate().public_key();
  EXPECT_FALSE(encode_notice(n, ShardId{0}, kParams, key));  // not the signer's notice
  n.node = key.public_key();
  n.entries.assign(kMaxNoticeEntries + 1, n.entries[0]);
  EXPECT_FALSE(encode_notice(n, ShardId{0}, kParams, key));
  n.entries.resize(kMaxNoticeEntries);
  auto full = encode_notice(n, ShardId{0}, kParams, key);
  ASSERT_TRUE(full);
  EXPECT_LE(full->size(), 64u * 1024);
  EXPECT_TRUE(decode_notice(*full, ShardId{0}, kParams));
}

TEST(NodeWire, FragmentsRequestsAndResponsesHaveOneEncoding) {
  auto rng = cairn::test::seeded_rng(63);
  FragmentsRequest req{some_id(rng), {0, 3, 11}};
  const Bytes rb = encode_fragments_request(req);
  auto back = decode_fragments_request(rb, 12);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, req);
  EXPECT_FALSE(decode_fragments_request(rb, 11));  // fragment 11 out of range
  FragmentsRequest rep{some_id(rng), {2, 2}};
  EXPECT_FALSE(decode_fragments_request(encode_fragments_request(rep), 12));

  // A real blob's response verifies against its id fragment by fragment.
  auto codec = erasure::Codec::create(kParams);
  ASSERT_TRUE(codec);
  auto blob = erasure::encode_and_commit(**codec, cairn::test::random_bytes(rng, 5000));
  ASSERT_TRUE(blob);
  std::vector<FragmentView> views{{1, blob->encoded.fragment(1)}, {9, blob->encoded.fragment(9)}};
  Bytes resp;
  encode_fragments_response(resp, 5000, kParams.fragment_size(), blob->commitment.fragment_roots,
                            views);
  EXPECT_EQ(resp.size(), fragments_response_size(kParams, 2));
  auto decoded = decode_fragments_response(resp, kParams);
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(decoded->length, 5000u);
  EXPECT_TRUE(verify_roots(blob->commitment.id, decoded->roots));
  EXPECT_FALSE(verify_roots(some_id(rng), decoded->roots));
  ASSERT_EQ(decoded->fragments.size(), 2u);
  EXPECT_EQ(erasure::fragment_root(decoded->fragments[1].bytes, kParams.chunk_size),
            blob->commitment.fragment_roots[9]);
  auto reply = to_reply(*decoded, kParams.fragment_size());
  EXPECT_EQ(reply.fragments.size(), 2u);
  EXPECT_EQ(reply.data.size(), 2u * kParams.fragment_size());

  // Another geometry or a wrong count is refused.
  auto other = kParams;
  other.parity_fragments = 5;
  EXPECT_FALSE(decode_fragments_response(resp, other));
  Bytes cut(resp.begin(), resp.end() - 1);
  EXPECT_FALSE(decode_fragments_response(cut, kParams));
}

TEST(NodeWire, FragmentsRequestsCarryAtLeastInVersion2) {
  auto rng = cairn::test::seeded_rng(65);
  const BlobId id = some_id(rng);
  // at_least 0: version 1, byte for byte what version 1 nodes send and read.
  const Bytes v1 = encode_fragments_request({id, {0, 1, 2}});
  ASSERT_EQ(v1.size(), 1u + 32 + 1 + 3);
  EXPECT_EQ(v1[0], kFragmentsRequestV1);
  EXPECT_EQ(v1[33], 3);
  EXPECT_EQ(decode_fragments_request(v1, 12)->at_least, 0);

  // at_least > 0: version 2, the byte after the blob id.
  const FragmentsRequest sync{id, {0, 1, 2, 3, 4, 5, 6, 7}, 8};
  const Bytes v2 = encode_fragments_request(sync);
  ASSERT_EQ(v2.size(), 1u + 32 + 1 + 1 + 8);
  EXPECT_EQ(v2[0], kFragmentsRequestV2);
  EXPECT_EQ(v2[33], 8);
  EXPECT_EQ(v2[34], 8);
  auto back = decode_fragments_request(v2, 12);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, sync);
  // Only at_least, no list: "any 8 fragments".
  const FragmentsRequest any{id, {}, 8};
  EXPECT_EQ(*decode_fragments_request(encode_fragments_request(any), 12), any);
  // at_least may be all n, never more.
  EXPECT_TRUE(decode_fragments_request(encode_fragments_request({id, {}, 12}), 12));
  auto over = decode_fragments_request(encode_fragments_request({id, {}, 13}), 12);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, Errc::invalid_argument);
  EXPECT_NE(over.error().message.find("at_least 13"), std::string::npos) << over.error().message;
  Bytes top = v2;
  top[33] = 255;
  EXPECT_EQ(decode_fragments_request(top, 12).error().code, Errc::invalid_argument);
  // Version 2 with at_least 0 is version 1's value in another encoding: refused.
  Bytes zero = v2;
  zero[33] = 0;
  EXPECT_EQ(decode_fragments_request(zero, 12).error().code, Errc::invalid_argument);
  // Truncated anywhere, or extended: refused, never read past the end.
  for (size_t len = 0; len < v2.size(); ++len) {
    EXPECT_FALSE(decode_fragments_request(ByteSpan(v2).first(len), 12)) << "length " << len;
  }
  Bytes longer = v2;
  longer.push_back(9);
  EXPECT_FALSE(decode_fragments_request(longer, 12));
  // The fragment list is checked as in version 1.
  EXPECT_FALSE(decode_fragments_request(encode_fragments_request({id, {2, 2}, 8}), 12));
  EXPECT_FALSE(decode_fragments_request(encode_fragments_request({id, {12}, 8}), 12));
  // A later version is unsupported, not malformed.
  Bytes newer = v2;
  newer[0] = 3;
  EXPECT_EQ(decode_fragments_request(newer, 12).error().code, Errc::unsupported);
}

TEST(NodeWireFuzzCorpus, EveryCorpusInputDecodesSafely) {
  const std::filesystem::path dir = std::filesystem::path(CAIRN_FUZZ_CORPUS_DIR) / "node_wire";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const Bytes input = cairn::test::read_file(e.path());
    EXPECT_EQ(fuzz::wire_one_input(input.data(), input.size()), 0) << e.path();
    ++n;
  }
  EXPECT_GE(n, 8u) << "the seed corpus is missing";
}

TEST(NodeWireFuzzCorpus, RandomInputsDecodeSafely) {
  auto rng = cairn::test::seeded_rng(64);
  for (int i = 0; i < 3000; ++i) {
    Bytes input = cairn::test::random_bytes(rng, rng() % 600);
    // The version byte, so decoders get past it: 1, or 2 for half the
    // fragments requests (the version that carries at_least).
    if (input.size() > 2) input[1] = (input[0] % 3 == 1 && i % 2 == 1) ? 2 : 1;
    EXPECT_EQ(fuzz::wire_one_input(input.data(), input.size()), 0);
  }
}

}  // namespace
}  // namespace cairn::node::wire
