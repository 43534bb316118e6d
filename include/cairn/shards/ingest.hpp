#pragma once
// Ingest and read-back of whole blobs: encode + commit with the erasure
// module, then one atomic store batch with every fragment and the record;
// and the reverse, decode from k verified fragments.
//
// All functions block (ISA-L, SHA-256, RocksDB): call them on a WorkerPool.

#include <span>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/shards/store.hpp"

namespace cairn::shards {

// One stored fragment handed to ReplicaTransform::from_stored.
struct StoredFragment {
  FragmentIndex index;
  MutableByteSpan bytes;  // fragment_size bytes
};

// A reversible transform applied to a blob's replica after the blob is
// committed and before its fragments are stored, and undone on read:
// replica sealing (docs/design.md section 7, sampling/seal.hpp) plugs in here.
// The unit is the whole replica because the seal mask is computed per blob
// (sampling::replica_mask); unsealing any subset of fragments needs one mask
// computation. Implementations must be thread-safe and deterministic.
class ReplicaTransform {
 public:
  virtual ~ReplicaTransform() = default;
  // The encoding the transformed bytes have on disk, recorded per blob
  // (never FragmentEncoding::plain).
  virtual FragmentEncoding encoding() const noexcept = 0;
  // Turns the committed replica (all n fragments, contiguous, as in
  // EncodedBlob::data) into its stored form, in place.
  virtual void to_stored(const BlobId& id, BlobIndex index, MutableByteSpan replica) const = 0;
  // Undoes to_stored for the given fragments of that blob, in place.
  virtual void from_stored(const BlobId& id, BlobIndex index,
                           std::span<const StoredFragment> fragments) const = 0;
};

struct IngestResult {
  BlobRecord record;
  PutOutcome outcome = PutOutcome::stored;
};

// Encodes and commits `payload` (<= blob_size bytes) and stores it at
// `index`. `codec` must use the store's network parameters
// (Errc::invalid_argument otherwise). With a transform, the stored fragments
// are the committed replica after transform->to_stored. Store errors as in
// Store::put_blob (conflict, already_present, io_error).
Result<IngestResult> ingest_payload(Store& store, const erasure::Codec& codec, BlobIndex index,
                                    ByteSpan payload, const ReplicaTransform* transform = nullptr);

// Stores a blob that is already encoded and committed: one produced by
// encode_and_commit, or received from a peer and accepted by verify_blob
// (the caller vouches for that; the commitment is not recomputed here).
// Its shape must match the store's geometry (Errc::invalid_argument).
// Consumes `blob` (the transform works on its buffer in place).
Result<IngestResult> ingest_committed(Store& store, BlobIndex index, erasure::CommittedBlob blob,
                                      const ReplicaTransform* transform = nullptr);

// Reads the blob at `index` back: loads fragments (data fragments first),
// undoes the transform, checks each against its fragment root and the
// roots against the blob id, and decodes the payload from the first k good
// ones. A fragment that fails its checksum or root is skipped as long as k
// good ones remain. Errc::not_found when no blob is stored there;
// Errc::corruption naming the bad fragments when fewer than k are good;
// Errc::invalid_argument when the blob is sealed and no transform is given.
Result<Bytes> read_payload(const Store& store, const erasure::Codec& codec, BlobIndex index,
                           const ReplicaTransform* transform = nullptr);

}  // namespace cairn::shards
