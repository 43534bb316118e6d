#pragma once
// The node's persistent store (docs/design.md section 6): RocksDB with one column
// family per kind of record, every value checksummed, one atomic write batch
// per blob. Layouts: docs/store-format.md.
//
// Thread-safety: every member except close() may be called concurrently from
// any thread. Calls block on disk I/O: run them on a WorkerPool, never on a
// network thread.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/params.hpp"
#include "cairn/shards/geometry.hpp"
#include "cairn/shards/settings.hpp"
#include "cairn/shards/store_options.hpp"

namespace cairn::shards {

// How a blob's fragment bytes are kept on disk.
// Persisted format: do not renumber.
enum class FragmentEncoding : uint8_t {
  plain = 0,   // the erasure-coded fragment exactly as committed
  sealed = 1,  // fragment XOR the node's replica mask (docs/design.md section 7)
};

// What the store knows about one blob. The fragments themselves are stored
// separately, keyed by (shard, index, fragment).
struct BlobRecord {
  BlobId id;
  BlobIndex index;
  uint32_t length = 0;         // payload bytes before zero padding
  uint32_t fragment_size = 0;  // bytes per fragment
  uint8_t data_fragments = 0;  // k
  FragmentEncoding encoding = FragmentEncoding::plain;
  std::vector<Hash32> fragment_roots;  // one per fragment (n), by fragment index

  uint32_t total_fragments() const noexcept { return static_cast<uint32_t>(fragment_roots.size()); }
  bool operator==(const BlobRecord&) const = default;
};

// An upload this node accepted but the chain has not assigned an index yet.
struct PendingUpload {
  Bytes payload;               // at most blob_size bytes
  uint64_t created_at_ms = 0;  // unix milliseconds, set by the caller
  bool operator==(const PendingUpload&) const = default;
};

// How far a shard sync got: every index below `next` is done.
struct SyncCursor {
  BlobIndex next;
  uint64_t updated_at_ms = 0;  // unix milliseconds, set by the caller
  bool operator==(const SyncCursor&) const = default;
};

enum class PutOutcome {
  stored,           // newly written
  already_present,  // the same blob id was already stored at that index; nothing written
};

// One page of a shard scan, in index order.
struct ScanPage {
  std::vector<BlobRecord> records;
  // Records whose stored value failed its checksum (skipped, not returned).
  std::vector<std::pair<BlobIndex, Error>> corrupt;
  // Where the next page starts; nullopt when the shard has no more records.
  std::optional<BlobIndex> next;
};

// A value stored under a node id (peers) or (shard, epoch, node) (responses).
struct NodeRecord {
  NodeId node;
  Bytes value;
};

// A listing of node-keyed values; entries failing their checksum are
// reported in `corrupt` and skipped.
struct NodeRecords {
  std::vector<NodeRecord> records;
  std::vector<std::pair<NodeId, Error>> corrupt;
};

class Store {
 public:
  // Opens (creating when missing) the store in directory `dir`. A store
  // remembers the geometry it was created with (blob_size, k, m, chunk_size,
  // blobs_per_shard): opening it with different parameters is Errc::conflict.
  // Errc::io_error when the directory cannot be used or another process
  // holds the store; Errc::unsupported when it was written by a newer format;
  // Errc::corruption when its metadata fails a checksum. `options` may
  // inject the file system RocksDB works on (fault-injection tests).
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& dir,
                                             const erasure::NetworkParams& params,
                                             const StoreSettings& settings = {},
                                             const StoreOptions& options = {});

  // Closes the store if close() was not called (errors are then dropped).
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Closes RocksDB, reporting errors. Must not run concurrently with any other
  // call (shut the worker pool down first). Afterwards every call returns
  // Errc::cancelled. Unflushed memtables are not flushed: the WAL replays them
  // on the next open.
  Status close();

  // Writes every memtable to SST/blob files, so the next open has
  // nothing to replay (the node calls it on an orderly stop). Not needed for
  // durability: the WAL already holds every write that returned.
  Status flush();

  const erasure::NetworkParams& params() const noexcept;
  const std::filesystem::path& path() const noexcept;

