// The dev chain's JSON-RPC over real HTTP on 127.0.0.1: the Ethereum-shaped
// clock methods, every malformed-request class, body limits, and the Chain
// and clock clients against a live server.

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "cairn/contracts/devchain.hpp"
#include "cairn/contracts/rpc.hpp"
#include "cairn/p2p/clock.hpp"
#include "chain_test_util.hpp"

namespace cairn::contracts {
namespace {

using nlohmann::json;
using test::commitment_from;
using test::hash_from;
using test::key_from;
using test::kStart;
using test::small_params;

class RpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rng = cairn::test::seeded_rng(40);
    sequencer.emplace(key_from(rng));
    user.emplace(key_from(rng));
    DevChainSettings s;
    s.db_path = (dir / "chain").string();
    s.sync_writes = false;
    auto c = DevChain::open(s, *sequencer, small_params(), time);
    ASSERT_TRUE(c) << c.error().to_string();
    chain = std::move(*c);
    rpc_settings.port = cairn::test::free_port();
    rpc_settings.max_body_bytes = 64 * 1024;
    rpc_settings.max_batch = 20;
    auto srv = RpcServer::start(*chain, p2p::real_clock(), rpc_settings);
    ASSERT_TRUE(srv) << srv.error().to_string();
    server = std::move(*srv);
    http.emplace("127.0.0.1", server->port());
    http->set_read_timeout(std::chrono::seconds(5));
    http->set_tcp_nodelay(true);
  }
  void TearDown() override {
    if (server) server->stop();
  }

  BlockHeader block() {
    time->advance(1000);
    auto h = chain->produce_block();
    EXPECT_TRUE(h) << h.error().to_string();
    return *h;
  }

  // POSTs a raw body; returns HTTP status and parsed JSON (null when empty).
  std::pair<int, json> post(const std::string& body) {
    auto res = http->Post("/", body, "application/json");
    EXPECT_TRUE(res) << httplib::to_string(res.error());
    if (!res) return {0, nullptr};
    json j = res->body.empty() ? json() : json::parse(res->body, nullptr, false);
    return {res->status, j};
  }

  json call(const std::string& method, json params = json::array()) {
    auto [status, j] =
        post(json{{"jsonrpc", "2.0"}, {"id", 7}, {"method", method}, {"params", params}}.dump());
    EXPECT_EQ(status, 200);
    return j;
  }

  static int error_code(const json& j) { return j.at("error").at("code").get<int>(); }

  cairn::test::TempDir dir;
  std::mt19937_64 rng;
  std::optional<SigningKey> sequencer, user;
  std::shared_ptr<ManualTime> time = std::make_shared<ManualTime>(kStart);
  std::unique_ptr<DevChain> chain;
  RpcServerSettings rpc_settings;
  std::unique_ptr<RpcServer> server;
  std::optional<httplib::Client> http;
};

TEST_F(RpcTest, EthereumShapedBlocks) {
  block();
  const BlockHeader two = block();
  EXPECT_EQ(call("eth_blockNumber")["result"], "0x2");
  json latest = call("eth_getBlockByNumber", {"latest", false})["result"];
  ASSERT_TRUE(latest.is_object()) << latest;
  EXPECT_EQ(latest["number"], "0x2");
  EXPECT_EQ(latest["hash"], "0x" + to_hex(two.hash()));
  EXPECT_EQ(latest["parentHash"], "0x" + to_hex(two.parent_hash));
  EXPECT_EQ(
      latest["timestamp"], "0x" + [] {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%llx",
                      static_cast<unsigned long long>((kStart + 2000) / 1000));
        return std::string(buf);
      }());
  EXPECT_EQ(latest["mixHash"], "0x" + to_hex(block_randomness(two.hash())));
  json one = call("eth_getBlockByNumber", {"0x1", false})["result"];
  EXPECT_EQ(one["hash"], latest["parentHash"]);
  EXPECT_EQ(call("eth_getBlockByNumber", {"earliest", false})["result"]["number"], "0x0");
  EXPECT_TRUE(call("eth_getBlockByNumber", {"0x99", false})["result"].is_null());
  // Full transactions carry their wire bytes.
  ASSERT_TRUE(
      chain->submit(make_put_blob(*user, chain->info().chain_id, 1, commitment_from(rng), 3)));
  block();
  json full = call("eth_getBlockByNumber", {"latest", true})["result"];
  ASSERT_EQ(full["transactions"].size(), 1u);
  EXPECT_TRUE(full["transactions"][0]["input"].get<std::string>().starts_with("0x01"));
  json hashes = call("eth_getBlockByNumber", {"latest", false})["result"]["transactions"];
  EXPECT_EQ(hashes[0], full["transactions"][0]["hash"]);
}

