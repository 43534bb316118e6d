#pragma once
// Shard sync (docs/design.md section 6): a node that joins a shard, or comes back,
// fetches every blob the registry lists for the shard that its store lacks,
// from several peers at once; verifies each blob against its commitment
// (re-encoding the parity), seals it with the node's identity and stores it.
//
// Progress is persisted per shard in the store's sync cursor (every index
// below the cursor is settled), so a sync killed at any point resumes where
// it stopped: blobs already stored are never fetched again (the store is
// consulted before every fetch), and nothing is stored before it verified
// (a blob is written in one atomic batch after verification).
//
// Threading: no threads of its own. Blocking work (registry queries, store
// reads and writes, verification, sealing) runs on the WorkerPool; fetches
// go through RemoteFragments, whose completions may arrive on any thread.
// Every public member is safe to call from any thread; only stop() and
// wait_synced() block.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/core/worker_pool.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/registry.hpp"
#include "cairn/shards/remote.hpp"
#include "cairn/shards/settings.hpp"
#include "cairn/shards/store.hpp"

namespace cairn::shards {

// Where one shard's sync stands. Not persisted (the cursor is).
enum class SyncState : uint8_t {
  starting,  // reading the cursor and the registry
  fetching,  // blobs missing, fetches under way
  waiting,   // blobs missing, none fetchable now (no peer has them, or all
             // failed): retried after SyncSettings::retry_backoff_ms
  synced,    // every registered blob is held
  stopped,   // removed or engine stopped
};

std::string_view sync_state_name(SyncState s) noexcept;

struct SyncProgress {
  ShardId shard;
  SyncState state = SyncState::starting;
  uint64_t known = 0;           // blobs the registry lists for the shard
  uint64_t held = 0;            // of those, stored here with the registered id
  uint64_t remaining = 0;       // known - held - conflicts
  uint64_t conflicts = 0;       // indexes where the store holds another id than the registry
  BlobIndex cursor;             // persisted: every index below is settled
  uint64_t fetched_blobs = 0;   // blobs this engine fetched, verified and stored
  uint64_t fetched_bytes = 0;   // their payload bytes
  double bytes_per_second = 0;  // payload bytes stored per second, recent average
  uint64_t in_flight = 0;       // fetches under way
  uint32_t peers = 0;           // peers offered for the shard at the last look
  BlockNumber registry_head;    // registry head at the last plan
  std::string last_error;       // the latest failure, for operators; empty if none
  uint64_t fetches_failed = 0;  // fetches of this shard that failed (each retried elsewhere)
};

// Cumulative counters over all shards since the engine was built (metrics).
struct SyncStats {
  uint64_t blobs_fetched = 0;    // verified and stored
  uint64_t bytes_fetched = 0;    // payload bytes of those
  uint64_t wire_bytes = 0;       // fragment bytes received in replies
  uint64_t fetches_started = 0;  // requests sent (hedges included)
  uint64_t fetches_failed = 0;   // timeouts, refusals, missing data, errors
  uint64_t fetches_hedged = 0;   // duplicates sent because a peer was slow
  uint64_t invalid_replies = 0;  // replies failing verification (peer avoided)
  uint64_t already_held = 0;     // registry blobs found in the store, not fetched
  uint64_t store_errors = 0;     // verified blobs the store refused to write
};

class SyncEngine {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // Everything passed must outlive the engine. `transform` seals what is
  // stored (nullptr stores plain fragments); it must be the one the node
  // reads with. `codec` must use the store's network parameters. `clock`
  // defaults to std::chrono::steady_clock (tests inject their own).
  SyncEngine(Store& store, WorkerPool& pool, std::shared_ptr<const erasure::Codec> codec,
             std::shared_ptr<const ReplicaTransform> transform, Registry& registry,
             RemoteFragments& remote, const SyncSettings& settings, Clock clock = {});
  // stop().
  ~SyncEngine();
  SyncEngine(const SyncEngine&) = delete;
  SyncEngine& operator=(const SyncEngine&) = delete;

  // Starts or resumes syncing `shard` (idempotent). Non-blocking.
  // Errc::cancelled after stop().
  Status add_shard(ShardId shard);
  // Stops syncing `shard`: cancels its fetches and persists its cursor.
  // Blobs already stored stay. Non-blocking.
  void remove_shard(ShardId shard);

  // The registry may have grown (a new head, a PutBlob event): shards that
  // are synced or waiting plan again at once. Non-blocking.
  void registry_changed();

  // Looks at the blob at `index` again although its shard's cursor has
  // passed it: when its record is unreadable it is deleted, and when it is
  // missing it is fetched again (the scrubber calls this for records it
  // cannot read). The persisted cursor is first moved below `index`, so a
  // crash in between loses nothing. Non-blocking. Errc::not_found when the
  // shard is not synced here; Errc::cancelled after stop().
  Status refetch(BlobIndex index);

  // Housekeeping, to be called every SyncSettings::tick_ms: duplicates
  // fetches that exceed hedge_after_ms to another peer, retries blobs whose
  // backoff expired, polls the registry for shards that are synced,
  // resubmits work the pool refused while full. Non-blocking.
  void tick();

  // Cancels every fetch, waits until no pool job or fetch callback of this
  // engine is running or pending, and persists every cursor. Blocking and
  // idempotent; afterwards every call is a no-op. Call it before shutting
  // the pool down, and not from one of its workers (it would wait for
  // itself). The RemoteFragments implementation must still deliver
  // callbacks (cancelled ones included) until stop() returns.
  void stop();

  // Blocks until every added shard is synced, or `timeout` passes (false).
  // For tools and tests; never call it on a network thread.
  bool wait_synced(std::chrono::milliseconds timeout) const;

  std::vector<SyncProgress> progress() const;
  SyncStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::shards
