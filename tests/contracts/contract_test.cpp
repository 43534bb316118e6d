// The rollup contract state machine: index assignment, idempotent puts,
// deadlines, signature / size / shard checks, replay protection, determinism.

#include <gtest/gtest.h>

#include "cairn/contracts/contract.hpp"
#include "cairn/contracts/header.hpp"
#include "chain_test_util.hpp"

namespace cairn::contracts {
namespace {

using test::commitment_from;
using test::hash_from;
using test::key_from;
using test::small_params;

const Hash32 kChain = [] {
  Hash32 h{};
  h.fill(0x42);
  return h;
}();

// Drives a ContractState block by block like the dev chain does.
class Harness {
 public:
  explicit Harness(erasure::NetworkParams params = small_params()) : state(params, kChain) {}

  // Runs `txs` as block `number` and returns their receipts.
  std::vector<Receipt> block(uint64_t number, const std::vector<Bytes>& txs) {
    state.begin_block(BlockContext{BlockNumber{number}, 1000 * number});
    std::vector<Receipt> out;
    for (size_t i = 0; i < txs.size(); ++i)
      out.push_back(state.execute(txs[i], static_cast<uint32_t>(i)));
    roots.push_back(state.end_block());
    return out;
  }
  Receipt one(uint64_t number, const Bytes& tx) { return block(number, {tx}).at(0); }

