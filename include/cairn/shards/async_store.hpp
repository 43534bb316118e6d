#pragma once
// Store operations run on the worker pool with a completion callback, for
// callers that must not block (the node's network thread). shards/ knows
// nothing of Asio: the node wraps each completion so it posts back to its
// executor.

#include <exception>
#include <functional>
#include <memory>
#include <utility>

#include "cairn/core/result.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/store.hpp"
#include "cairn/shards/worker_pool.hpp"

namespace cairn::shards {

template <class T>
using Completion = std::function<void(Result<T>)>;

// Contract of every call below: it either fails at once (Errc::busy when the
// pool's queue is full, Errc::cancelled after pool shutdown) and never calls
// `done`, or succeeds and calls `done` exactly once on a worker thread —
// with the operation's result, or Errc::cancelled when shutdown discards
// the job before it ran. `done` runs on the worker: keep it short and
// non-blocking (post the result to your own executor).
//
// The Store, the pool, the codec and the transform must outlive every job
// (shut the pool down before destroying them).
class AsyncStore {
 public:
  AsyncStore(Store& store, WorkerPool& pool, std::shared_ptr<const erasure::Codec> codec,
             std::shared_ptr<const ReplicaTransform> transform = nullptr)
      : store_(store), pool_(pool), codec_(std::move(codec)), transform_(std::move(transform)) {}

  Store& store() noexcept { return store_; }

  // ingest_payload on the pool (encode, commit, transform, one batch).
  Status ingest(BlobIndex index, Bytes payload, Completion<IngestResult> done) {
    return run<IngestResult>(
        [this, index, payload = std::move(payload)](Store& s) {
          return ingest_payload(s, *codec_, index, payload, transform_.get());
        },
        std::move(done));
  }

  // ingest_committed on the pool (a blob received and verified elsewhere).
  Status ingest(BlobIndex index, erasure::CommittedBlob blob, Completion<IngestResult> done) {
    auto shared = std::make_shared<erasure::CommittedBlob>(std::move(blob));
    return run<IngestResult>(
        [this, index, shared](Store& s) {
          return ingest_committed(s, index, std::move(*shared), transform_.get());
        },
        std::move(done));
  }

  Status read(BlobIndex index, Completion<Bytes> done) {
    return run<Bytes>(
        [this, index](Store& s) { return read_payload(s, *codec_, index, transform_.get()); },
        std::move(done));
  }

  Status get_fragment(BlobIndex index, FragmentIndex fragment, Completion<Bytes> done) {
    return run<Bytes>([index, fragment](Store& s) { return s.get_fragment(index, fragment); },
                      std::move(done));
  }

  Status get_blob(const BlobId& id, Completion<BlobRecord> done) {
    return run<BlobRecord>([id](Store& s) { return s.get_blob(id); }, std::move(done));
  }

  Status delete_blob(BlobIndex index, Completion<bool> done) {
    return run<bool>([index](Store& s) { return s.delete_blob(index); }, std::move(done));
  }

  // Any other store operation: `op` runs on a worker; an exception it throws
  // becomes Errc::internal.
  template <class T, class Op>
  Status run(Op op, Completion<T> done) {
    auto shared_done = std::make_shared<Completion<T>>(std::move(done));
    return pool_.try_submit(
        [this, op = std::move(op), shared_done]() mutable {
          Result<T> result = invoke<T>(op);
          (*shared_done)(std::move(result));
        },
        [shared_done] {
          (*shared_done)(make_error(Errc::cancelled, "store operation cancelled by shutdown"));
        });
  }

 private:
  template <class T, class Op>
  Result<T> invoke(Op& op) noexcept {
    try {
      return op(store_);
    } catch (const std::exception& e) {
      return make_error(Errc::internal, std::string("store operation threw: ") + e.what());
    } catch (...) {
      return make_error(Errc::internal, "store operation threw");
    }
  }

  Store& store_;
  WorkerPool& pool_;
  std::shared_ptr<const erasure::Codec> codec_;
  std::shared_ptr<const ReplicaTransform> transform_;
};

}  // namespace cairn::shards