TEST_F(RpcTest, MalformedRequestsGetTheStandardErrors) {
  struct Case {
    const char* body;
    int code;
    json id;
  };
  const Case cases[] = {
      {"{", -32700, nullptr},
      {"{\"jsonrpc\":\"2.0\",\"method\":\"eth_blockNumber\",\"id\":1", -32700, nullptr},
      {"1", -32600, nullptr},
      {"\"eth_blockNumber\"", -32600, nullptr},
      {"[]", -32600, nullptr},
      {R"({"jsonrpc":"1.0","method":"eth_blockNumber","id":1})", -32600, 1},
      {R"({"method":"eth_blockNumber","id":2})", -32600, 2},
      {R"({"jsonrpc":"2.0","id":3})", -32600, 3},
      {R"({"jsonrpc":"2.0","method":5,"id":4})", -32600, 4},
      {R"({"jsonrpc":"2.0","method":"eth_blockNumber","params":"x","id":5})", -32600, 5},
      {R"({"jsonrpc":"2.0","method":"eth_blockNumber","id":{"a":1}})", -32600, nullptr},
      {R"({"jsonrpc":"2.0","method":"eth_getBalance","params":[],"id":"s"})", -32601, "s"},
      {R"({"jsonrpc":"2.0","method":"eth_blockNumber","params":[1],"id":6})", -32602, 6},
      {R"({"jsonrpc":"2.0","method":"eth_getBlockByNumber","params":["0xZZ",false],"id":7})",
       -32602, 7},
      {R"({"jsonrpc":"2.0","method":"eth_getBlockByNumber","params":["0x",false],"id":8})", -32602,
       8},
      {R"({"jsonrpc":"2.0","method":"eth_getBlockByNumber","params":["0x1",3],"id":9})", -32602, 9},
      {R"({"jsonrpc":"2.0","method":"eth_getBlockByNumber","params":{"block":"latest"},"id":10})",
       -32602, 10},
      {R"({"jsonrpc":"2.0","method":"cairn_getBlobById","params":["0x1234"],"id":11})", -32602, 11},
      {R"({"jsonrpc":"2.0","method":"cairn_sendTransaction","params":["not hex"],"id":12})", -32602,
       12},
      {R"({"jsonrpc":"2.0","method":"cairn_getNodes","params":["0x100000000"],"id":13})", -32602,
       13},
      {R"({"jsonrpc":"2.0","method":"cairn_getHeaders","params":["0x0","0x100000"],"id":14})",
       -32602, 14},
  };
  for (const Case& c : cases) {
    auto [status, j] = post(c.body);
    EXPECT_EQ(status, 200) << c.body;
    ASSERT_TRUE(j.is_object()) << c.body << " -> " << j;
    EXPECT_EQ(j["jsonrpc"], "2.0") << c.body;
    EXPECT_EQ(error_code(j), c.code) << c.body << " -> " << j;
    EXPECT_EQ(j["id"], c.id) << c.body;
    EXPECT_FALSE(j.contains("result"));
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }
}