  ContractState state;
  std::vector<BlockRoots> roots;
};

TEST(Contract, AssignsConsecutiveIndexesAndShardsFillInOrder) {
  auto rng = cairn::test::seeded_rng(1);
  const SigningKey user = key_from(rng);
  Harness h;  // 4 blobs per shard
  std::vector<BlobId> ids;
  std::vector<Bytes> txs;
  for (uint64_t i = 0; i < 10; ++i) {
    ids.push_back(commitment_from(rng));
    txs.push_back(make_put_blob(user, kChain, i, ids.back(), 1000 + static_cast<uint32_t>(i)));
  }
  auto receipts = h.block(1, txs);
  for (uint64_t i = 0; i < 10; ++i) {
    ASSERT_TRUE(receipts[i].ok()) << receipts[i].detail;
    ASSERT_TRUE(receipts[i].blob_index);
    EXPECT_EQ(receipts[i].blob_index->value, i);
    ASSERT_EQ(receipts[i].events.size(), 1u);
    const auto& ev = std::get<BlobRegistered>(receipts[i].events[0]);
    EXPECT_EQ(ev.index.value, i);
    EXPECT_EQ(ev.commitment, ids[i]);
    auto by_index = h.state.blob_by_index(BlobIndex{i});
    ASSERT_TRUE(by_index);
    EXPECT_EQ(by_index->commitment, ids[i]);
    EXPECT_EQ(by_index->size, 1000 + i);
    EXPECT_EQ(h.state.blob_by_id(ids[i])->index.value, i);
    EXPECT_EQ(h.state.params().shard_of(BlobIndex{i}).value, i / 4);
  }
  EXPECT_EQ(h.state.blob_count(), 10u);
  EXPECT_EQ(h.state.blob_count(ShardId{0}), 4u);
  EXPECT_EQ(h.state.blob_count(ShardId{1}), 4u);
  EXPECT_EQ(h.state.blob_count(ShardId{2}), 2u);
  EXPECT_EQ(h.state.blob_count(ShardId{3}), 0u);
  EXPECT_TRUE(h.state.shard_open(ShardId{2}));
  EXPECT_FALSE(h.state.shard_open(ShardId{3}));
  EXPECT_FALSE(h.state.blob_by_index(BlobIndex{10}));
  // blobs_root is the Merkle root over the commitments by index.
  std::vector<Hash32> leaves;
  for (const BlobId& id : ids) leaves.push_back(blob_leaf(id));
  EXPECT_EQ(h.roots.back().blobs_root, erasure::merkle_root(leaves));
  EXPECT_EQ(h.roots.back().blob_count, 10u);
}

TEST(Contract, SameCommitmentReturnsExistingIndex) {
  auto rng = cairn::test::seeded_rng(2);
  const SigningKey a = key_from(rng), b = key_from(rng);
  Harness h;
  const BlobId first = commitment_from(rng), second = commitment_from(rng);
  EXPECT_EQ(h.one(1, make_put_blob(a, kChain, 1, first, 500)).blob_index->value, 0u);
  EXPECT_EQ(h.one(1, make_put_blob(a, kChain, 2, second, 600)).blob_index->value, 1u);
  const Hash32 root_before = h.roots.back().blobs_root;
  // Another uploader, same bytes: same index, nothing new registered.
  Receipt again = h.one(2, make_put_blob(b, kChain, 7, first, 500));
  ASSERT_TRUE(again.ok()) << again.detail;
  EXPECT_EQ(again.blob_index->value, 0u);
  EXPECT_TRUE(again.events.empty());
  EXPECT_EQ(h.state.blob_count(), 2u);
  EXPECT_EQ(h.roots.back().blobs_root, root_before);
  // The registry binds the id to its true length.
  Receipt other_size = h.one(3, make_put_blob(b, kChain, 8, first, 501));
  EXPECT_EQ(other_size.status, TxStatus::size_mismatch);
  EXPECT_NE(other_size.detail.find("size 500"), std::string::npos) << other_size.detail;
  EXPECT_EQ(h.state.blob_by_id(first)->size, 500u);
}

TEST(Contract, RejectsOversizeBlobs) {
  auto rng = cairn::test::seeded_rng(3);
  const SigningKey a = key_from(rng);
  Harness h;
  const uint32_t max = h.state.params().blob_size;
  EXPECT_TRUE(h.one(1, make_put_blob(a, kChain, 1, commitment_from(rng), max)).ok());
  EXPECT_TRUE(h.one(1, make_put_blob(a, kChain, 2, commitment_from(rng), 0)).ok());
  Receipt big = h.one(1, make_put_blob(a, kChain, 3, commitment_from(rng), max + 1));
  EXPECT_EQ(big.status, TxStatus::blob_too_large);
  EXPECT_FALSE(big.blob_index);
  EXPECT_EQ(h.state.blob_count(), 2u);
}

TEST(Contract, RejectsBadSignaturesAndMalformedFields) {
  auto rng = cairn::test::seeded_rng(4);
  const SigningKey a = key_from(rng), mallory = key_from(rng);
  Harness h;
  const BlobId id = commitment_from(rng);
  const Bytes good = make_put_blob(a, kChain, 1, id, 100);

  // Any flipped bit in the signed part or the signature breaks the signature.
  for (size_t pos : {size_t{2}, size_t{40}, size_t{50}, size_t{77}, good.size() - 1}) {
    Bytes bad = good;
    bad[pos] ^= 0x01;
    Receipt r = h.one(1, bad);
    EXPECT_EQ(r.status, TxStatus::bad_signature) << "byte " << pos << ": " << r.detail;
  }
  // Signed for another chain.
  Hash32 other_chain = kChain;
  other_chain[0] ^= 1;
  EXPECT_EQ(h.one(1, make_put_blob(a, other_chain, 1, id, 100)).status, TxStatus::bad_signature);
  // Mallory re-signs Alice's transaction under Alice's name.
  Transaction forged = *Transaction::decode(good);
  forged.signature = mallory.sign(forged.signing_message(kChain));
  EXPECT_EQ(h.one(1, forged.encode()).status, TxStatus::bad_signature);

  // Wrong-size fields: a 31-byte commitment shifts everything; every
  // truncation and any trailing byte is malformed.
  for (size_t len = 0; len < good.size(); ++len) {
    Receipt r = h.one(1, Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len)));
    EXPECT_EQ(r.status, TxStatus::malformed) << "length " << len;
  }
  Bytes longer = good;
  longer.push_back(0);
  Receipt trailing = h.one(1, longer);
  EXPECT_EQ(trailing.status, TxStatus::malformed);
  EXPECT_NE(trailing.detail.find("trailing"), std::string::npos) << trailing.detail;
  Bytes unknown_kind = good;
  unknown_kind[1] = 9;
  EXPECT_EQ(h.one(1, unknown_kind).status, TxStatus::malformed);

  EXPECT_EQ(h.state.blob_count(), 0u);
  // The original still goes through.
  EXPECT_TRUE(h.one(2, good).ok());
}

