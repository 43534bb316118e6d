#pragma once
// Shared test helpers: temporary directories, seeded randomness (the seed is
// printed so a failure can be replayed), free loopback ports.

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>

#include "cairn/core/bytes.hpp"

namespace cairn::test {

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// The test seed: $CAIRN_TEST_SEED when set, else a fixed default. Printed to
// the test log once per process.
uint64_t test_seed();
std::mt19937_64 seeded_rng(uint64_t salt = 0);
Bytes random_bytes(std::mt19937_64& rng, size_t n);

// A TCP port on 127.0.0.1 that was free when asked (bound then released).
uint16_t free_port();

void write_file(const std::filesystem::path& p, ByteSpan data);

// The value of series `name` (with its labels, e.g. `x_total{shard="0"}`) in
// a Prometheus text exposition; `absent` when the series is not there.
double metric(const std::string& text, const std::string& name, double absent = 0);
Bytes read_file(const std::filesystem::path& p);

}  // namespace cairn::test
