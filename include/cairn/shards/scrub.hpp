#pragma once
// Scrub and repair (docs/design.md section 6): re-read every stored fragment at a
// bounded rate, check it (value checksum; after unsealing, its fragment root;
// the roots against the blob id), and rebuild a bad one from the blob's good
// fragments when k remain, else with fragments fetched from peers. A
// repaired fragment is re-sealed and written in place (Store::put_fragment).
//
// Threading: no threads of its own. The node calls tick() from a timer;
// checks and repairs run as bounded jobs on the WorkerPool, one at a time,
// only when the pool's queue is short (ScrubSettings::max_queued_jobs), so
// foreground work never waits behind more than one scrub job. Every public
// member is safe to call from any thread; only stop() blocks.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cairn/core/clock.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/core/worker_pool.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/shards/gather.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/remote.hpp"
#include "cairn/shards/settings.hpp"
#include "cairn/shards/store.hpp"

namespace cairn::shards {

// The verdict on one stored blob: which fragments are good.
struct BlobHealth {
  BlobRecord record;
  std::vector<FragmentIndex>
      bad;  // fail their checksum, are missing, unreadable or mismatch their root
  std::vector<FragmentIndex> unreadable;  // of `bad`: the disk failed to read them (I/O error)
  uint32_t good = 0;                      // n - bad.size()
  uint64_t bytes_checked = 0;             // stored fragment bytes read
};

// Checks every fragment of the blob at `index` (one unseal). A fragment the
// disk fails to read (Errc::io_error from the store) is bad and listed in
// `unreadable`; it does not fail the check. Errc::not_found
// when nothing is stored there; Errc::corruption when the blob record itself
// is unreadable or its roots do not commit to its id (no fragment can then
// be judged); Errc::invalid_argument when the blob is sealed and no matching
// transform is given. Blocks: worker pool only.
Result<BlobHealth> check_blob(const Store& store, BlobIndex index,
                              const ReplicaTransform* transform);

// Repairs the blob `health` describes: re-reads it (it may have changed
// since the check), rebuilds every fragment that is bad now from the good
// local fragments plus `extra` (unsealed fragments from a peer, each checked
// against the record's roots here; bad ones are ignored), re-seals the
// replica and writes the rebuilt fragments. Returns the number written (0
// when nothing is bad any more). Errc::too_many_losses when fewer than k good
// fragments are available; Errc::conflict when the index now holds another
// blob; errors of check_blob otherwise. Blocks: worker pool only.
Result<uint32_t> repair_blob(Store& store, const erasure::Codec& codec, const BlobHealth& health,
                             const ReplicaTransform* transform,
                             const FragmentReply* extra = nullptr);

// Cumulative counters since the scrubber was built (metrics, node status).
struct ScrubStats {
  uint64_t blobs_scrubbed = 0;             // blobs whose every fragment was checked
  uint64_t bytes_scrubbed = 0;             // stored fragment bytes read for that
  uint64_t fragments_bad = 0;              // bad fragments found
  uint64_t fragments_repaired_local = 0;   // rebuilt from local parity
  uint64_t fragments_repaired_remote = 0;  // rebuilt with fragments from peers
  uint64_t fragments_unrepairable = 0;     // neither worked (retried next pass)
  uint64_t records_corrupt = 0;            // blob records unreadable (not repairable here)
  uint64_t passes = 0;                     // full passes over the store completed
  BlobIndex position;                      // next index the scan looks at
  uint64_t fragments_checked = 0;          // fragments judged (n per blob scrubbed)
  uint64_t last_pass_unix_ms = 0;          // wall clock at the end of the last pass; 0 before
  uint64_t fragments_unreadable = 0;  // of fragments_bad: the disk failed to read them (I/O error)
};

class Scrubber {
 public:
  // Everything passed must outlive the scrubber. `gather` may be null
  // (no repair from peers); its callbacks must keep running until stop()
  // returns. `transform` must be the one the node stores
  // with. `clock` paces the scrub (its rate limit and the pause between
  // passes); only its now() is read, from the scrubber's jobs.
  Scrubber(Store& store, WorkerPool& pool, std::shared_ptr<const erasure::Codec> codec,
           std::shared_ptr<const ReplicaTransform> transform, FragmentGather* gather,
           const ScrubSettings& settings, const cairn::Clock& clock);
  // stop().
  ~Scrubber();
  Scrubber(const Scrubber&) = delete;
  Scrubber& operator=(const Scrubber&) = delete;

  // Refills the byte budget from the elapsed time (bytes_per_second, at most
  // one second's worth banked) and, when no scrub job runs, the budget
  // covers a blob, the pass pause is over and the pool queue is short,
  // submits one job of at most max_job_bytes. Non-blocking.
  void tick();

  // Checks (and repairs) the blob at `index` now, outside the rate budget:
  // for a read that found a damaged fragment. Non-blocking; Errc::busy when
  // the pool is full, Errc::cancelled after stop().
  Status scrub_blob(BlobIndex index);

  // `handler` is called, on a worker and without the scrubber's locks, with
  // every index whose blob record cannot be read (so no fragment of it can
  // be judged): the node passes it to SyncEngine::refetch, which fetches
  // the blob again. Set it before the first tick.
  void on_unreadable(std::function<void(BlobIndex)> handler);

  // Waits until no job or fetch of the scrubber is running; afterwards
  // every call is a no-op. Blocking, idempotent; not from a pool worker.
  void stop();

  ScrubStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::shards
