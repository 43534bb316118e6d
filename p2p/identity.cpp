#include "cairn/p2p/identity.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace cairn::p2p {

Status save_identity(const SigningKey& key, const std::filesystem::path& path, bool overwrite) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
  const int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return make_error(Errc::conflict,
                        path.string() + " already exists (use --force to replace it)");
    }
    return make_error(Errc::io_error,
                      "cannot write " + path.string() + ": " + std::strerror(errno));
  }
  auto seed = key.seed();
  std::string text = std::string(kIdentityHeader) + "\n" + to_hex(seed) + "\n";
  sodium_memzero(seed.data(), seed.size());
  const bool ok = ::fchmod(fd, 0600) == 0 &&
                  ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  sodium_memzero(text.data(), text.size());
  ::close(fd);
  if (!ok) return make_error(Errc::io_error, "cannot write " + path.string());
  return {};
}

Result<SigningKey> load_identity(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return make_error(Errc::not_found, "no identity file at " + path.string());
    return make_error(Errc::io_error, "cannot stat " + path.string() + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    // A local environment problem (exit 3 from the CLI), not a bad key.
    return make_error(Errc::io_error, "identity file " + path.string() +
                                          " is readable by group or others; run: chmod 600 " +
                                          path.string());
  }
  std::ifstream f(path);
  std::string header, hex;
  if (!std::getline(f, header) || !std::getline(f, hex) || header != kIdentityHeader) {
    return make_error(Errc::invalid_argument,
                      path.string() + " is not a cairn identity file (expected first line " +
                          kIdentityHeader + ")");
  }
  auto seed = from_hex_fixed<32>(hex);
  if (!seed) {
    return make_error(Errc::invalid_argument, path.string() + ": secret must be 64 hex digits");
  }
  SigningKey key = SigningKey::from_seed(*seed);
  sodium_memzero(seed->data(), seed->size());
  return key;
}

Result<SigningKey> load_or_create_identity(const std::filesystem::path& path, bool* created) {
  auto key = load_identity(path);
  if (created != nullptr) *created = false;
  if (key || key.error().code != Errc::not_found) return key;
  SigningKey fresh = SigningKey::generate();
  if (auto s = save_identity(fresh, path, false); !s) return tl::unexpected(s.error());
  if (created != nullptr) *created = true;
  return fresh;
}

}  // namespace cairn::p2p