TEST(Contract, ReplayedTransactionIsStale) {
  auto rng = cairn::test::seeded_rng(5);
  const SigningKey a = key_from(rng);
  Harness h;
  const Bytes tx = make_put_blob(a, kChain, 5, commitment_from(rng), 10);
  EXPECT_TRUE(h.one(1, tx).ok());
  EXPECT_EQ(h.one(2, tx).status, TxStatus::stale_nonce);
  EXPECT_EQ(h.one(2, make_put_blob(a, kChain, 4, commitment_from(rng), 10)).status,
            TxStatus::stale_nonce);
  // Gaps are allowed.
  EXPECT_TRUE(h.one(2, make_put_blob(a, kChain, 100, commitment_from(rng), 10)).ok());
  EXPECT_EQ(*h.state.last_nonce(a.public_key()), 100u);
  EXPECT_EQ(h.state.blob_count(), 2u);
}

TEST(Contract, RegisterNodeValidatesSenderEndpointAndShards) {
  auto rng = cairn::test::seeded_rng(6);
  const SigningKey n1 = key_from(rng), n2 = key_from(rng);
  Harness h;
  Receipt ok =
      h.one(1, make_register_node(n1, kChain, 1, "127.0.0.1:9000", {ShardId{0}, ShardId{3}}));
  ASSERT_TRUE(ok.ok()) << ok.detail;
  ASSERT_EQ(ok.events.size(), 1u);
  EXPECT_EQ(std::get<NodeRegistered>(ok.events[0]).endpoint, "127.0.0.1:9000");
  // Future shards may be pre-registered (localnets register before uploads).
  ASSERT_EQ(h.state.nodes(ShardId{3}).size(), 1u);
  EXPECT_EQ(h.state.nodes(ShardId{3})[0].node_id, n1.public_key());

  uint64_t nonce = 10;
  for (const char* bad :
       {"", "nohost", ":9000", "host:", "host:0", "host:65536", "ho st:1", "h:12a"}) {
    EXPECT_EQ(h.one(2, make_register_node(n2, kChain, nonce++, bad, {ShardId{0}})).status,
              TxStatus::bad_endpoint)
        << bad;
  }
  EXPECT_TRUE(h.one(2, make_register_node(n2, kChain, 50, "[::1]:9001", {ShardId{0}})).ok());

  // node_id must be the signer.
  Transaction t;
  t.nonce = 60;
  t.body = RegisterNode{n1.public_key(), "10.0.0.1:1", {ShardId{0}}};
  EXPECT_EQ(h.one(3, sign_tx(t, n2, kChain)).status, TxStatus::sender_mismatch);

  // Shard ids beyond the index space.
  erasure::NetworkParams huge = small_params();
  huge.blobs_per_shard = uint64_t{1} << 40;
  Harness big(huge);
  EXPECT_EQ(big.one(1, make_register_node(n1, kChain, 1, "a:1", {ShardId{0xFFFFFFFF}})).status,
            TxStatus::unknown_shard);

  // Shard lists must be strictly ascending: anything else is not canonical.
  Transaction unsorted;
  unsorted.nonce = 70;
  unsorted.body = RegisterNode{n2.public_key(), "a:1", {ShardId{2}, ShardId{1}}};
  EXPECT_EQ(h.one(4, sign_tx(unsorted, n2, kChain)).status, TxStatus::malformed);

  // Re-registering replaces the shard set.
  EXPECT_TRUE(h.one(5, make_register_node(n1, kChain, 2, "127.0.0.1:9100", {ShardId{1}})).ok());
  EXPECT_TRUE(h.state.nodes(ShardId{3}).empty());
  EXPECT_EQ(h.state.nodes(ShardId{0}).size(), 1u);  // n2 only
  EXPECT_EQ(h.state.node(n1.public_key())->endpoint, "127.0.0.1:9100");
}

