#include "support/fault_fs.hpp"

#include <fnmatch.h>

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace cairn::test {

struct FaultInjectionFs::State {
  struct Armed {
    Fault fault;
    uint64_t matched = 0;  // matching operations seen since armed
    uint64_t failed = 0;   // of which failed
  };

  mutable std::mutex mu;
  std::vector<Armed> faults;
  std::array<uint64_t, 3> failed{};
  std::map<std::pair<FaultOp, std::string>, uint64_t> seen;  // by (op, path)

  static bool matches(const std::string& pattern, const std::string& path) {
    if (pattern.find('/') != std::string::npos)
      return ::fnmatch(pattern.c_str(), path.c_str(), 0) == 0;
    const auto slash = path.rfind('/');
    const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    return ::fnmatch(pattern.c_str(), base.c_str(), 0) == 0;
  }

  // OK, or the error the operation `op` on `path` fails with.
  rocksdb::IOStatus check(FaultOp op, const std::string& path) {
    std::lock_guard lock(mu);
    ++seen[{op, path}];
    for (Armed& a : faults) {
      if (a.fault.op != op || !matches(a.fault.pattern, path)) continue;
      if (a.matched++ < a.fault.after) continue;
      if (a.failed >= a.fault.times) continue;
      ++a.failed;
      ++failed[static_cast<size_t>(op)];
      static constexpr const char* kNames[] = {"write", "sync", "read"};
      const std::string what =
          std::string("injected fault: ") + kNames[static_cast<size_t>(op)] + " of";
      if (a.fault.error == FaultError::no_space && op != FaultOp::read) {
        return rocksdb::IOStatus::NoSpace(what, path);
      }
      return rocksdb::IOStatus::IOError(what, path);
    }
    return rocksdb::IOStatus::OK();
  }
};

namespace {

using rocksdb::DataVerificationInfo;
using rocksdb::FSReadRequest;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;
using State = FaultInjectionFs::State;

class FaultWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file, std::shared_ptr<State> state,
                    std::string path)
      : FSWritableFileOwnerWrapper(std::move(file)),
        state_(std::move(state)),
        path_(std::move(path)) {}

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::write, path_); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, o, dbg);
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const DataVerificationInfo& info,
                  IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::write, path_); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, o, info, dbg);
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::write, path_); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, o, dbg);
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            const DataVerificationInfo& info, IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::write, path_); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, o, info, dbg);
  }
  IOStatus Flush(const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::sync, path_); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Flush(o, dbg);
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::sync, path_); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Sync(o, dbg);
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::sync, path_); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Fsync(o, dbg);
  }
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& o,
                     IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::sync, path_); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::RangeSync(offset, nbytes, o, dbg);
  }

 private:
  std::shared_ptr<State> state_;
  std::string path_;
};

class FaultSequentialFile final : public rocksdb::FSSequentialFileOwnerWrapper {
 public:
  FaultSequentialFile(std::unique_ptr<rocksdb::FSSequentialFile> file, std::shared_ptr<State> state,
                      std::string path)
      : FSSequentialFileOwnerWrapper(std::move(file)),
        state_(std::move(state)),
        path_(std::move(path)) {}

  IOStatus Read(size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::read, path_); !s.ok()) return s;
    return FSSequentialFileOwnerWrapper::Read(n, o, result, scratch, dbg);
  }
  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions& o, Slice* result,
                          char* scratch, IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::read, path_); !s.ok()) return s;
    return FSSequentialFileOwnerWrapper::PositionedRead(offset, n, o, result, scratch, dbg);
  }

 private:
  std::shared_ptr<State> state_;
  std::string path_;
};

class FaultRandomAccessFile final : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FaultRandomAccessFile(std::unique_ptr<rocksdb::FSRandomAccessFile> file,
                        std::shared_ptr<State> state, std::string path)
      : FSRandomAccessFileOwnerWrapper(std::move(file)),
        state_(std::move(state)),
        path_(std::move(path)) {}

  IOStatus Read(uint64_t offset, size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) const override {
    if (auto s = state_->check(FaultOp::read, path_); !s.ok()) return s;
    return FSRandomAccessFileOwnerWrapper::Read(offset, n, o, result, scratch, dbg);
  }
  IOStatus MultiRead(FSReadRequest* reqs, size_t num_reqs, const IOOptions& o,
                     IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::read, path_); !s.ok()) {
      for (size_t i = 0; i < num_reqs; ++i) reqs[i].status = s;
      return s;
    }
    return FSRandomAccessFileOwnerWrapper::MultiRead(reqs, num_reqs, o, dbg);
  }

 private:
  std::shared_ptr<State> state_;
  std::string path_;
};

class FaultRandomRWFile final : public rocksdb::FSRandomRWFileOwnerWrapper {
 public:
  FaultRandomRWFile(std::unique_ptr<rocksdb::FSRandomRWFile> file, std::shared_ptr<State> state,
                    std::string path)
      : FSRandomRWFileOwnerWrapper(std::move(file)),
        state_(std::move(state)),
        path_(std::move(path)) {}

