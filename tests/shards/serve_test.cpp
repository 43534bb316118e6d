// Both ends of a fragments exchange: what a node serves from its sealed
// store, and how a receiver rebuilds and verifies a blob from a reply.

#include <gtest/gtest.h>

#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/shards/serve.hpp"
#include "shards/memory_network.hpp"
#include "shards/sync_testing.hpp"
#include "support/test_util.hpp"

namespace cairn::shards {
namespace {

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    params_ = testing::sync_params();
    codec_ = *erasure::Codec::create(params_);
    auto rng = test::seeded_rng(21);
    corpus_ = testing::make_corpus(*codec_, BlobIndex{0}, 4, rng);
    node_ = testing::make_node(params_, dir_ / "node", 0x31);
    testing::ingest_corpus(*node_, *codec_, corpus_);
    committed_ = *erasure::encode_and_commit(*codec_, corpus_.payloads[1]);
  }

  FragmentRequest request(size_t blob, std::vector<uint8_t> fragments,
                          uint32_t at_least = 0) const {
    FragmentRequest r;
    r.id = corpus_.blobs[blob].id;
    r.index = corpus_.blobs[blob].index;
    for (uint8_t f : fragments) r.fragments.push_back(FragmentIndex{f});
    r.at_least = at_least;
    return r;
  }

  // A reply carrying the given committed fragments of blob 1, in that order.
  FragmentReply reply_of(std::vector<uint8_t> fragments) const {
    FragmentReply r;
    for (uint8_t f : fragments) {
      r.fragments.push_back(FragmentIndex{f});
      const ByteSpan b = committed_.encoded.fragment(f);
      r.data.insert(r.data.end(), b.begin(), b.end());
    }
    r.fragment_roots = committed_.commitment.fragment_roots;
    return r;
  }

  test::TempDir dir_;
  erasure::NetworkParams params_;
  std::shared_ptr<const erasure::Codec> codec_;
  testing::Corpus corpus_;
  std::unique_ptr<testing::TestNode> node_;
  erasure::CommittedBlob committed_;
};

TEST_F(ServeTest, ServesUnsealedFragmentsWithTheirRoots) {
  auto reply = serve_fragments(*node_->store, request(1, {0, 1, 2, 3}), node_->seal.get());
  ASSERT_TRUE(reply) << reply.error().to_string();
  ASSERT_EQ(reply->fragments.size(), 4u);
  EXPECT_EQ(reply->fragment_roots, committed_.commitment.fragment_roots);
  for (uint8_t f = 0; f < 4; ++f) {
    const ByteSpan got =
        ByteSpan(reply->data).subspan(size_t{f} * params_.fragment_size(), params_.fragment_size());
    const ByteSpan want = committed_.encoded.fragment(f);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin(), want.end()))
        << "fragment " << int(f);
  }
}

TEST_F(ServeTest, SubstitutesForADamagedFragmentWhenAllowed) {
  auto rng = test::seeded_rng(22);
  ASSERT_TRUE(node_->store->put_fragment(corpus_.blobs[1].index, FragmentIndex{2},
                                         test::random_bytes(rng, params_.fragment_size())));
  auto strict = serve_fragments(*node_->store, request(1, {0, 1, 2, 3}), node_->seal.get());
  ASSERT_TRUE(strict);
  EXPECT_EQ(strict->fragments.size(), 3u) << "the damaged fragment is left out, never sent";

  auto flexible = serve_fragments(*node_->store, request(1, {0, 1, 2, 3}, 4), node_->seal.get());
  ASSERT_TRUE(flexible) << flexible.error().to_string();
  ASSERT_EQ(flexible->fragments.size(), 4u);
  EXPECT_EQ(flexible->fragments[3], FragmentIndex{4}) << "the first parity fragment stands in";
  auto blob = verify_fetched(*codec_, corpus_.blobs[1], std::move(*flexible));
  ASSERT_TRUE(blob) << blob.error().to_string();
  EXPECT_EQ(blob->encoded.data, committed_.encoded.data);
}

