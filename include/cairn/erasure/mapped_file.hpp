#pragma once
// Read-only memory map of a whole file (empty files map to an empty span).

#include <filesystem>
#include <memory>

#include "cairn/core/bytes.hpp"
#include "cairn/core/result.hpp"

namespace cairn::erasure {

class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ByteSpan bytes() const noexcept { return {static_cast<const uint8_t*>(addr_), size_}; }

 private:
  MappedFile(void* addr, size_t size) : addr_(addr), size_(size) {}
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace cairn::erasure
