#include "e2e/e2e_network.hpp"

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <thread>

namespace cairn::test {
namespace fs = std::filesystem;

E2eNetwork::E2eNetwork(localnet::Settings s) : settings_(std::move(s)) {
  settings_.dir = tmp_ / "localnet";
  settings_.binary = cairn_binary();
}

E2eNetwork::~E2eNetwork() {
  auto st = localnet::load(settings_.dir);
  EXPECT_TRUE(localnet::down(settings_.dir)) << "localnet down failed";
  if (!st) return;
  // down() leaves nothing behind: a test fails when any process survives.
  EXPECT_FALSE(localnet::alive(st->chain)) << "the dev chain survived localnet down";
  for (const auto& n : st->nodes)
    EXPECT_FALSE(localnet::alive(n.process)) << n.name() << " survived localnet down";
}

Status E2eNetwork::start() {
  std::lock_guard lock(mu_);
  auto st = localnet::up(settings_);
  if (!st) return tl::unexpected(st.error());
  return {};
}

// Unlocked: the state file is replaced by rename, so a reader sees the old
// or the new state, never half of one (a restart holds mu_ for a while).
localnet::State E2eNetwork::state() {
  auto st = localnet::load(settings_.dir);
  if (!st) throw std::runtime_error("no localnet state: " + st.error().to_string());
  return *st;
}

uint32_t E2eNetwork::size() { return static_cast<uint32_t>(state().nodes.size()); }
std::string E2eNetwork::url(uint32_t i) { return state().nodes.at(i).api_url(); }
uint32_t E2eNetwork::shard_of(uint32_t i) { return state().nodes.at(i).shard; }
bool E2eNetwork::running(uint32_t i) { return localnet::alive(state().nodes.at(i).process); }

std::vector<uint32_t> E2eNetwork::live(const std::vector<uint32_t>& except) {
  std::vector<uint32_t> out;
  for (const auto& n : state().nodes) {
    if (localnet::alive(n.process) &&
        std::find(except.begin(), except.end(), n.index) == except.end()) {
      out.push_back(n.index);
    }
  }
  return out;
}

RunResult E2eNetwork::cairn(uint32_t i, std::vector<std::string> args,
                            std::chrono::milliseconds timeout) {
  return run(localnet::client_argv(state(), i, std::move(args)), timeout);
}

nlohmann::json E2eNetwork::status(uint32_t i) {
  auto s = localnet::node_status(state(), i);
  return s ? *s : nlohmann::json();
}

Status E2eNetwork::kill(uint32_t i, int signal) {
  std::lock_guard lock(mu_);
  return localnet::kill_node(settings_.dir, i, signal);
}

Status E2eNetwork::restart(uint32_t i, std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu_);
  auto st = localnet::restart_node(settings_.dir, i, timeout);
  if (!st) return tl::unexpected(st.error());
  return {};
}

void E2eNetwork::wipe(uint32_t i) {
  auto st = state();
  ASSERT_FALSE(localnet::alive(st.nodes.at(i).process)) << "wipe a stopped node only";
  fs::remove_all(st.data_dir(i));
}

std::vector<Uploaded> make_files(std::mt19937_64& rng, const fs::path& dir, size_t count,
                                 uint64_t target_bytes) {
  constexpr uint64_t kMax = uint64_t{8} << 20;
  constexpr uint64_t kBlob = 131072;
  // Edges first: empty, one byte, around one and two blobs, the largest.
  std::vector<uint64_t> sizes{0,    1,        4096,   kBlob - 1, kBlob, kBlob + 1, 2 * kBlob + 7,
                              kMax, kMax - 1, 3 << 20};
  sizes.resize(std::min(sizes.size(), count));
  uint64_t fixed = 0;
  for (uint64_t s : sizes) fixed += s;
  // The rest log-uniform over 256 B .. 4 MiB, scaled to the byte budget.
  std::vector<double> rest;
  double rest_sum = 0;
  std::uniform_real_distribution<double> log_size(std::log(256.0), std::log(4.0 * 1024 * 1024));
  for (size_t k = sizes.size(); k < count; ++k) {
    rest.push_back(std::exp(log_size(rng)));
    rest_sum += rest.back();
  }
  const double budget = target_bytes > fixed ? static_cast<double>(target_bytes - fixed) : 0.0;
  for (double r : rest) {
    sizes.push_back(
        std::min<uint64_t>(kMax, static_cast<uint64_t>(rest_sum > 0 ? r * budget / rest_sum : 0)));
  }
  std::shuffle(sizes.begin(), sizes.end(), rng);

  std::vector<Uploaded> files;
  fs::create_directories(dir);
  for (size_t k = 0; k < sizes.size(); ++k) {
    Uploaded f;
    f.path = dir / ("file-" + std::to_string(k));
    if (k % 4 == 3) {
      // Compressible text: the node stores it zstd-compressed.
      static const char* words[] = {"cairn ", "shard ", "blob ", "replica ", "epoch ", "proof\n"};
      std::uniform_int_distribution<size_t> pick(0, 5);
      std::string text;
      while (text.size() < sizes[k]) text += words[pick(rng)];
      text.resize(sizes[k]);
      f.content.assign(text.begin(), text.end());
    } else {
      f.content = random_bytes(rng, sizes[k]);
    }
    write_file(f.path, f.content);
    files.push_back(std::move(f));
  }
  return files;
}

void parallel_for(size_t n, size_t threads, const std::function<void(size_t)>& work) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t k; (k = next.fetch_add(1)) < n;) work(k);
    });
  }
  for (auto& th : pool) th.join();
}

}  // namespace cairn::test
