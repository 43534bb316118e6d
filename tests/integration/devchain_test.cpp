// `cairn devchain` as its own process on 127.0.0.1: the clock ticks at the
// configured interval, blocks link, SIGTERM stops cleanly, a restart
// continues the same chain with the same state; and the clock client
// following a real Ethereum JSON-RPC node (ganache from npm).

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <thread>

#include "../contracts/chain_test_util.hpp"
#include "cairn/contracts/rpc.hpp"
#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn {
namespace {

using namespace std::chrono_literals;
using contracts::BlockHeader;
using contracts::ClockTick;

struct Devchain {
  Devchain(const std::filesystem::path& data_dir, const std::filesystem::path& logs, uint16_t port,
           std::vector<std::string> extra = {"--block-time-ms", "100"})
      : url("http://127.0.0.1:" + std::to_string(port)),
        process(args(data_dir, port, std::move(extra)), logs) {}

  static std::vector<std::string> args(const std::filesystem::path& dir, uint16_t port,
                                       std::vector<std::string> extra) {
    std::vector<std::string> a = {test::cairn_binary(), "devchain",
                                  "--listen",           "127.0.0.1:" + std::to_string(port),
                                  "--data-dir",         dir.string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  // Waits for the listening line, then connects a client.
  std::unique_ptr<contracts::Chain> connect(contracts::RpcClientSettings s = {}) {
    EXPECT_TRUE(process.wait_for_output("listening", 20s))
        << process.stdout_text() << process.stderr_text();
    auto c = contracts::connect_devchain(url, s);
    EXPECT_TRUE(c) << c.error().to_string();
    return c ? std::move(*c) : nullptr;
  }

  std::string url;
  test::Process process;
};

std::vector<Bytes> put_blobs(const contracts::Chain& chain, const SigningKey& key,
                             uint64_t first_nonce, size_t n, std::mt19937_64& rng,
                             std::vector<BlobId>& ids) {
  std::vector<Bytes> txs;
  for (size_t i = 0; i < n; ++i) {
    BlobId id;
    for (auto& b : id.bytes) b = static_cast<uint8_t>(rng());
    ids.push_back(id);
    txs.push_back(contracts::make_put_blob(key, chain.info().chain_id, first_nonce + i, id, 4096));
  }
  return txs;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

TEST(DevchainProcess, TicksAtTheConfiguredIntervalAndBlocksLink) {
  test::TempDir dir;
  Devchain dc(dir / "data", dir / "logs", test::free_port());
  contracts::RpcClientSettings cs;
  cs.poll_interval_ms = 10;
  auto chain = dc.connect(cs);
  ASSERT_TRUE(chain);
  EXPECT_NE(dc.process.stdout_text().find("sequencer   " + chain->info().sequencer.hex()),
            std::string::npos);
  EXPECT_EQ(chain->info().params.block_time_ms, 100u);

  std::mutex mu;
  std::vector<BlockHeader> seen;
  auto sub = chain->subscribe_heads([&](const BlockHeader& h) {
    std::lock_guard lock(mu);
    seen.push_back(h);
  });
  const auto start = std::chrono::steady_clock::now();
  const uint64_t first = chain->head()->number.value;
  std::this_thread::sleep_for(2s);
  const uint64_t last = chain->head()->number.value;
  const double elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  sub.reset();

  // About one block per 100 ms of wall time.
  const double produced = static_cast<double>(last - first);
  EXPECT_GE(produced, elapsed_ms / 100 * 0.75) << elapsed_ms << " ms";
  EXPECT_LE(produced, elapsed_ms / 100 * 1.15 + 1) << elapsed_ms << " ms";

  std::lock_guard lock(mu);
  ASSERT_GE(seen.size(), 10u);
  std::vector<double> gaps;
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].number.value, seen[i - 1].number.value + 1);
    EXPECT_EQ(seen[i].parent_hash, seen[i - 1].hash());
    gaps.push_back(static_cast<double>(seen[i].timestamp_ms - seen[i - 1].timestamp_ms));
  }
  // Block timestamps are 100 ms apart (the sequencer's cadence, not our polling).
  EXPECT_NEAR(median(gaps), 100.0, 15.0);
  EXPECT_TRUE(
      contracts::verify_header_chain(seen, chain->info().sequencer, chain->info().chain_id));