TEST_F(ServeTest, RefusesWhatItDoesNotHoldOrCannotParse) {
  FragmentRequest other = request(1, {0});
  other.id = corpus_.blobs[2].id;
  EXPECT_EQ(serve_fragments(*node_->store, other, node_->seal.get()).error().code, Errc::not_found);
  FragmentRequest absent = request(1, {0});
  absent.index = BlobIndex{40};
  EXPECT_EQ(serve_fragments(*node_->store, absent, node_->seal.get()).error().code,
            Errc::not_found);
  EXPECT_EQ(serve_fragments(*node_->store, request(1, {6}), node_->seal.get()).error().code,
            Errc::invalid_argument);
  EXPECT_EQ(serve_fragments(*node_->store, request(1, {1, 1}), node_->seal.get()).error().code,
            Errc::invalid_argument);
  EXPECT_EQ(serve_fragments(*node_->store, request(1, {}), node_->seal.get()).error().code,
            Errc::invalid_argument);
  EXPECT_EQ(serve_fragments(*node_->store, request(1, {0}, 7), node_->seal.get()).error().code,
            Errc::invalid_argument);
  EXPECT_EQ(serve_fragments(*node_->store, request(1, {0}), nullptr).error().code,
            Errc::invalid_argument);
}

TEST_F(ServeTest, VerifiesAReplyFromDataOrAnyKFragments) {
  auto from_data = verify_fetched(*codec_, corpus_.blobs[1], reply_of({0, 1, 2, 3}));
  ASSERT_TRUE(from_data) << from_data.error().to_string();
  EXPECT_EQ(from_data->encoded.data, committed_.encoded.data);
  EXPECT_EQ(from_data->commitment.id, corpus_.blobs[1].id);
  EXPECT_EQ(from_data->encoded.length, corpus_.blobs[1].length);

  auto from_parity = verify_fetched(*codec_, corpus_.blobs[1], reply_of({5, 1, 4, 3}));
  ASSERT_TRUE(from_parity) << from_parity.error().to_string();
  EXPECT_EQ(from_parity->encoded.data, committed_.encoded.data);
}

TEST_F(ServeTest, RejectsRepliesThatDoNotCommitToTheId) {
  const RegisteredBlob& blob = corpus_.blobs[1];
  FragmentReply flipped = reply_of({0, 1, 2, 3});
  flipped.data[100] ^= 1;
  EXPECT_EQ(verify_fetched(*codec_, blob, flipped).error().code, Errc::verification_failed);

  FragmentReply flipped_parity = reply_of({0, 1, 4, 5});
  flipped_parity.data.back() ^= 1;
  EXPECT_EQ(verify_fetched(*codec_, blob, flipped_parity).error().code, Errc::verification_failed);

  EXPECT_EQ(verify_fetched(*codec_, blob, reply_of({0, 1, 2})).error().code, Errc::too_many_losses)
      << "fewer than k fragments: the peer lacks them, it did not lie";
  EXPECT_EQ(verify_fetched(*codec_, blob, reply_of({0, 1, 2, 2})).error().code,
            Errc::verification_failed)
      << "a fragment twice";
  FragmentReply short_data = reply_of({0, 1, 2, 3});
  short_data.data.pop_back();
  EXPECT_EQ(verify_fetched(*codec_, blob, short_data).error().code, Errc::verification_failed);

  // The right bytes under another id.
  RegisteredBlob other = blob;
  other.id = corpus_.blobs[2].id;
  EXPECT_EQ(verify_fetched(*codec_, other, reply_of({0, 1, 2, 3})).error().code,
            Errc::verification_failed);
}

TEST_F(ServeTest, RejectsBytesBeyondTheRegisteredLength) {
  // The chain binds the true length: data after it must be zero padding,
  // otherwise the same id could stand for two payloads.
  auto rng = test::seeded_rng(23);
  const Bytes payload = test::random_bytes(rng, 1000);
  auto c = *erasure::encode_and_commit(*codec_, payload);
  FragmentReply r;
  for (uint8_t f = 0; f < 4; ++f) {
    r.fragments.push_back(FragmentIndex{f});
    const ByteSpan b = c.encoded.fragment(f);
    r.data.insert(r.data.end(), b.begin(), b.end());
  }
  const RegisteredBlob shorter{BlobIndex{9}, c.commitment.id, 999};
  EXPECT_EQ(verify_fetched(*codec_, shorter, r).error().code, Errc::verification_failed);
  const RegisteredBlob exact{BlobIndex{9}, c.commitment.id, 1000};
  EXPECT_TRUE(verify_fetched(*codec_, exact, r));
  const RegisteredBlob too_long{BlobIndex{9}, c.commitment.id, params_.blob_size + 1};
  EXPECT_EQ(verify_fetched(*codec_, too_long, r).error().code, Errc::invalid_argument);
}

}  // namespace
}  // namespace cairn::shards