TEST_F(RpcTest, BatchesNotificationsAndLimits) {
  // A batch: one good call, one invalid element, one notification.
  auto [status, j] = post(R"([{"jsonrpc":"2.0","method":"eth_blockNumber","id":1}, 1,
                              {"jsonrpc":"2.0","method":"eth_blockNumber"}])");
  EXPECT_EQ(status, 200);
  ASSERT_TRUE(j.is_array()) << j;
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["result"], "0x0");
  EXPECT_EQ(j[1]["error"]["code"], -32600);
  EXPECT_TRUE(j[1]["id"].is_null());

  // Notifications alone get no body at all.
  auto [s1, j1] = post(R"({"jsonrpc":"2.0","method":"eth_blockNumber"})");
  EXPECT_EQ(s1, 204);
  EXPECT_TRUE(j1.is_null());
  auto [s2, j2] =
      post(R"([{"jsonrpc":"2.0","method":"eth_blockNumber"},{"jsonrpc":"2.0","method":"nope"}])");
  EXPECT_EQ(s2, 204);

  // More calls than max_batch (20): refused as a whole.
  json big = json::array();
  for (int i = 0; i < 21; ++i)
    big.push_back(json{{"jsonrpc", "2.0"}, {"method", "eth_blockNumber"}, {"id", i}});
  auto [s3, j3] = post(big.dump());
  EXPECT_EQ(s3, 200);
  ASSERT_TRUE(j3.is_object()) << j3;
  EXPECT_EQ(error_code(j3), -32600);
  EXPECT_NE(j3["error"]["message"].get<std::string>().find("limit of 20"), std::string::npos);

  // Bodies over max_body_bytes (64 KiB): HTTP 413 with a JSON-RPC error,
  // whether the length is declared or the body is chunked.
  const std::string huge = R"({"jsonrpc":"2.0","method":"eth_blockNumber","id":1,"pad":")" +
                           std::string(100 * 1024, 'a') + "\"}";
  auto res = http->Post("/", huge, "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 413);
  json err = json::parse(res->body, nullptr, false);
  ASSERT_TRUE(err.is_object()) << res->body;
  EXPECT_EQ(err["error"]["code"], -32600);

  httplib::Client chunked("127.0.0.1", server->port());
  size_t sent = 0;
  auto res2 = chunked.Post(
      "/",
      [&](size_t, httplib::DataSink& sink) {
        if (sent >= huge.size()) {
          sink.done();
          return true;
        }
        const size_t n = std::min<size_t>(8192, huge.size() - sent);
        sink.write(huge.data() + sent, n);
        sent += n;
        return true;
      },
      "application/json");
  ASSERT_TRUE(res2) << httplib::to_string(res2.error());
  EXPECT_EQ(res2->status, 413);

  // Only POST speaks JSON-RPC.
  auto get = http->Get("/");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 405);

  // And the server is still fine.
  httplib::Client fresh("127.0.0.1", server->port());
  auto ok = fresh.Post("/", R"({"jsonrpc":"2.0","method":"eth_blockNumber","id":"x"})",
                       "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(json::parse(ok->body)["result"], "0x0");
}

TEST_F(RpcTest, TransactionRejectionsCarryTheirReason) {
  const Hash32 id = chain->info().chain_id;
  Bytes tx = make_put_blob(*user, id, 1, commitment_from(rng), 10);
  Bytes bad = tx;
  bad[45] ^= 1;
  json j = call("cairn_sendTransaction", {"0x" + to_hex(bad)});
  EXPECT_EQ(error_code(j), -32010) << j;
  EXPECT_EQ(j["error"]["data"]["reason"], "bad_signature");
  j = call("cairn_sendTransaction", {"0x" + to_hex(ByteSpan(tx).first(100))});
  EXPECT_EQ(error_code(j), -32010);
  EXPECT_EQ(j["error"]["data"]["reason"], "malformed");
  j = call("cairn_sendTransaction", {"0x" + to_hex(tx)});
  EXPECT_EQ(j["result"], "0x" + to_hex(tx_hash(tx))) << j;
  j = call("cairn_sendTransaction", {"0x" + to_hex(tx)});
  EXPECT_EQ(j["error"]["data"]["reason"], "duplicate_pending");
  EXPECT_TRUE(call("cairn_getReceipt", {"0x" + to_hex(tx_hash(tx))})["result"].is_null());
  block();
  json receipt = call("cairn_getReceipt", {"0x" + to_hex(tx_hash(tx))})["result"];
  EXPECT_EQ(receipt["status"], "ok") << receipt;
  EXPECT_EQ(receipt["blobIndex"], "0x0");
  EXPECT_EQ(receipt["events"][0]["type"], "blob_registered");
  // Contract-level rejections are receipts.
  Bytes big = make_put_blob(*user, id, 2, commitment_from(rng), chain->info().params.blob_size + 1);
  ASSERT_TRUE(call("cairn_sendTransaction", {"0x" + to_hex(big)}).contains("result"));
  block();
  receipt = call("cairn_getReceipt", {"0x" + to_hex(tx_hash(big))})["result"];
  EXPECT_EQ(receipt["status"], "blob_too_large");
  EXPECT_FALSE(receipt["detail"].get<std::string>().empty());
}

