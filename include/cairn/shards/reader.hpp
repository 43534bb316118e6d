#pragma once
// Reading objects (files and blobs) by id: stat and ranged streaming.
// Uncompressed files are streamed blob by blob with readahead_blobs fetches
// in flight, skipping whole manifest subtrees before the range; compressed
// files go through erasure::decode_file (which must inflate from the
// start). Every blob comes from the BlobSource checked against its id; a
// whole-file read also checks the manifest's size and SHA-256 at the end.
//
// Threading: no threads of its own. stat() and read() block on the source:
// call them from threads that may wait (the node's API threads), never
// from the thread that completes the source's fetches.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/file.hpp"
#include "cairn/shards/registry.hpp"

namespace cairn::shards {

enum class ObjectKind : uint8_t {
  blob = 0,  // an id whose payload is not a root manifest: served as raw bytes
  file = 1,  // a root manifest: served as the file it describes
};

struct ObjectInfo {
  BlobId id;
  ObjectKind kind = ObjectKind::blob;
  // The bytes read() returns for this id: the original file size, or the
  // blob's payload length.
  uint64_t size = 0;
  // Files only (zero / none for blobs).
  uint64_t stored_size = 0;
  erasure::Compression compression = erasure::Compression::none;
  Hash32 sha256{};
  uint64_t blob_count = 0;  // data blobs the manifest tree lists (files)
  // The registry entry of the id's own blob (the root manifest for files).
  BlobIndex index;
  ShardId shard;
};

// Receives a read's bytes in order; an error stops the read with it.
using ByteSink = std::function<Status(ByteSpan)>;

struct ReadRange {
  uint64_t offset = 0;
  // nullopt: to the end. offset + length beyond the size is invalid_argument
  // (an HTTP server clamps Range itself first).
  std::optional<uint64_t> length;
};

// Where the reader gets blobs (the node: its uploads in flight, the local
// store, then peers through the fragment gather).
class BlobSource {
 public:
  using Done = std::function<void(Result<Bytes>)>;
  virtual ~BlobSource() = default;
  // The payload of `id`, checked against the id. `done` runs exactly once,
  // on any thread (possibly inside this call). Any thread that may block.
  virtual void fetch(const BlobId& id, Done done) = 0;
  // The registry entry of `id`; not_found when unregistered. Blocking.
  virtual Result<RegisteredBlob> lookup(const BlobId& id) = 0;
  // True once fetches may never complete (the node is stopping): blocked
  // reads give up with Errc::cancelled.
  virtual bool stopped() const = 0;
};

struct ReaderSettings {
  // Blobs a file read fetches ahead of the one being streamed. Default 16
  // (x 128 KiB = 2 MiB buffered per stream); more hides peer latency.
  uint32_t readahead_blobs = 16;
};

class ObjectReader {
 public:
  // `source` must outlive the reader; `codec` uses the network's parameters.
  ObjectReader(BlobSource& source, std::shared_ptr<const erasure::Codec> codec,
               ReaderSettings settings);

  // What `id` is: a file (its root manifest) or a blob.
  Result<ObjectInfo> stat(const BlobId& id);
  // Streams `range` of the object to `sink`. Errc::invalid_argument for a
  // range outside the object, Errc::corruption for a manifest tree that
  // contradicts itself or a file whose bytes differ from its SHA-256.
  Status read(const BlobId& id, const ReadRange& range, const ByteSink& sink);
  // One blob's payload, blocking (Errc::cancelled once the source stopped).
  Result<Bytes> fetch_blob(const BlobId& id);

  // Object bytes handed to sinks so far (metrics). Any thread.
  uint64_t bytes_read() const noexcept { return bytes_read_.load(std::memory_order_relaxed); }

 private:
  struct Opened;
  Result<Opened> open(const BlobId& id);
  Status read_plain_file(const Opened& o, uint64_t offset, uint64_t length, const ByteSink& sink);
  Status read_compressed_file(const Opened& o, uint64_t offset, uint64_t length,
                              const ByteSink& sink);
  void count(uint64_t bytes) noexcept { bytes_read_.fetch_add(bytes, std::memory_order_relaxed); }

  BlobSource& source_;
  std::shared_ptr<const erasure::Codec> codec_;
  ReaderSettings settings_;
  std::atomic<uint64_t> bytes_read_{0};
};

}  // namespace cairn::shards
