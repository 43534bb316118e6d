#pragma once
// Settings of the shards module: the RocksDB store, the worker pool that
// runs blocking store work off the network thread, shard sync and scrub.
// Nested into the node's settings; every field states its unit, default and
// trade-off.

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "cairn/core/worker_pool.hpp"  // WorkerPoolSettings

namespace cairn::shards {

struct StoreSettings {
  // Sync policy. true (default): every write batch (one per blob) fsyncs the
  // write-ahead log before the call returns, so a blob whose write returned
  // survives power loss and kernel crashes; concurrent writers share one
  // fsync (RocksDB group commit). false: the WAL is written to the OS page
  // cache only; a process crash (kill -9) still loses nothing that returned,
  // but power loss can drop the last seconds of acknowledged writes. Costs
  // about one fsync (~0.5 ms on an NVMe/virtio disk) per blob.
  bool sync_writes = true;

  // Bytes of RocksDB block cache shared by all column families (index,
  // filter and data blocks). Default 64 MiB. More keeps hot metadata and
  // recently read fragments in memory; fragments are read at random by
  // challenges, so beyond the metadata working set returns diminish.
  size_t block_cache_bytes = size_t{64} << 20;

  // Bytes of memtable per column family before it is flushed to disk.
  // Default 64 MiB. Larger means fewer, larger flushes and longer WAL replay
  // at startup after an unclean stop (replay is bounded by this times the
  // number of memtables).
  size_t write_buffer_bytes = size_t{64} << 20;

  // Background flush and compaction threads RocksDB may use. Default 2.
  // More speeds up compaction on many-core machines; on a 2-core node more
  // threads only compete with encoding and the network.
  int max_background_jobs = 2;

  // Upper bound on open SST/blob files (file descriptors). Default 1024;
  // -1 keeps every file open (fastest reads, needs a high ulimit -n).
  int max_open_files = 1024;

  // Store fragment values (16 KiB by default) in RocksDB blob files rather
  // than inline in SST files. Default true: compaction then rewrites only
  // small keys and pointers, cutting write amplification of bulk data from
  // ~10x to ~1-2x at the cost of one extra file lookup per fragment read.
  bool separate_fragment_values = true;

  // Smooth background writeback: ask the OS to write out SST/blob data every
  // this many bytes (0 = off). Default 1 MiB; avoids multi-second stalls when
  // the kernel flushes a large dirty page backlog at once.
  uint64_t bytes_per_sync = uint64_t{1} << 20;
};

struct SyncSettings {
  // Fetches in flight across all peers and shards at once. Default 32. Each
  // holds one blob's data fragments (blob_size, 128 KiB) from request to
  // store, so this is also the sync's memory bound (32 x 128 KiB = 4 MiB).
  // More hides latency on long links; on loopback 16-32 saturates the CPU.
  uint32_t max_in_flight = 32;

  // Fetches in flight to one peer. Default 8. Spreads a sync over several
  // peers (a lone slow peer holds at most this many blobs back) while
  // keeping each peer's pipe full.
  uint32_t max_in_flight_per_peer = 8;

  // A fetch still unanswered after this long is duplicated to another peer
  // (hedged); the first valid answer wins and the other is cancelled.
  // Milliseconds, default 2000. 0 disables hedging. Lower replaces slow
  // peers sooner at the price of duplicate transfers.
  uint32_t hedge_after_ms = 2000;

  // How long a blob that no peer could serve waits before it is tried again.
  // Milliseconds, default 5000. The wait doubles per failed round up to 16x.
  uint32_t retry_backoff_ms = 5000;

  // How long a peer that sent data failing verification is avoided.
  // Milliseconds, default 600000 (10 minutes). The peer is also reported to
  // the network layer (PeerVerdict::invalid_data), which may ban it longer.
  uint32_t bad_peer_avoid_ms = 600000;

  // Registry entries read per planning step. Default 256: one chain query
  // batch; more means fewer registry round trips and a larger plan in memory
  // (about 80 bytes per entry).
  uint32_t plan_batch = 256;

  // The persisted cursor is written after at most this many blobs settle
  // (and when a sync stops). Default 64. A restart re-checks at most this
  // many blobs against the store (never re-fetching stored ones); lower
  // costs one small synced write per this many blobs.
  uint32_t cursor_every_blobs = 64;

  // Period the node calls SyncEngine::tick() at (hedging, retries, registry
  // polling). Milliseconds, default 500.
  uint32_t tick_ms = 500;

  // The node's registry view hides blobs registered in the last this many
  // blocks from sync: a fresh upload reaches serving nodes through its
  // announcement (replication), and syncing it at the same time would fetch
  // it twice. Blocks, default 4. 0 syncs everything at once (a node that
  // missed announcements catches up sooner).
  uint32_t settle_blocks = 4;