  IOStatus Write(uint64_t offset, const Slice& data, const IOOptions& o,
                 IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::write, path_); !s.ok()) return s;
    return FSRandomRWFileOwnerWrapper::Write(offset, data, o, dbg);
  }
  IOStatus Read(uint64_t offset, size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) const override {
    if (auto s = state_->check(FaultOp::read, path_); !s.ok()) return s;
    return FSRandomRWFileOwnerWrapper::Read(offset, n, o, result, scratch, dbg);
  }
  IOStatus Flush(const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::sync, path_); !s.ok()) return s;
    return FSRandomRWFileOwnerWrapper::Flush(o, dbg);
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::sync, path_); !s.ok()) return s;
    return FSRandomRWFileOwnerWrapper::Sync(o, dbg);
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = state_->check(FaultOp::sync, path_); !s.ok()) return s;
    return FSRandomRWFileOwnerWrapper::Fsync(o, dbg);
  }

 private:
  std::shared_ptr<State> state_;
  std::string path_;
};

}  // namespace

FaultInjectionFs::FaultInjectionFs(std::shared_ptr<rocksdb::FileSystem> base)
    : FileSystemWrapper(base), state_(std::make_shared<State>()) {}

FaultInjectionFs::~FaultInjectionFs() = default;

void FaultInjectionFs::inject(Fault fault) {
  std::lock_guard lock(state_->mu);
  state_->faults.push_back(State::Armed{std::move(fault)});
}

void FaultInjectionFs::clear() {
  std::lock_guard lock(state_->mu);
  state_->faults.clear();
}

uint64_t FaultInjectionFs::failed(FaultOp op) const {
  std::lock_guard lock(state_->mu);
  return state_->failed[static_cast<size_t>(op)];
}

uint64_t FaultInjectionFs::failed_total() const {
  std::lock_guard lock(state_->mu);
  return state_->failed[0] + state_->failed[1] + state_->failed[2];
}

uint64_t FaultInjectionFs::seen(FaultOp op, const std::string& pattern) const {
  std::lock_guard lock(state_->mu);
  uint64_t n = 0;
  for (const auto& [key, count] : state_->seen) {
    if (key.first == op && State::matches(pattern, key.second)) n += count;
  }
  return n;
}

IOStatus FaultInjectionFs::NewSequentialFile(const std::string& fname,
                                             const rocksdb::FileOptions& options,
                                             std::unique_ptr<rocksdb::FSSequentialFile>* result,
                                             IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSSequentialFile> file;
  IOStatus s = target()->NewSequentialFile(fname, options, &file, dbg);
  if (s.ok()) *result = std::make_unique<FaultSequentialFile>(std::move(file), state_, fname);
  return s;
}

IOStatus FaultInjectionFs::NewRandomAccessFile(const std::string& fname,
                                               const rocksdb::FileOptions& options,
                                               std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                               IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSRandomAccessFile> file;
  IOStatus s = target()->NewRandomAccessFile(fname, options, &file, dbg);
  if (s.ok()) *result = std::make_unique<FaultRandomAccessFile>(std::move(file), state_, fname);
  return s;
}

IOStatus FaultInjectionFs::NewWritableFile(const std::string& fname,
                                           const rocksdb::FileOptions& options,
                                           std::unique_ptr<rocksdb::FSWritableFile>* result,
                                           IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->NewWritableFile(fname, options, &file, dbg);
  if (s.ok()) *result = std::make_unique<FaultWritableFile>(std::move(file), state_, fname);
  return s;
}

IOStatus FaultInjectionFs::ReopenWritableFile(const std::string& fname,
                                              const rocksdb::FileOptions& options,
                                              std::unique_ptr<rocksdb::FSWritableFile>* result,
                                              IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->ReopenWritableFile(fname, options, &file, dbg);
  if (s.ok()) *result = std::make_unique<FaultWritableFile>(std::move(file), state_, fname);
  return s;
}

IOStatus FaultInjectionFs::ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                             const rocksdb::FileOptions& options,
                                             std::unique_ptr<rocksdb::FSWritableFile>* result,
                                             IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->ReuseWritableFile(fname, old_fname, options, &file, dbg);
  if (s.ok()) *result = std::make_unique<FaultWritableFile>(std::move(file), state_, fname);
  return s;
}

IOStatus FaultInjectionFs::NewRandomRWFile(const std::string& fname,
                                           const rocksdb::FileOptions& options,
                                           std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                           IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSRandomRWFile> file;
  IOStatus s = target()->NewRandomRWFile(fname, options, &file, dbg);
  if (s.ok()) *result = std::make_unique<FaultRandomRWFile>(std::move(file), state_, fname);
  return s;
}

}  // namespace cairn::test
