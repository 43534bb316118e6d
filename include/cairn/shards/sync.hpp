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
// Hints (docs/sync-and-scrub.md, "Hints"): a fresh upload's announcement
// reaches the engine as hint(): the blob is checked against the store and
// the registry on the pool and, when missing, fetched at once ahead of the
// walk, on slots of its own (max_hint_fetches), from the hinted peers first
// (the announcer), then the shard's peers, through the same fetch, verify,
// seal and store path as the walk. The SyncObserver learns how each hint
// ended (the node gossips the stored notice that confirms the upload).
// Time comes from the injected cairn::Clock.
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

#include "cairn/core/clock.hpp"
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

  // Hints (hint()); their fetches count above as well.
  uint64_t hints = 0;                 // accepted (not dropped, not merged into one under way)
  uint64_t hints_stored = 0;          // fetched, verified, sealed and stored
  uint64_t hints_already_held = 0;    // found in the store
  uint64_t hints_rejected = 0;        // the registry lists another blob (or length) there
  uint64_t hints_dropped = 0;         // refused (max_hints held) or given up (max_hint_rounds)
  uint64_t hint_fetches_failed = 0;   // fetches of hinted blobs that failed
  uint64_t hint_invalid_replies = 0;  // replies for hinted blobs failing verification
  uint64_t hint_store_errors = 0;     // verified hinted blobs the store refused to write
  uint64_t hint_wire_bytes = 0;       // fragment bytes received for hinted blobs
  uint64_t hints_pending =
      0;  // not cumulative: hints held now (checked, queued, fetching, waiting)
};

// A blob this node should hold soon: an announced upload of a synced shard.
// Nothing in it is trusted: the registry must list `id` at `index` with
// `length` before anything is fetched.
struct BlobHint {
  BlobId id;
  BlobIndex index;
  uint32_t length = 0;
  // Asked first, in this order, before the shard's peers (the announcer
  // first); distinct, this node excluded.
  std::vector<NodeId> peers;
};

// How a hint ended. Not persisted.
enum class HintOutcome : uint8_t {
  stored,        // fetched, verified, sealed and stored by this engine
  already_held,  // the store held it already
  rejected,      // the registry lists another blob or length at the index, or the store does
  given_up,      // no peer (or lookup) served it in max_hint_rounds rounds: left to the walk
};

std::string_view hint_outcome_name(HintOutcome o) noexcept;

// What the engine reports to its owner.
class SyncObserver {
 public:
  virtual ~SyncObserver() = default;
  // An accepted hint ended (once per accepted hint; never for hints of a
  // removed shard or after stop()). `blob` is the registered blob (the
  // hint's claims when rejected); `waited` runs from hint() to now on the
  // engine's clock. Called without the engine's lock on any thread (a pool
  // worker, a fetch completion); must not block or call stop().
  virtual void hint_done(ShardId shard, const RegisteredBlob& blob, HintOutcome outcome,
                         Duration waited) = 0;
};

class SyncEngine {
 public:
  // Everything passed by reference or pointer must outlive the engine.
  // `transform` seals what is stored (nullptr stores plain fragments); it
  // must be the one the node reads with. `codec` must use the store's
  // network parameters. `clock` is read, never armed (tick() is the
  // owner's timer). `observer` may be null.
  SyncEngine(Store& store, WorkerPool& pool, std::shared_ptr<const erasure::Codec> codec,
             std::shared_ptr<const ReplicaTransform> transform, Registry& registry,
             RemoteFragments& remote, const SyncSettings& settings, Clock& clock,
             SyncObserver* observer = nullptr);
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

  // Fetches the blob of `hint` now, ahead of the walk, unless the store
  // holds it; the observer learns the outcome. A hint for a blob already
  // hinted adds its peers; one for a blob the walk has queued moves it
  // ahead. Non-blocking. Errc::invalid_argument when the index is not in
  // `shard`, Errc::not_found when the shard is not synced here, Errc::busy
  // when max_hints are held (counted as dropped), Errc::cancelled after
  // stop().
  Status hint(ShardId shard, BlobHint hint);

  // Housekeeping, to be called every SyncSettings::tick_ms: duplicates
  // fetches that exceed hedge_after_ms to another peer, retries blobs (and
  // hints) whose backoff expired, polls the registry for shards that are synced,
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
