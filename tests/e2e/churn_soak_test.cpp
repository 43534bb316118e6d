// Churn soak (label "soak", not in the default run: `tools/run-tests -L soak`):
// 6 nodes over 2 shards; for $CAIRN_SOAK_SECONDS (default 240, at most 420,
// so the whole test with its final reads stays within 10 minutes) nodes are
// killed (SIGKILL or SIGTERM) and restarted at random while clients keep
// uploading and fetching through random running nodes. One node is down at
// a time, so every shard keeps upload.min_replicas (2) live nodes. At the
// end, with every node back, every upload the network acknowledged reads
// back bit-exact.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "e2e/e2e_network.hpp"
#include "integration/process_network.hpp"

namespace cairn {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::chrono::seconds soak_duration() {
  const char* env = std::getenv("CAIRN_SOAK_SECONDS");
  const long s = env != nullptr ? std::atol(env) : 240;
  return std::chrono::seconds(std::clamp(s, 10L, 420L));
}

TEST(Soak, ChurnKeepsEveryAcknowledgedUploadRetrievable) {
  localnet::Settings settings;
  settings.nodes = 6;
  settings.shards = 2;
  settings.genesis.block_time_ms = 100;
  settings.genesis.blobs_per_shard = 1024;
  settings.genesis.epoch_blocks = 30;
  settings.genesis.deadline_blocks = 10;
  settings.ready_timeout = 120s;
  test::E2eNetwork net(settings);
  auto up = net.start();
  ASSERT_TRUE(up) << up.error().to_string();
  auto rng = test::seeded_rng(91);
  const auto deadline = std::chrono::steady_clock::now() + soak_duration();

  std::mutex mu;
  std::vector<test::Uploaded> acked;
  std::atomic<size_t> put_failed{0}, get_ok{0}, get_failed{0}, kills{0};
  std::atomic<bool> stop{false};
  std::set<uint32_t> down;  // guarded by mu

  auto pick_live = [&](std::mt19937_64& r) -> std::optional<std::pair<uint32_t, std::string>> {
    std::lock_guard lock(mu);
    std::vector<uint32_t> live;
    for (uint32_t i = 0; i < settings.nodes; ++i) {
      if (!down.count(i)) live.push_back(i);
    }
    if (live.empty()) return std::nullopt;
    const uint32_t i = live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(r)];
    return std::make_pair(i, net.url(i));
  };

  std::thread uploader([&, r = test::seeded_rng(92)]() mutable {
    for (size_t k = 0; !stop; ++k) {
      test::Uploaded f;
      f.path = net.tmp() / ("soak-in-" + std::to_string(k));
      f.content =
          test::random_bytes(r, std::uniform_int_distribution<size_t>(0, size_t{3} << 20)(r));
      test::write_file(f.path, f.content);
      auto target = pick_live(r);
      if (!target) continue;
      f.id = test::put(target->second, f.path);
      std::lock_guard lock(mu);
      if (f.id.empty()) {
        ++put_failed;
      } else {
        acked.push_back(std::move(f));
      }
    }
  });
  std::thread reader([&, r = test::seeded_rng(93)]() mutable {
    while (!stop) {
      test::Uploaded f;
      {
        std::lock_guard lock(mu);
        if (acked.empty()) {
          std::this_thread::sleep_for(100ms);
          continue;
        }
        f = acked[std::uniform_int_distribution<size_t>(0, acked.size() - 1)(r)];
      }
      auto target = pick_live(r);
      if (!target) continue;
      // A node killed under the read fails it; the final check is the one that counts.
      if (test::got(target->second, f.id, net.tmp() / "soak-out", f.content)) {
        ++get_ok;
      } else {
        ++get_failed;
      }
    }
  });

  // Churn: one node at a time, down for 2-8 s, every 3-10 s.
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(3000, 10000)(rng)));
    const uint32_t victim = std::uniform_int_distribution<uint32_t>(0, settings.nodes - 1)(rng);
    {
      std::lock_guard lock(mu);
      down.insert(victim);
    }
    const int sig = std::uniform_int_distribution<int>(0, 1)(rng) ? SIGKILL : SIGTERM;
    auto killed = net.kill(victim, sig);
    EXPECT_TRUE(killed) << killed.error().to_string();
    ++kills;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(2000, 8000)(rng)));
    auto back = net.restart(victim);
    EXPECT_TRUE(back) << "node" << victim << ": " << back.error().to_string();
    if (!killed || !back) break;
    std::lock_guard lock(mu);
    down.erase(victim);
  }
  stop = true;
  uploader.join();
  reader.join();
  std::cout << "churn: " << kills << " kills; " << acked.size() << " uploads acknowledged, "
            << put_failed << " failed; " << get_ok << " reads ok, " << get_failed
            << " failed during churn" << std::endl;
  ASSERT_GT(acked.size(), 10u);
  ASSERT_GT(kills.load(), 0u);

  // Every node back and synced; every acknowledged upload reads back.
  for (uint32_t i = 0; i < settings.nodes; ++i) ASSERT_TRUE(net.running(i)) << "node" << i;
  std::vector<std::string> urls;
  for (uint32_t i = 0; i < settings.nodes; ++i) urls.push_back(net.url(i));
  test::parallel_for(acked.size(), 3, [&](size_t k) {
    EXPECT_TRUE(test::got(urls[k % urls.size()], acked[k].id,
                          net.tmp() / ("final-" + std::to_string(k)), acked[k].content))
        << "acknowledged upload " << k << " (" << acked[k].content.size() << " bytes)";
    std::error_code ec;
    fs::remove(net.tmp() / ("final-" + std::to_string(k)), ec);
  });
}

}  // namespace
}  // namespace cairn
