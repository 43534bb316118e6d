#pragma once
// A RocksDB FileSystem that fails chosen operations on demand, in the spirit
// of leveldb's fault-injection tests and RocksDB's FaultInjectionTestFS: a
// test opens a Store on it (shards::StoreOptions::file_system) and, at run
// time, makes writes, syncs or reads of all files or of files matching a
// pattern fail with an I/O error (or "no space" for writes and syncs),
// optionally after some successful operations and for a limited number of
// times. Everything else passes through to the wrapped file system.
//
// Thread-safety: every member may be called from any thread while RocksDB
// runs (its background flushes and compactions go through the same files).

#include <rocksdb/file_system.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>

namespace cairn::test {

// Which file operations a fault covers.
enum class FaultOp : uint8_t {
  write,  // FSWritableFile::Append / PositionedAppend, FSRandomRWFile::Write
  sync,   // FSWritableFile::Flush / Sync / Fsync / RangeSync, FSRandomRWFile::Flush / Sync / Fsync
  read,   // FSSequentialFile::Read / PositionedRead, FSRandomAccessFile::Read / MultiRead,
          // FSRandomRWFile::Read
};

enum class FaultError : uint8_t {
  io_error,  // IOStatus::IOError (EIO): a failing disk
  no_space,  // IOStatus::NoSpace (ENOSPC): a full disk; reads always fail with io_error
};

struct Fault {
  FaultOp op = FaultOp::write;
  // fnmatch(3) glob on the file's base name ("*.log" the WAL, "*.sst" table
  // files, "*.blob" RocksDB blob files holding fragment values,
  // "MANIFEST-*"); a pattern containing '/' is matched against the whole
  // path. Default: every file.
  std::string pattern = "*";
  // Matching operations that still succeed before the first failure.
  uint64_t after = 0;
  // Failures after which the fault lifts by itself; default: until clear().
  uint64_t times = std::numeric_limits<uint64_t>::max();
  FaultError error = FaultError::io_error;
};

class FaultInjectionFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultInjectionFs(
      std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default());
  ~FaultInjectionFs() override;

  static const char* kClassName() { return "CairnFaultInjectionFs"; }
  const char* Name() const override { return kClassName(); }

  // Arms `fault` alongside the ones already armed (the first armed fault
  // matching an operation decides it).
  void inject(Fault fault);
  // Disarms every fault. Counters are kept.
  void clear();

  // Operations failed so far, per kind and in all, since construction.
  uint64_t failed(FaultOp op) const;
  uint64_t failed_total() const;
  // Operations of kind `op` on files matching `pattern` seen so far (failed
  // or not): lets a test check that the files it means are really touched.
  uint64_t seen(FaultOp op, const std::string& pattern = "*") const;

  rocksdb::IOStatus NewSequentialFile(const std::string& fname, const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomAccessFile(const std::string& fname,
                                        const rocksdb::FileOptions& options,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                        rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;

  // The armed faults and counters, shared with the open files (which may
  // outlive a reference to the file system held by the test).
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace cairn::test