TEST(Contract, ResponsesAreAcceptedOnlyInsideTheEpochWindow) {
  auto rng = cairn::test::seeded_rng(7);
  const SigningKey node = key_from(rng), user = key_from(rng);
  Harness h;  // E = 8, D = 2
  h.block(1, {make_register_node(node, kChain, 1, "127.0.0.1:9000", {ShardId{0}, ShardId{1}}),
              make_put_blob(user, kChain, 1, commitment_from(rng), 1)});
  uint64_t nonce = 2;
  auto respond = [&](uint64_t block, uint64_t epoch, ShardId shard = ShardId{0}) {
    return h.one(block,
                 make_submit_response(node, kChain, nonce++, shard, Epoch{epoch}, hash_from(rng)));
  };
  // Epoch 0 starts at block 0: blocks 1 and 2 may anchor, block 3 may not.
  EXPECT_EQ(respond(2, 0).status, TxStatus::ok);
  EXPECT_EQ(respond(3, 0, ShardId{1}).status, TxStatus::unknown_shard);  // 1 blob: shard 1 not open
  EXPECT_EQ(respond(3, 1).status, TxStatus::epoch_not_started);
  EXPECT_EQ(respond(8, 1).status,
            TxStatus::epoch_not_started);  // block e*E itself: randomness unknown
  Receipt in_window = respond(9, 1);
  ASSERT_TRUE(in_window.ok()) << in_window.detail;
  ASSERT_EQ(in_window.events.size(), 1u);
  EXPECT_EQ(std::get<ResponseAnchored>(in_window.events[0]).leaf_index, 0u);
  EXPECT_EQ(respond(10, 1).status, TxStatus::duplicate_response);
  Receipt late = respond(11, 2 - 1);
  EXPECT_EQ(late.status, TxStatus::deadline_passed);
  EXPECT_NE(late.detail.find("closed at block 10"), std::string::npos) << late.detail;
  EXPECT_EQ(respond(19, 2).status, TxStatus::deadline_passed);  // 16 + 2 < 19

  // Only registered nodes of the shard, and only for themselves.
  const SigningKey stranger = key_from(rng);
  EXPECT_EQ(
      h.one(17, make_submit_response(stranger, kChain, 1, ShardId{0}, Epoch{2}, hash_from(rng)))
          .status,
      TxStatus::not_registered);
  Transaction t;
  t.nonce = 2;
  t.body = SubmitResponse{node.public_key(), ShardId{0}, Epoch{2}, hash_from(rng)};
  EXPECT_EQ(h.one(17, sign_tx(t, stranger, kChain)).status, TxStatus::sender_mismatch);

  const auto anchored = h.state.responses(ShardId{0}, Epoch{1});
  ASSERT_EQ(anchored.size(), 1u);
  EXPECT_EQ(anchored[0].anchored_in.value, 9u);
  EXPECT_EQ(h.state.responses(ShardId{0}, Epoch{0}).size(), 1u);
  EXPECT_TRUE(h.state.responses(ShardId{0}, Epoch{2}).empty());
}

TEST(Contract, ResponsesRootCommitsToTheBlocksAnchors) {
  auto rng = cairn::test::seeded_rng(8);
  Harness h;
  std::vector<SigningKey> nodes;
  std::vector<Bytes> regs;
  for (int i = 0; i < 5; ++i) {
    nodes.push_back(key_from(rng));
    regs.push_back(make_register_node(nodes.back(), kChain, 1, "127.0.0.1:9000", {ShardId{0}}));
  }
  h.block(1, regs);
  std::vector<Bytes> resp;
  std::vector<Hash32> hashes;
  for (const auto& n : nodes) {
    hashes.push_back(hash_from(rng));
    resp.push_back(make_submit_response(n, kChain, 2, ShardId{0}, Epoch{0}, hashes.back()));
  }
  h.block(2, resp);
  const BlockRoots& roots = h.roots.back();
  EXPECT_EQ(roots.response_count, 5u);
  BlockHeader header;
  header.responses_root = roots.responses_root;
  header.response_count = roots.response_count;
  for (uint32_t i = 0; i < 5; ++i) {
    auto record = h.state.response(nodes[i].public_key(), ShardId{0}, Epoch{0});
    ASSERT_TRUE(record);
    EXPECT_EQ(record->leaf_index, i);
    auto proof = h.state.response_proof(BlockNumber{2}, i);
    ASSERT_TRUE(proof) << proof.error().to_string();
    EXPECT_TRUE(verify_response_inclusion(header, nodes[i].public_key(), ShardId{0}, Epoch{0},
                                          hashes[i], i, *proof));
    // The leaf binds node, shard and epoch, not just the hash.
    EXPECT_FALSE(verify_response_inclusion(header, nodes[(i + 1) % 5].public_key(), ShardId{0},
                                           Epoch{0}, hashes[i], i, *proof));
    EXPECT_FALSE(verify_response_inclusion(header, nodes[i].public_key(), ShardId{0}, Epoch{1},
                                           hashes[i], i, *proof));
  }
  EXPECT_FALSE(h.state.response_proof(BlockNumber{1}, 0));
}

