#pragma once
// Settings of the shards module: the RocksDB store and the worker pool that
// runs blocking store work off the network thread. Nested into the node's
// settings; every field states its unit, default and trade-off.

#include <cstddef>
#include <cstdint>

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

struct WorkerPoolSettings {
  // Worker threads running blocking work (RocksDB, ISA-L, sealing, fsync).
  // Default 2: one per core of the reference machine; the network thread
  // mostly waits. More threads help when work waits on disk, not on CPU.
  uint32_t threads = 2;

  // Jobs that may wait in the queue. Default 256. A full queue makes
  // try_submit fail with Errc::busy so a network thread stops reading
  // instead of buffering without bound. Each queued ingest holds its
  // payload (up to blob_size, 128 KiB), so the bound is also a memory bound
  // (256 x 128 KiB = 32 MiB).
  uint32_t queue_capacity = 256;
};

struct ShardsSettings {
  StoreSettings store;
  WorkerPoolSettings workers;
};

}  // namespace cairn::shards