  // The Ethereum-shaped view agrees: hash and parentHash link in
  // eth_getBlockByNumber, and mixHash carries the same randomness.
  auto clock = contracts::connect_ethereum_clock(dc.url);
  ASSERT_TRUE(clock) << clock.error().to_string();
  ClockTick previous = *(*clock)->tick(BlockNumber{first});
  for (uint64_t n = first + 1; n <= first + 10; ++n) {
    auto t = (*clock)->tick(BlockNumber{n});
    ASSERT_TRUE(t) << t.error().to_string();
    EXPECT_EQ(t->parent_hash, previous.hash);
    EXPECT_EQ(t->hash, chain->header(BlockNumber{n})->hash());
    EXPECT_EQ(t->randomness, *chain->randomness(BlockNumber{n}));
    previous = *t;
  }

  EXPECT_EQ(dc.process.stop(SIGINT), 0);
  EXPECT_NE(dc.process.stdout_text().find("received SIGINT, stopped at block"), std::string::npos);
}

TEST(DevchainProcess, RestartContinuesTheSameChainWithTheSameState) {
  test::TempDir dir;
  auto rng = test::seeded_rng(100);
  std::array<uint8_t, 32> seed{};
  for (auto& b : seed) b = static_cast<uint8_t>(rng());
  const SigningKey user = SigningKey::from_seed(seed);
  const uint16_t port = test::free_port();

  BlockHeader head_before;
  std::vector<BlobId> ids;
  std::vector<uint64_t> indexes;
  contracts::ChainInfo info;
  {
    Devchain dc(dir / "data", dir / "logs1", port);
    auto chain = dc.connect();
    ASSERT_TRUE(chain);
    info = chain->info();
    auto submitted = chain->submit_many(put_blobs(*chain, user, 1, 50, rng, ids));
    for (auto& h : submitted) {
      ASSERT_TRUE(h) << h.error().to_string();
      auto r = contracts::test::wait_for_receipt(*chain, *h, 10s);
      ASSERT_TRUE(r) << r.error().to_string();
      ASSERT_TRUE(r->ok());
      indexes.push_back(r->blob_index->value);
    }
    EXPECT_EQ(dc.process.stop(SIGTERM), 0) << dc.process.stderr_text();
    EXPECT_NE(dc.process.stdout_text().find("received SIGTERM"), std::string::npos);
    // What the chain had when it stopped, read back from the log line.
    const std::string out = dc.process.stdout_text();
    const auto pos = out.find("stopped at block ");
    ASSERT_NE(pos, std::string::npos);
    head_before.number = BlockNumber{std::stoull(out.substr(pos + 17))};
  }

  // Other parameters on the same data dir are refused with a clear error.
  {
    auto r = test::run({test::cairn_binary(), "devchain", "--listen", "127.0.0.1:0", "--data-dir",
                        (dir / "data").string(), "--block-time-ms", "100", "--epoch-blocks", "16"},
                       30s);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("other network parameters"), std::string::npos) << r.err;
  }

  Devchain dc(dir / "data", dir / "logs2", port);
  auto chain = dc.connect();
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->info(), info);
  EXPECT_NE(
      dc.process.stdout_text().find("head        " + std::to_string(head_before.number.value)),
      std::string::npos)
      << dc.process.stdout_text();
  for (size_t i = 0; i < ids.size(); ++i) {
    auto b = chain->blob_by_id(ids[i]);
    ASSERT_TRUE(b && *b) << i;
    EXPECT_EQ((*b)->index.value, indexes[i]);
  }
  EXPECT_EQ(*chain->blob_count(), ids.size());
  EXPECT_EQ(*chain->next_nonce(user.public_key()), 51u);
  // The chain grows on from the old head, one unbroken signed chain.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (chain->head()->number.value < head_before.number.value + 5 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  auto headers =
      chain->headers(BlockNumber{0}, static_cast<uint32_t>(head_before.number.value + 5));
  ASSERT_TRUE(headers) << headers.error().to_string();
  ASSERT_EQ(headers->size(), head_before.number.value + 5);
  EXPECT_TRUE(contracts::verify_header_chain(*headers, info.sequencer, info.chain_id));
  // And the restarted chain keeps accepting work.
  auto more =
      contracts::test::submit_and_wait(*chain, put_blobs(*chain, user, 51, 1, rng, ids)[0], 10s);
  ASSERT_TRUE(more) << more.error().to_string();
  EXPECT_EQ(more->blob_index->value, 50u);
}