// Random mixed workload, as a list of blocks of signed transactions.
std::vector<std::vector<Bytes>> random_workload(uint64_t salt) {
  auto rng = cairn::test::seeded_rng(salt);
  std::vector<SigningKey> keys;
  for (int i = 0; i < 6; ++i) keys.push_back(key_from(rng));
  std::vector<uint64_t> nonces(keys.size(), 0);
  std::vector<BlobId> seen;
  std::vector<std::vector<Bytes>> blocks;
  for (uint64_t b = 1; b <= 40; ++b) {
    std::vector<Bytes> txs;
    const size_t n = rng() % 12;
    for (size_t i = 0; i < n; ++i) {
      const size_t k = rng() % keys.size();
      const uint64_t nonce = ++nonces[k];
      switch (rng() % 6) {
        case 0:
          txs.push_back(make_register_node(keys[k], kChain, nonce,
                                           "10.0.0." + std::to_string(k) + ":7000",
                                           {ShardId{static_cast<uint32_t>(rng() % 3)}}));
          break;
        case 1:
          txs.push_back(make_submit_response(keys[k], kChain, nonce,
                                             ShardId{static_cast<uint32_t>(rng() % 3)},
                                             Epoch{b / 8}, hash_from(rng)));
          break;
        case 2:
          if (!seen.empty()) {
            txs.push_back(make_put_blob(keys[k], kChain, nonce, seen[rng() % seen.size()], 7));
            break;
          }
          [[fallthrough]];
        default:
          seen.push_back(commitment_from(rng));
          txs.push_back(make_put_blob(keys[k], kChain, nonce, seen.back(), 7));
      }
    }
    blocks.push_back(std::move(txs));
  }
  return blocks;
}

TEST(Contract, ReplaysAreDeterministic) {
  const auto blocks = random_workload(9);
  Harness a, b;
  std::vector<std::vector<Receipt>> ra, rb;
  for (size_t i = 0; i < blocks.size(); ++i) {
    ra.push_back(a.block(i + 1, blocks[i]));
    rb.push_back(b.block(i + 1, blocks[i]));
  }
  EXPECT_EQ(ra, rb);
  ASSERT_EQ(a.roots.size(), b.roots.size());
  for (size_t i = 0; i < a.roots.size(); ++i) {
    EXPECT_EQ(a.roots[i].blobs_root, b.roots[i].blobs_root) << "block " << i + 1;
    EXPECT_EQ(a.roots[i].responses_root, b.roots[i].responses_root) << "block " << i + 1;
    EXPECT_EQ(a.roots[i].blob_count, b.roots[i].blob_count);
  }
  EXPECT_EQ(a.state.digest(), b.state.digest());
  EXPECT_GT(a.state.blob_count(), 20u);

  // The digest does see a difference: one block less.
  Harness c;
  for (size_t i = 0; i + 1 < blocks.size(); ++i) c.block(i + 1, blocks[i]);
  EXPECT_NE(c.state.digest(), a.state.digest());
}