  // Hints (SyncEngine::hint: announced uploads) held at once, being checked,
  // queued, fetching or waiting to retry. Default 65536 (the node sets it
  // from upload.max_pull_queue); beyond it hints are dropped and counted,
  // and the walk fetches those blobs after settle_blocks. About 200 bytes
  // each.
  uint32_t max_hints = 65536;

  // Hinted blobs fetching or verifying at once, on slots of their own
  // beside max_in_flight, so a hint never waits behind the walk. Default 64
  // (the node: upload.max_concurrent_pulls); each holds one blob's data
  // fragments (64 x 128 KiB = 8 MiB).
  uint32_t max_hint_fetches = 64;

  // A hinted blob that no peer served in a round (or that the registry did
  // not list yet) is tried again after this long. Milliseconds, default
  // 1000: a fresh upload's holders are few, and its acknowledgement waits.
  uint32_t hint_retry_ms = 1000;

  // Rounds after which a hint is given up (counted as dropped): a missing
  // blob then waits for the walk's backoff (retry_backoff_ms). Default 30.
  uint32_t max_hint_rounds = 30;
};

struct ScrubSettings {
  // Master switch. Default true.
  bool enabled = true;

  // Stored fragment bytes re-read and re-checked per second, on average.
  // Default 8 MiB/s: a node holding 1 TiB is fully scrubbed about every
  // 36 hours, at a small fraction of one core (checking is one mask and
  // SHA-256 over the bytes). Higher finds rot sooner and costs CPU and disk
  // bandwidth that foreground reads and writes would otherwise use.
  uint64_t bytes_per_second = uint64_t{8} << 20;

  // Most bytes one scrub job checks before it returns its worker to the
  // pool. Default 2 MiB (about ten default blobs, a few milliseconds): a
  // foreground job waits at most that long behind the scrubber.
  uint64_t max_job_bytes = uint64_t{2} << 20;

  // The scrubber submits no job while more than this many jobs wait in the
  // worker pool's queue, so it only uses idle capacity. Default 0 (only
  // when the queue is empty).
  uint32_t max_queued_jobs = 0;

  // Period the node calls Scrubber::tick() at. Milliseconds, default 250.
  uint32_t tick_ms = 250;

  // Pause after a full pass over the store before the next one starts.
  // Seconds, default 3600.
  uint32_t pass_pause_s = 3600;
};

// Accepting uploads (the UploadEngine, shards/upload.hpp) and replicating
// them to the shard's serving nodes (the node's replicator reads the pull
// bounds at the end). Durations in milliseconds.
struct UploadSettings {
  // Serving nodes that must confirm a stored, sealed replica of a blob
  // before an upload is acknowledged; capped at the nodes the registry lists
  // for the shard (a lone node acknowledges with its own replica). Default 2:
  // an acknowledged blob survives the loss of any one node. Higher: safer,
  // slower acknowledgements.
  uint32_t min_replicas = 2;
  // How long an upload call waits for every blob's confirmations. Default
  // 120 s. The data stays pending (persisted) and keeps replicating after a
  // timeout; only the caller stops waiting.
  std::chrono::milliseconds ack_timeout = std::chrono::seconds(120);
  // Blobs of all uploads in flight at once (encoded, registered, awaiting
  // confirmations). Default 1024 (x 128 KiB payload = 128 MiB held). A full
  // window makes upload calls wait (they never fail for it).
  uint32_t max_blobs_in_flight = 1024;
  // PutBlob transactions submitted per chain call. Default 256.
  uint32_t register_batch = 256;
  // A pending blob that has not reached min_replicas is re-announced to its
  // shard after this long without a new confirmation. Default 5 s.
  std::chrono::milliseconds reannounce_interval = std::chrono::seconds(5);
  // Unused: announced blobs are sync hints, whose fetches each have
  // fetch.request_timeout and are hedged after storage.sync.hedge_after_ms.
  // Still read, so configuration files that set it load. Default 10 s.
  std::chrono::milliseconds pull_timeout = std::chrono::seconds(10);
  // Announced blobs a serving node is pulling at once (the sync engine's
  // max_hint_fetches). Default 64; more are held up to `max_pull_queue`
  // (max_hints), beyond which announcements are dropped (the uploader
  // re-announces; sync catches up otherwise).
  uint32_t max_concurrent_pulls = 64;
  uint32_t max_pull_queue = 65536;
};

struct ShardsSettings {
  StoreSettings store;
  WorkerPoolSettings workers;
  SyncSettings sync;
  ScrubSettings scrub;
};

}  // namespace cairn::shards
