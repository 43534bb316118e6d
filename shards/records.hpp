#pragma once
// Encoders and decoders of the store's value payloads (inside the checksum
// envelope; docs/store-format.md). Decoders read bytes back from disk: they
// are noexcept, check every length and return Errc::corruption (or
// unsupported for an unknown enum value) naming `what`.

#include <string>

#include "cairn/core/bytes.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/params.hpp"
#include "cairn/shards/store.hpp"

namespace cairn::shards {

// "blob at index N", for error messages about a stored blob.
inline std::string blob_context(BlobIndex index) {
  return "blob at index " + std::to_string(index.value);
}

}  // namespace cairn::shards

namespace cairn::shards::records {

Bytes encode_blob_record(const BlobRecord& r);
// `index` comes from the key the record was stored under.
Result<BlobRecord> decode_blob_record(ByteSpan payload, BlobIndex index,
                                      const std::string& what) noexcept;

Bytes encode_pending(const PendingUpload& p);
Result<PendingUpload> decode_pending(ByteSpan payload, const std::string& what) noexcept;

Bytes encode_sync_cursor(const SyncCursor& c);
Result<SyncCursor> decode_sync_cursor(ByteSpan payload, const std::string& what) noexcept;

// The geometry a store was created with (meta key "network").
Bytes encode_geometry(const erasure::NetworkParams& p);
Result<erasure::NetworkParams> decode_geometry(ByteSpan payload, const std::string& what) noexcept;
// "blob_size 131072, k 8, m 4, chunk_size 1024, blobs_per_shard 4096"
std::string describe_geometry(const erasure::NetworkParams& p);
bool same_geometry(const erasure::NetworkParams& a, const erasure::NetworkParams& b) noexcept;

}  // namespace cairn::shards::records