TEST(Encoding, TransactionsRoundTripAndRejectEveryTruncation) {
  auto rng = cairn::test::seeded_rng(10);
  const SigningKey k = key_from(rng);
  const std::vector<Bytes> txs = {
      make_register_node(k, kChain, 3, "node.example:9000", {ShardId{1}, ShardId{7}, ShardId{900}}),
      make_put_blob(k, kChain, 4, commitment_from(rng), 131072),
      make_submit_response(k, kChain, 5, ShardId{2}, Epoch{77}, hash_from(rng)),
  };
  for (const Bytes& wire : txs) {
    auto tx = Transaction::decode(wire);
    ASSERT_TRUE(tx) << tx.error().to_string();
    EXPECT_EQ(tx->encode(), wire);
    EXPECT_TRUE(verify_tx_signature(*tx, kChain));
    for (size_t len = 0; len < wire.size(); ++len) {
      EXPECT_FALSE(Transaction::decode(ByteSpan(wire).first(len))) << "length " << len;
    }
  }
  EXPECT_EQ(txs[1].size(), 142u);
  EXPECT_EQ(txs[2].size(), 182u);
  // Length fields cannot make the decoder allocate beyond the input.
  Bytes lying = txs[0];
  lying[74] = 0xff;  // endpoint length high byte
  EXPECT_FALSE(Transaction::decode(lying));
  EXPECT_FALSE(Transaction::decode(Bytes(kMaxTxBytes + 1, 1)));
}

TEST(Encoding, ReceiptsRoundTrip) {
  auto rng = cairn::test::seeded_rng(11);
  Receipt r;
  r.tx_hash = hash_from(rng);
  r.block = BlockNumber{12};
  r.position = 3;
  r.kind = TxKind::put_blob;
  r.status = TxStatus::ok;
  r.blob_index = BlobIndex{99};
  r.events = {BlobRegistered{BlobIndex{99}, commitment_from(rng), 5},
              NodeRegistered{NodeId{hash_from(rng)}, "a:1", {ShardId{4}}},
              ResponseAnchored{NodeId{hash_from(rng)}, ShardId{1}, Epoch{2}, hash_from(rng), 6}};
  const Bytes wire = r.encode();
  auto back = Receipt::decode(wire);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, r);
  for (size_t len = 0; len < wire.size(); ++len) {
    EXPECT_FALSE(Receipt::decode(ByteSpan(wire).first(len))) << "length " << len;
  }
  Receipt failed;
  failed.status = TxStatus::deadline_passed;
  failed.detail = "too late";
  EXPECT_EQ(*Receipt::decode(failed.encode()), failed);
}

}  // namespace
}  // namespace cairn::contracts

namespace cairn::contracts {
namespace {

// Untrusted bytes from RPC: random and mutated inputs never crash a decoder,
// and whatever decodes re-encodes to exactly the same bytes (one encoding
// per transaction, so a transaction has one hash).
TEST(Encoding, MutatedInputsNeverCrashAndDecodeCanonically) {
  auto rng = cairn::test::seeded_rng(12);
  const SigningKey k = key_from(rng);
  std::vector<Bytes> seeds = {
      make_register_node(k, kChain, 3, "node.example:9000", {ShardId{1}, ShardId{7}}),
      make_put_blob(k, kChain, 4, commitment_from(rng), 131072),
      make_submit_response(k, kChain, 5, ShardId{2}, Epoch{77}, hash_from(rng)),
  };
  Receipt receipt;
  receipt.kind = TxKind::register_node;
  receipt.events = {NodeRegistered{NodeId{hash_from(rng)}, "a:1", {ShardId{4}, ShardId{5}}},
                    BlobRegistered{BlobIndex{1}, commitment_from(rng), 9}};
  seeds.push_back(receipt.encode());
  uint64_t accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Bytes b = seeds[rng() % seeds.size()];
    switch (rng() % 4) {
      case 0:  // flip a few bytes
        for (int f = 0; f < 1 + static_cast<int>(rng() % 3); ++f) {
          b[rng() % b.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
        }
        break;
      case 1:  // truncate
        b.resize(rng() % b.size());
        break;
      case 2:  // append junk
        for (int f = 0; f < 1 + static_cast<int>(rng() % 8); ++f)
          b.push_back(static_cast<uint8_t>(rng()));
        break;
      default:  // pure noise
        b = cairn::test::random_bytes(rng, rng() % 300);
    }
    if (auto tx = Transaction::decode(b)) {
      ++accepted;
      EXPECT_EQ(tx->encode(), b);
    }
    if (auto r = Receipt::decode(b)) {
      EXPECT_EQ(r->encode(), b);
    }
    (void)BlockHeader::decode(b);
    (void)ChainInfo::decode(b);
  }
  // Flips inside fixed-size fields (commitment, nonce, signature) still decode.
  EXPECT_GT(accepted, 100u);
}

}  // namespace
}  // namespace cairn::contracts
