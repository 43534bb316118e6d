#include "support/test_util.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>

namespace cairn::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

uint64_t test_seed() {
  static const uint64_t seed = [] {
    uint64_t s = 20261120;
    if (const char* env = std::getenv("CAIRN_TEST_SEED")) s = std::strtoull(env, nullptr, 10);
    std::cerr << "[cairn] test seed " << s << " (set CAIRN_TEST_SEED to replay)\n";
    return s;
  }();
  return seed;
}

std::mt19937_64 seeded_rng(uint64_t salt) {
  return std::mt19937_64(test_seed() ^ (salt * 0x9e3779b97f4a7c15ULL));
}

Bytes random_bytes(std::mt19937_64& rng, size_t n) {
  Bytes out(n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) put_be<uint64_t>(out.data() + i, rng());
  for (uint64_t v = rng(); i < n; ++i, v >>= 8) out[i] = static_cast<uint8_t>(v);
  return out;
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

void write_file(const std::filesystem::path& p, ByteSpan data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!f) throw std::runtime_error("write failed: " + p.string());
}

Bytes read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("open failed: " + p.string());
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

double metric(const std::string& text, const std::string& name, double absent) {
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return absent;
  return std::stod(text.substr(at + name.size() + 2));
}

}  // namespace cairn::test