std::optional<std::string> find_ganache() {
  if (const char* env = std::getenv("CAIRN_GANACHE"); env && *env) {
    if (std::filesystem::exists(env)) return std::string(env);
    return std::nullopt;
  }
  const std::filesystem::path p =
      std::filesystem::path(CAIRN_NPM_PREFIX) / "node_modules/.bin/ganache";
  if (std::filesystem::exists(p)) return p.string();
  return std::nullopt;
}

TEST(EthereumClock, FollowsGanacheHead) {
  const auto ganache = find_ganache();
  if (!ganache) {
    GTEST_SKIP() << "ganache not found (" CAIRN_NPM_PREFIX
                    "/node_modules/.bin/ganache or "
                    "$CAIRN_GANACHE): tools/run-tests installs it when npm is present "
                    "(npm install --prefix build/npm ganache@7)";
  }
  test::TempDir dir;
  const uint16_t port = test::free_port();
  test::Process node({*ganache, "--server.host", "127.0.0.1", "--server.port", std::to_string(port),
                      "--miner.blockTime", "1", "--logging.quiet"},
                     dir / "ganache");
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  contracts::RpcClientSettings cs;
  cs.poll_interval_ms = 200;
  std::unique_ptr<contracts::ConsensusClock> clock;
  const auto up_by = std::chrono::steady_clock::now() + 60s;
  while (!clock && std::chrono::steady_clock::now() < up_by) {
    ASSERT_TRUE(node.running()) << node.stderr_text();
    if (auto c = contracts::connect_ethereum_clock(url, cs)) {
      clock = std::move(*c);
    } else {
      std::this_thread::sleep_for(200ms);
    }
  }
  ASSERT_TRUE(clock) << "ganache did not answer on " << url << ": " << node.stderr_text();

  std::mutex mu;
  std::vector<ClockTick> ticks;
  auto sub = clock->subscribe_ticks([&](const ClockTick& t) {
    std::lock_guard lock(mu);
    ticks.push_back(t);
  });
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (ticks.size() >= 4 || std::chrono::steady_clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(100ms);
  }
  sub.reset();
  std::lock_guard lock(mu);
  ASSERT_GE(ticks.size(), 4u) << "the clock client saw too few ganache blocks in 15 s";
  for (size_t i = 1; i < ticks.size(); ++i) {
    EXPECT_EQ(ticks[i].number.value, ticks[i - 1].number.value + 1);
    EXPECT_EQ(ticks[i].parent_hash, ticks[i - 1].hash);
    EXPECT_GE(ticks[i].timestamp_ms, ticks[i - 1].timestamp_ms);
    EXPECT_LE(ticks[i].timestamp_ms - ticks[i - 1].timestamp_ms, 3000u);
    // Post-merge blocks carry prevrandao in mixHash: that is the randomness,
    // not the block-hash fallback.
    EXPECT_NE(ticks[i].randomness, contracts::block_randomness(ticks[i].hash));
    EXPECT_NE(ticks[i].randomness, Hash32{});
  }
  auto latest = clock->latest_tick();
  ASSERT_TRUE(latest);
  EXPECT_GE(latest->number, ticks.back().number);
  EXPECT_EQ(clock->tick(ticks[1].number)->hash, ticks[1].hash);
}

}  // namespace
}  // namespace cairn