TEST_F(RpcTest, ChainClientMatchesTheChainAndChecksHeaders) {
  RpcClientSettings cs;
  cs.poll_interval_ms = 10;
  auto client_r = connect_devchain(server->url(), cs);
  ASSERT_TRUE(client_r) << client_r.error().to_string();
  Chain& client = **client_r;
  EXPECT_EQ(client.info(), chain->info());

  std::vector<uint64_t> seen;
  std::mutex mu;
  Subscription sub = client.subscribe_heads([&](const BlockHeader& h) {
    std::lock_guard lock(mu);
    seen.push_back(h.number.value);
  });

  const Hash32 id = client.info().chain_id;
  const SigningKey node = key_from(rng);
  std::vector<Bytes> txs = {make_register_node(node, id, 1, "127.0.0.1:7000", {ShardId{0}})};
  std::vector<BlobId> blobs;
  for (uint64_t i = 0; i < 6; ++i) {
    blobs.push_back(commitment_from(rng));
    txs.push_back(
        make_put_blob(*user, id, *client.next_nonce(user->public_key()) + i, blobs.back(), 50));
  }
  auto submitted = client.submit_many(txs);
  for (auto& r : submitted) ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*client.next_nonce(user->public_key()), 6u);
  Bytes bad = txs[1];
  bad[60] ^= 1;
  auto rejected = client.submit(bad);
  ASSERT_FALSE(rejected);
  EXPECT_EQ(rejected.error().code, Errc::verification_failed);

  const BlockHeader b1 = block();
  EXPECT_EQ(*client.head(), b1);
  EXPECT_EQ(*client.header(BlockNumber{0}), *chain->header(BlockNumber{0}));
  EXPECT_EQ(client.header(BlockNumber{5}).error().code, Errc::not_found);
  auto receipt = test::wait_for_receipt(client, *submitted[3], std::chrono::seconds(2));
  ASSERT_TRUE(receipt) << receipt.error().to_string();
  EXPECT_EQ(receipt->blob_index->value, 2u);
  EXPECT_EQ(**client.blob_by_id(blobs[4]), **chain->blob_by_id(blobs[4]));
  EXPECT_EQ(**client.blob_by_index(BlobIndex{5}), **chain->blob_by_index(BlobIndex{5}));
  EXPECT_FALSE(*client.blob_by_index(BlobIndex{6}));
  EXPECT_EQ(*client.blob_count(), 6u);
  EXPECT_EQ(*client.blob_count(ShardId{1}), 2u);
  // Ranges: consecutive from `from`, short where the registry ends, bounded.
  auto range = client.blobs(BlobIndex{2}, 3);
  ASSERT_TRUE(range) << range.error().to_string();
  ASSERT_EQ(range->size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*range)[i], **chain->blob_by_index(BlobIndex{2 + i}));
  EXPECT_EQ(client.blobs(BlobIndex{4}, 100)->size(), 2u);
  EXPECT_TRUE(client.blobs(BlobIndex{6}, 10)->empty());
  EXPECT_EQ(client.blobs(BlobIndex{0}, Chain::kMaxBlobRange + 1).error().code,
            Errc::invalid_argument);
  json too_many = call("cairn_getBlobs", {"0x0", "0x401"});
  EXPECT_EQ(too_many["error"]["code"], -32602) << too_many.dump();
  EXPECT_EQ(*client.nodes(ShardId{0}), *chain->nodes(ShardId{0}));
  EXPECT_EQ(*client.events(b1.number), *chain->events(b1.number));
  auto inc = client.blob_inclusion(BlobIndex{3}, b1.number);
  ASSERT_TRUE(inc) << inc.error().to_string();
  EXPECT_TRUE(verify_blob_inclusion(b1, blobs[3], BlobIndex{3}, inc->proof));

  // Responses and their proof.
  block();
  const Hash32 rh = hash_from(rng);
  while (chain->head()->number.value < 8) block();
  ASSERT_TRUE(client.submit(make_submit_response(node, id, 2, ShardId{1}, Epoch{1}, rh)));
  const BlockHeader anchor = block();
  auto responses = client.responses(ShardId{1}, Epoch{1});
  ASSERT_TRUE(responses);
  ASSERT_EQ(responses->size(), 0u);  // node serves shard 0 only: rejected, not anchored
  auto late =
      test::submit_and_wait(client, make_submit_response(node, id, 3, ShardId{0}, Epoch{1}, rh),
                            std::chrono::milliseconds(50));
  EXPECT_EQ(late.error().code, Errc::timeout);  // no block was produced meanwhile
  const BlockHeader anchor2 = block();
  auto proof = client.response_inclusion(node.public_key(), ShardId{0}, Epoch{1});
  ASSERT_TRUE(proof) << proof.error().to_string();
  EXPECT_EQ(proof->record.anchored_in, anchor2.number);
  EXPECT_TRUE(verify_response_inclusion(anchor2, node.public_key(), ShardId{0}, Epoch{1}, rh,
                                        proof->record.leaf_index, proof->proof));
  EXPECT_NE(anchor.number, anchor2.number);

  auto all = client.headers(BlockNumber{0}, 1000);
  ASSERT_TRUE(all) << all.error().to_string();
  EXPECT_EQ(all->size(), anchor2.number.value + 1);
  EXPECT_EQ(all->back(), anchor2);

  // The subscription saw every block, in order.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (!seen.empty() && seen.back() == anchor2.number.value) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  sub.reset();
  std::vector<uint64_t> expected;
  for (uint64_t n = 1; n <= anchor2.number.value; ++n) expected.push_back(n);
  EXPECT_EQ(seen, expected);
}

