#pragma once
// Ingest and read-back of whole blobs: encode + commit with the erasure
// module, then one atomic store batch with every fragment and the record;
// and the reverse, decode from k verified fragments.
//
// All functions block (ISA-L, SHA-256, RocksDB): call them on a WorkerPool.

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/shards/store.hpp"

namespace cairn::shards {

// A reversible per-fragment transform applied after a blob is committed and
// before its fragments are stored, and undone on read: replica sealing
// (DESIGN.md section 7) plugs in here. Implementations must be thread-safe
// and deterministic (the same inputs give the same bytes).
class FragmentTransform {
 public:
  virtual ~FragmentTransform() = default;
  // The encoding the transformed bytes have on disk, recorded per blob.
  virtual FragmentEncoding encoding() const noexcept = 0;
  // Turns committed fragment bytes into stored bytes, in place.
  virtual void to_stored(const BlobId& id, BlobIndex index, FragmentIndex fragment,
                         MutableByteSpan bytes) const = 0;
  // The inverse of to_stored, in place.
  virtual void from_stored(const BlobId& id, BlobIndex index, FragmentIndex fragment,
                           MutableByteSpan bytes) const = 0;
};

struct IngestResult {
  BlobRecord record;
  PutOutcome outcome = PutOutcome::stored;
};

// Encodes and commits `payload` (<= blob_size bytes) and stores it at
// `index`. `codec` must use the store's network parameters
// (Errc::invalid_argument otherwise). With a transform, the stored fragments
// are transform->to_stored(...) of the committed ones. Store errors as in
// Store::put_blob (conflict, already_present, io_error).
Result<IngestResult> ingest_payload(Store& store, const erasure::Codec& codec, BlobIndex index,
                                    ByteSpan payload, const FragmentTransform* transform = nullptr);

// Stores a blob that is already encoded and committed: one produced by
// encode_and_commit, or received from a peer and accepted by verify_blob
// (the caller vouches for that; the commitment is not recomputed here).
// Its shape must match the store's geometry (Errc::invalid_argument).
// Consumes `blob` (the transform works on its buffer in place).
Result<IngestResult> ingest_committed(Store& store, BlobIndex index, erasure::CommittedBlob blob,
                                      const FragmentTransform* transform = nullptr);

// Reads the blob at `index` back: loads fragments (data fragments first),
// undoes the transform, checks each against its fragment root and the
// roots against the blob id, and decodes the payload from the first k good
// ones. A fragment that fails its checksum or root is skipped as long as k
// good ones remain. Errc::not_found when no blob is stored there;
// Errc::corruption naming the bad fragments when fewer than k are good;
// Errc::invalid_argument when the blob is sealed and no transform is given.
Result<Bytes> read_payload(const Store& store, const erasure::Codec& codec, BlobIndex index,
                           const FragmentTransform* transform = nullptr);

}  // namespace cairn::shards
