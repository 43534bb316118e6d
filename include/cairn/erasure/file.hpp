#pragma once
// Files (docs/design.md section 3, docs/blob-format.md): a file is cut into blobs,
// optionally zstd-compressed first, and described by a manifest that is
// itself stored as a blob. The file id is the manifest's blob id.

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"

namespace cairn::erasure {

// Persisted format: do not renumber.
enum class Compression : uint8_t { none = 0, zstd = 1 };

// The compression rule (docs/blob-format.md, "Compression"). Part of the id
// derivation: changing any of these changes the ids of compressible files.
inline constexpr int kZstdLevel = 3;
// `automatic` compresses the file iff zstd, with the pinned parameters, turns
// its first min(size, kCompressionSampleBytes) bytes into at most
// kCompressionMarginPercent percent of their size.
inline constexpr size_t kCompressionSampleBytes = size_t{1} << 20;
inline constexpr uint64_t kCompressionMarginPercent = 90;
// Decoders reject zstd frames that need a larger window (memory bound per
// download: 2^24 = 16 MiB; level 3 uses at most 2^21).
inline constexpr int kZstdWindowLogMax = 24;

struct FileOptions {
  enum class Compress { automatic, never, always };
  // automatic: compress when zstd shrinks a sample of the file (the rule is
  // in docs/blob-format.md, so every uploader derives the same id).
  Compress compress = Compress::automatic;
};

// Manifest blobs (docs/blob-format.md, "Manifest"): persisted format.
inline constexpr std::array<uint8_t, 4> kManifestMagic = {'C', 'R', 'N', 'M'};
inline constexpr uint8_t kManifestVersion = 1;
inline constexpr size_t kManifestEntryBytes = 40;       // blob id + u64 length
inline constexpr size_t kManifestRootHeaderBytes = 64;  // through entry_count
inline constexpr size_t kManifestInteriorHeaderBytes = 12;
// Bounds the tree (and the decoder's recursion): with blob_size >= 512 an
// interior node lists >= 12 children, so height 16 covers 512 * 12^16 bytes,
// more than any u64 size.
inline constexpr uint8_t kMaxManifestHeight = 16;
// Smallest blob_size encode_file accepts (see kMaxManifestHeight).
inline constexpr uint32_t kMinFileBlobSize = 512;

// Persisted format: do not renumber.
enum class ManifestKind : uint8_t { root = 0, interior = 1 };

struct ManifestEntry {
  BlobId id;
  // Bytes of the stored (possibly compressed) stream under this entry: a data
  // blob's payload length, or the total under a child manifest.
  uint64_t length = 0;
  bool operator==(const ManifestEntry&) const = default;
};

// One manifest blob. The root describes the file; when its entries do not fit
// one blob they are grouped into interior manifests, level by level.
struct Manifest {
  ManifestKind kind = ManifestKind::root;
  // 0: entries are data blobs; h > 0: entries are interior manifests of height h-1.
  uint8_t height = 0;
  // Root only (not serialized in interior manifests):
  uint64_t file_size = 0;    // original bytes
  uint64_t stored_size = 0;  // bytes after compression (sum of entry lengths)
  Compression compression = Compression::none;
  Hash32 sha256{};  // of the original file
  std::vector<ManifestEntry> entries;

  Bytes serialize() const;
  // Parses untrusted bytes (a manifest blob's payload). Checks everything a
  // manifest says about itself: magic, version (Errc::unsupported when newer),
  // kind, height, reserved bytes, that entry_count matches the bytes present,
  // non-zero entry lengths, that lengths sum to stored_size without overflow
  // (root), and stored_size == file_size when uncompressed. What needs
  // context (parent lengths, blob_size) is checked by decode_file.
  static Result<Manifest> parse(ByteSpan data) noexcept;

  bool operator==(const Manifest&) const = default;
};

// Entries one manifest blob of `kind` holds for this blob_size.
size_t manifest_capacity(uint32_t blob_size, ManifestKind kind) noexcept;

// One blob produced by encode_file, in upload order: every blob comes after
// the blobs it lists, so a manifest never names a blob not yet handed out;
// the root manifest (whose id is the file id) comes last. The referenced
// buffers are reused: they are valid only during the sink call.
struct BlobPiece {
  const CommittedBlob& blob;  // encoded fragments and commitment
  ByteSpan payload;           // the blob's bytes before padding
  bool is_manifest = false;
};
using BlobSink = std::function<Status(const BlobPiece&)>;

struct FileSummary {
  BlobId id;                 // the file id (root manifest's blob id)
  uint64_t size = 0;         // original file bytes
  uint64_t stored_size = 0;  // bytes after compression (== size when none)
  Compression compression = Compression::none;
  Hash32 sha256{};  // SHA-256 of the original file
  uint64_t data_blobs = 0;
  uint64_t manifest_blobs = 0;
};

// Splits, (maybe) compresses, encodes and commits `content`, handing each blob
// to `sink`; stops at and returns the sink's first error. invalid_argument
// when blob_size < kMinFileBlobSize. Memory: O(blob_size * tree height), not
// O(file size), besides `content` itself.
Result<FileSummary> encode_file(const Codec& codec, ByteSpan content, const FileOptions& options,
                                const BlobSink& sink);

// Returns a blob's payload (e.g. decoded from k verified fragments; decode_file
// checks it against the id again). Errc::not_found when no one has it.
using BlobFetch = std::function<Result<Bytes>(const BlobId&)>;
using ByteSink = std::function<Status(ByteSpan)>;

// Rebuilds a file from its id, streaming bytes to `out` in order. Checks every
// blob against its id (re-encoding it), the manifest's lengths, and the
// whole-file SHA-256 at the end (Errc::corruption naming the blob or the file
// on mismatch). Bytes reach `out` before the final check: a caller must treat
// the output as valid only when decode_file succeeds. Other errors: the
// fetch's own (with context), the sink's, invalid_argument when `file_id` is
// not a root manifest, unsupported for a newer manifest version.
Result<FileSummary> decode_file(const Codec& codec, const BlobId& file_id, const BlobFetch& fetch,
                                const ByteSink& out);

}  // namespace cairn::erasure