TEST_F(RpcTest, HeaderTamperingOverHttpIsDetected) {
  for (int i = 0; i < 3; ++i) block();
  json list = call("cairn_getHeaders", {"0x0", "0x4"})["result"];
  ASSERT_EQ(list.size(), 4u);
  std::vector<Bytes> wires;
  std::vector<BlockHeader> headers;
  for (const json& h : list) {
    auto raw = from_hex(h["raw"].get<std::string>().substr(2));
    ASSERT_TRUE(raw);
    wires.push_back(*raw);
    headers.push_back(*BlockHeader::decode(*raw));
    EXPECT_EQ(h["hash"], "0x" + to_hex(headers.back().hash()));
  }
  const NodeId key = chain->info().sequencer;
  const Hash32 id = chain->info().chain_id;
  ASSERT_TRUE(verify_header_chain(headers, key, id));
  for (size_t which = 0; which < wires.size(); ++which) {
    for (size_t pos = 1; pos < kHeaderBytes; ++pos) {
      Bytes t = wires[which];
      t[pos] ^= 0x04;
      auto copy = headers;
      copy[which] = *BlockHeader::decode(t);
      EXPECT_FALSE(verify_header_chain(copy, key, id)) << which << "/" << pos;
    }
  }
  // A client pinned to another sequencer refuses the chain.
  RpcClientSettings pinned;
  pinned.expected_sequencer = key_from(rng).public_key();
  auto refused = connect_devchain(server->url(), pinned);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::verification_failed);
}

TEST_F(RpcTest, EthereumClockClientReadsTheDevChain) {
  RpcClientSettings cs;
  cs.poll_interval_ms = 10;
  auto clock_r = connect_ethereum_clock(server->url(), cs);
  ASSERT_TRUE(clock_r) << clock_r.error().to_string();
  ConsensusClock& clock = **clock_r;
  std::vector<ClockTick> ticks;
  std::mutex mu;
  Subscription sub = clock.subscribe_ticks([&](const ClockTick& t) {
    std::lock_guard lock(mu);
    ticks.push_back(t);
  });
  std::vector<BlockHeader> made;
  for (int i = 0; i < 3; ++i) {
    made.push_back(block());
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (ticks.size() >= 3) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  sub.reset();
  ASSERT_EQ(ticks.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const ClockTick want = tick_of(made[i]);
    EXPECT_EQ(ticks[i].number, want.number);
    EXPECT_EQ(ticks[i].hash, want.hash);
    EXPECT_EQ(ticks[i].parent_hash, want.parent_hash);
    // mixHash carries the dev chain's randomness, so both clients agree.
    EXPECT_EQ(ticks[i].randomness, want.randomness);
    EXPECT_EQ(ticks[i].timestamp_ms, want.timestamp_ms / 1000 * 1000);
  }
  EXPECT_EQ(clock.latest_tick()->number, made.back().number);
  EXPECT_EQ(clock.tick(BlockNumber{50}).error().code, Errc::not_found);
  // Unreachable endpoints fail fast with a clear error.
  auto none =
      connect_ethereum_clock("http://127.0.0.1:" + std::to_string(cairn::test::free_port()));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::timeout);
  EXPECT_FALSE(connect_ethereum_clock("127.0.0.1:1"));
}

}  // namespace
}  // namespace cairn::contracts
