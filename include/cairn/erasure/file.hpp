#pragma once
// Files (DESIGN.md section 3, docs/blob-format.md): a file is cut into blobs,
// optionally zstd-compressed first, and described by a manifest that is
// itself stored as a blob. The file id is the manifest's blob id.

#include <cstdint>
#include <functional>

#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/commitment.hpp"

namespace cairn::erasure {

// Persisted format: do not renumber.
enum class Compression : uint8_t { none = 0, zstd = 1 };

struct FileOptions {
  enum class Compress { automatic, never, always };
  // automatic: compress when zstd shrinks a sample of the file (the rule is
  // in docs/blob-format.md, so every uploader derives the same id).
  Compress compress = Compress::automatic;
};

// One blob produced by encode_file, in upload order: data blobs first, then
// manifest blobs, the root manifest (whose id is the file id) last.
struct BlobPiece {
  const CommittedBlob& blob;  // encoded fragments and commitment
  ByteSpan payload;           // the blob's bytes before padding
  bool is_manifest = false;
};
using BlobSink = std::function<Status(const BlobPiece&)>;

struct FileSummary {
  BlobId id;                     // the file id (root manifest's blob id)
  uint64_t size = 0;             // original file bytes
  uint64_t stored_size = 0;      // bytes after compression (== size when none)
  Compression compression = Compression::none;
  Hash32 sha256{};               // SHA-256 of the original file
  uint64_t data_blobs = 0;
  uint64_t manifest_blobs = 0;
};

// Splits, (maybe) compresses, encodes and commits `content`, handing each blob
// to `sink`; stops at and returns the sink's first error.
Result<FileSummary> encode_file(const Codec& codec, ByteSpan content, const FileOptions& options,
                                const BlobSink& sink);

// Returns a blob's payload, already checked against its id (e.g. decoded from
// k verified fragments). Errc::not_found when no one has it.
using BlobFetch = std::function<Result<Bytes>(const BlobId&)>;
using ByteSink = std::function<Status(ByteSpan)>;

// Rebuilds a file from its id, streaming bytes to `out` in order. Checks every
// blob against its id, the manifest's lengths, and the whole-file SHA-256 at
// the end (Errc::corruption naming the blob or the file on mismatch).
Result<FileSummary> decode_file(const Codec& codec, const BlobId& file_id, const BlobFetch& fetch,
                                const ByteSink& out);

}  // namespace cairn::erasure