  // Number of blobs held (exact; counted at open, maintained on writes).
  uint64_t blob_count() const noexcept;

  // Writes (of any kind) that failed since open. After a failed log write
  // or sync (I/O error) every later write fails too until the store is
  // reopened, so a count that keeps rising means "restart once the disk is
  // healthy" (docs/store-format.md, "Write, sync and read failures").
  uint64_t write_failures() const noexcept;

  // ---- blobs and fragments ----

  // Writes `record` and its fragments (exactly record.total_fragments()
  // buffers of record.fragment_size bytes, stored as given: a caller that
  // seals passes sealed bytes and record.encoding = sealed) in one atomic
  // write batch. The record must match the store's geometry.
  // Errc::invalid_argument on a malformed record or fragment list;
  // Errc::conflict when the index holds another blob, or the blob id is
  // already stored at another index; already_present (nothing written) when
  // the same id is already stored at this index.
  Result<PutOutcome> put_blob(const BlobRecord& record, std::span<const ByteSpan> fragments);

  // Replaces one stored fragment (repair). Errc::not_found when no blob is
  // stored at `index`; invalid_argument on a wrong size or fragment number.
  Status put_fragment(BlobIndex index, FragmentIndex fragment, ByteSpan bytes);

  // The stored bytes of one fragment (sealed if the record says so).
  // Errc::not_found when absent; Errc::corruption naming shard, index and
  // fragment when the stored value fails its checksum or has the wrong size.
  Result<Bytes> get_fragment(BlobIndex index, FragmentIndex fragment) const;

  // Errc::not_found when no blob is stored there / under that id.
  Result<BlobRecord> get_blob_at(BlobIndex index) const;
  Result<BlobRecord> get_blob(const BlobId& id) const;

  // Indexes of the blobs held in `shard`, ascending.
  Result<std::vector<BlobIndex>> list_shard(ShardId shard) const;

  // Up to `limit` records of `shard` with index >= from, ascending. Corrupt
  // records are reported in the page and skipped, so a scan always progresses.
  Result<ScanPage> scan_shard(ShardId shard, BlobIndex from, size_t limit) const;

  // Up to `limit` records of any shard with index >= from, ascending (the
  // scrubber's walk over everything held). Corrupt records as in scan_shard.
  Result<ScanPage> scan_blobs(BlobIndex from, size_t limit) const;

  // Removes a blob (record, id entry and every fragment) in one batch.
  // Returns false when nothing was stored at `index`.
  Result<bool> delete_blob(BlobIndex index);

  // ---- pending uploads (by blob id) ----
  Status put_pending(const BlobId& id, const PendingUpload& upload);
  Result<PendingUpload> get_pending(const BlobId& id) const;  // Errc::not_found when absent
  Status erase_pending(const BlobId& id);
  Result<std::vector<BlobId>> list_pending(size_t limit) const;

  // ---- sync cursors (by shard) ----
  Status put_sync_cursor(ShardId shard, const SyncCursor& cursor);
  Result<SyncCursor> get_sync_cursor(ShardId shard) const;  // Errc::not_found when absent
  Status erase_sync_cursor(ShardId shard);

  // ---- challenge responses seen, by (shard, epoch, node); value owned by sampling/ ----
  Status put_response(ShardId shard, Epoch epoch, const NodeId& node, ByteSpan response);
  Result<Bytes> get_response(ShardId shard, Epoch epoch, const NodeId& node) const;
  // Up to `limit` responses of (shard, epoch), by node id.
  Result<NodeRecords> responses(ShardId shard, Epoch epoch, size_t limit) const;
  // Removes the responses of `shard` for every epoch before `before`.
  Status prune_responses(ShardId shard, Epoch before);

  // ---- known peers, by node id; value owned by p2p/ ----
  Status put_peer(const NodeId& node, ByteSpan record);
  Result<Bytes> get_peer(const NodeId& node) const;
  Status erase_peer(const NodeId& node);
  Result<NodeRecords> peers(size_t limit) const;

  // Largest value put_response / put_peer accept (a bug guard, not a protocol limit).
  static constexpr size_t kMaxRecordBytes = size_t{16} << 20;

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::shards
