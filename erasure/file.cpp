#include "cairn/erasure/file.hpp"

// ZSTD_c_stableInBuffer is in zstd's experimental API (stable since 1.4.x,
// exported by the shared library). With it, streaming the whole input with
// ZSTD_e_end gives byte-for-byte ZSTD_compress2's output; without it zstd
// stages input in its own window buffer and finds different matches.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "cairn/erasure/sha256.hpp"

namespace cairn::erasure {
namespace {

tl::unexpected<Error> malformed(std::string message) {
  return make_error(Errc::invalid_argument, "manifest: " + std::move(message));
}

tl::unexpected<Error> corrupt(std::string message) {
  return make_error(Errc::corruption, std::move(message));
}

bool add_overflows(uint64_t a, uint64_t b, uint64_t& sum) {
  return __builtin_add_overflow(a, b, &sum);
}

// ---------------------------------------------------------------------------
// zstd with the pinned parameters of the id rule.

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const noexcept { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const noexcept { ZSTD_freeDCtx(d); }
};
using CCtx = std::unique_ptr<ZSTD_CCtx, CCtxDeleter>;
using DCtx = std::unique_ptr<ZSTD_DCtx, DCtxDeleter>;

tl::unexpected<Error> zstd_error(const char* what, size_t code) {
  return make_error(Errc::internal, std::string("zstd ") + what + ": " + ZSTD_getErrorName(code));
}

// Level kZstdLevel, no checksum (the manifest's SHA-256 covers the file), the
// content size in the frame header, no dictionary id, single-threaded.
Result<CCtx> pinned_cctx() {
  CCtx c(ZSTD_createCCtx());
  if (!c) return make_error(Errc::internal, "zstd: cannot allocate a compression context");
  const std::pair<ZSTD_cParameter, int> params[] = {
      {ZSTD_c_compressionLevel, kZstdLevel},
      {ZSTD_c_checksumFlag, 0},
      {ZSTD_c_contentSizeFlag, 1},
      {ZSTD_c_dictIDFlag, 0},
      {ZSTD_c_nbWorkers, 0},
      // Only affects buffering (the input span outlives the compression);
      // ZSTD_compress2 sets it internally, so the sample check is unchanged.
      {ZSTD_c_stableInBuffer, 1},
  };
  for (const auto& [p, v] : params) {
    const size_t rc = ZSTD_CCtx_setParameter(c.get(), p, v);
    if (ZSTD_isError(rc)) return zstd_error("set parameter", rc);
  }
  return c;
}

// The `automatic` rule: compress iff the sample shrinks to at most
// kCompressionMarginPercent percent.
Result<bool> should_compress(ByteSpan content, FileOptions::Compress mode) {
  switch (mode) {
    case FileOptions::Compress::never:
      return false;
    case FileOptions::Compress::always:
      return true;
    case FileOptions::Compress::automatic:
      break;
  }
  if (content.empty()) return false;
  const ByteSpan sample = content.first(std::min(content.size(), kCompressionSampleBytes));
  auto cctx = pinned_cctx();
  if (!cctx) return tl::unexpected(cctx.error());
  Bytes out(ZSTD_compressBound(sample.size()));
  const size_t n =
      ZSTD_compress2(cctx->get(), out.data(), out.size(), sample.data(), sample.size());
  if (ZSTD_isError(n)) return zstd_error("compress sample", n);
  return uint64_t{n} * 100 <= uint64_t{sample.size()} * kCompressionMarginPercent;
}

// ---------------------------------------------------------------------------
// Encoding: blobs go to the sink as they are made; manifests are built
// bottom-up, one pending node per level, so memory is O(height * blob_size).

class FileEncoder {
 public:
  FileEncoder(const Codec& codec, const BlobSink& sink)
      : codec_(codec),
        sink_(sink),
        root_capacity_(manifest_capacity(codec.params().blob_size, ManifestKind::root)),
        interior_capacity_(manifest_capacity(codec.params().blob_size, ManifestKind::interior)) {}

  Status add_data(ByteSpan payload) {
    auto id = emit(payload, false);
    if (!id) return tl::unexpected(id.error());
    ++summary_.data_blobs;
    return add_entry(0, ManifestEntry{*id, payload.size()});
  }

  // Completes the tree: the lowest level whose entries fit in the root (with
  // nothing pending above it) becomes the root; lower partial nodes are
  // flushed as interior manifests first.
  Result<FileSummary> finish(Manifest root) {
    for (size_t level = 0;; ++level) {
      if (level > kMaxManifestHeight) {
        return make_error(Errc::internal,
                          "manifest tree exceeds height " + std::to_string(kMaxManifestHeight));
      }
      if (levels_.size() <= level) levels_.resize(level + 1);
      const bool nothing_above =
          std::all_of(levels_.begin() + static_cast<std::ptrdiff_t>(level) + 1, levels_.end(),
                      [](const auto& l) { return l.empty(); });
      if (nothing_above && levels_[level].size() <= root_capacity_) {
        root.kind = ManifestKind::root;
        root.height = static_cast<uint8_t>(level);
        root.entries = std::move(levels_[level]);
        auto id = emit(root.serialize(), true);
        if (!id) return tl::unexpected(id.error());
        ++summary_.manifest_blobs;
        summary_.id = *id;
        summary_.size = root.file_size;
        summary_.stored_size = root.stored_size;
        summary_.compression = root.compression;
        summary_.sha256 = root.sha256;
        return summary_;
      }
      if (!levels_[level].empty()) CAIRN_TRY_STATUS(flush(level));
    }
  }

 private:
  Status add_entry(size_t level, ManifestEntry entry) {
    if (levels_.size() <= level) levels_.resize(level + 1);
    levels_[level].push_back(entry);
    if (levels_[level].size() == interior_capacity_) return flush(level);
    return {};
  }

  // Writes the pending entries of `level` as one interior manifest.
  Status flush(size_t level) {
    if (level >= kMaxManifestHeight) {
      return make_error(Errc::internal,
                        "manifest tree exceeds height " + std::to_string(kMaxManifestHeight));
    }
    Manifest node;
    node.kind = ManifestKind::interior;
    node.height = static_cast<uint8_t>(level);
    node.entries = std::move(levels_[level]);
    levels_[level].clear();
    uint64_t total = 0;
    for (const ManifestEntry& e : node.entries) total += e.length;
    auto id = emit(node.serialize(), true);
    if (!id) return tl::unexpected(id.error());
    ++summary_.manifest_blobs;
    return add_entry(level + 1, ManifestEntry{*id, total});
  }

  Result<BlobId> emit(ByteSpan payload, bool is_manifest) {
    CAIRN_TRY_STATUS(encode_and_commit_into(codec_, payload, scratch_));
    CAIRN_TRY_STATUS(sink_(BlobPiece{scratch_, payload, is_manifest}));
    return scratch_.commitment.id;
  }

  const Codec& codec_;
  const BlobSink& sink_;
  const size_t root_capacity_;
  const size_t interior_capacity_;
  CommittedBlob scratch_;  // reused for every blob
  std::vector<std::vector<ManifestEntry>> levels_;
  FileSummary summary_;
};

// Streams the zstd frame of `content` into blob-sized pieces. Calling
// ZSTD_compressStream2 with ZSTD_e_end and the whole input from the first
// call yields exactly ZSTD_compress2's output (tested), without holding the
// compressed file in memory.
Result<uint64_t> add_compressed(ByteSpan content, uint32_t blob_size, FileEncoder& encoder) {
  auto cctx = pinned_cctx();
  if (!cctx) return tl::unexpected(cctx.error());
  Bytes buffer(blob_size);
  ZSTD_inBuffer in{content.data(), content.size(), 0};
  ZSTD_outBuffer out{buffer.data(), buffer.size(), 0};
  uint64_t stored = 0;
  for (;;) {
    const size_t left = ZSTD_compressStream2(cctx->get(), &out, &in, ZSTD_e_end);
    if (ZSTD_isError(left)) return zstd_error("compress", left);
    if (out.pos == out.size || (left == 0 && out.pos > 0)) {
      CAIRN_TRY_STATUS(encoder.add_data(ByteSpan(buffer.data(), out.pos)));
      stored += out.pos;
      out.pos = 0;
    }
    if (left == 0) return stored;
  }
}

// ---------------------------------------------------------------------------
// Decoding.

class FileDecoder {
 public:
  FileDecoder(const Codec& codec, const BlobId& file_id, const BlobFetch& fetch,
              const ByteSink& out)
      : codec_(codec), file_id_(file_id), fetch_(fetch), out_(out) {}

  Result<FileSummary> run() {
    auto payload = fetch_checked(file_id_, "root manifest");
    if (!payload) return tl::unexpected(payload.error());
    if (payload->size() < kManifestMagic.size() ||
        !std::equal(kManifestMagic.begin(), kManifestMagic.end(), payload->begin())) {
      return make_error(Errc::invalid_argument,
                        "blob " + file_id_.hex() + " is not a cairn file manifest");
    }
    auto root = Manifest::parse(*payload);
    if (!root) {
      if (root.error().code == Errc::unsupported) return tl::unexpected(root.error());
      return corrupt("file " + file_id_.hex() + ": " + root.error().message);
    }
    if (root->kind != ManifestKind::root) {
      return make_error(Errc::invalid_argument,
                        "blob " + file_id_.hex() + " is an interior manifest, not a file id");
    }
    root_ = std::move(*root);
    summary_.id = file_id_;
    summary_.size = root_.file_size;
    summary_.stored_size = root_.stored_size;
    summary_.compression = root_.compression;
    summary_.sha256 = root_.sha256;
    summary_.manifest_blobs = 1;
    if (root_.compression == Compression::zstd) {
      dctx_.reset(ZSTD_createDCtx());
      if (!dctx_)
        return make_error(Errc::internal, "zstd: cannot allocate a decompression context");
      const size_t rc = ZSTD_DCtx_setParameter(dctx_.get(), ZSTD_d_windowLogMax, kZstdWindowLogMax);
      if (ZSTD_isError(rc)) return zstd_error("set parameter", rc);
      zbuf_.resize(ZSTD_DStreamOutSize());
    }
    CAIRN_TRY_STATUS(walk(root_));
    return finish();
  }

 private:
  // Fetches a blob and checks that its bytes commit to `id`.
  Result<Bytes> fetch_checked(const BlobId& id, const char* what) {
    auto payload = fetch_(id);
    if (!payload) {
      return tl::unexpected(
          with_context(payload.error(), std::string("fetching ") + what + " blob " + id.hex()));
    }
    if (payload->size() > codec_.params().blob_size) {
      return corrupt(std::string(what) + " blob " + id.hex() + ": fetched " +
                     std::to_string(payload->size()) + " bytes, more than blob_size");
    }
    CAIRN_TRY_STATUS(encode_and_commit_into(codec_, *payload, scratch_));
    if (scratch_.commitment.id != id) {
      return corrupt(std::string(what) + " blob " + id.hex() + ": fetched bytes commit to " +
                     scratch_.commitment.id.hex());
    }
    return payload;
  }

  Status walk(const Manifest& node) {
    for (const ManifestEntry& entry : node.entries) {
      if (node.height == 0) {
        CAIRN_TRY_STATUS(read_data(entry));
        continue;
      }
      auto payload = fetch_checked(entry.id, "manifest");
      if (!payload) return tl::unexpected(payload.error());
      auto child = Manifest::parse(*payload);
      if (!child) return corrupt("manifest blob " + entry.id.hex() + ": " + child.error().message);
      if (child->kind != ManifestKind::interior || child->height + 1 != node.height) {
        return corrupt("manifest blob " + entry.id.hex() +
                       ": expected an interior manifest of height " +
                       std::to_string(node.height - 1));
      }
      uint64_t total = 0;  // parse() ruled out overflow
      for (const ManifestEntry& e : child->entries) total += e.length;
      if (total != entry.length) {
        return corrupt("manifest blob " + entry.id.hex() + ": lists " + std::to_string(total) +
                       " bytes, its parent says " + std::to_string(entry.length));
      }
      ++summary_.manifest_blobs;
      CAIRN_TRY_STATUS(walk(*child));
    }
    return {};
  }

  Status read_data(const ManifestEntry& entry) {
    if (entry.length > codec_.params().blob_size) {
      return corrupt("file " + file_id_.hex() + ": data blob " + entry.id.hex() + " listed with " +
                     std::to_string(entry.length) + " bytes, more than blob_size");
    }
    auto payload = fetch_checked(entry.id, "data");
    if (!payload) return tl::unexpected(payload.error());
    if (payload->size() != entry.length) {
      return corrupt("data blob " + entry.id.hex() + ": " + std::to_string(payload->size()) +
                     " bytes, the manifest says " + std::to_string(entry.length));
    }
    ++summary_.data_blobs;
    if (root_.compression == Compression::none) return deliver(*payload);
    return inflate(*payload);
  }

  Status inflate(ByteSpan stored) {
    ZSTD_inBuffer in{stored.data(), stored.size(), 0};
    for (;;) {
      ZSTD_outBuffer out{zbuf_.data(), zbuf_.size(), 0};
      const size_t consumed_before = in.pos;
      const size_t rc = ZSTD_decompressStream(dctx_.get(), &out, &in);
      if (ZSTD_isError(rc)) {
        return corrupt("file " + file_id_.hex() + ": zstd stream: " + ZSTD_getErrorName(rc));
      }
      // 0 means a frame just ended. A call that only finds the output drained
      // returns the next frame's header size instead: it must not undo that.
      if (in.pos != consumed_before || out.pos > 0) frame_pending_ = rc != 0;
      if (out.pos > 0) CAIRN_TRY_STATUS(deliver(ByteSpan(zbuf_.data(), out.pos)));
      if (in.pos == in.size && out.pos < out.size) return {};
    }
  }

  Status deliver(ByteSpan bytes) {
    if (bytes.size() > root_.file_size - written_) {
      return corrupt("file " + file_id_.hex() + ": rebuilds to more than its " +
                     std::to_string(root_.file_size) + " bytes");
    }
    written_ += bytes.size();
    hasher_.update(bytes);
    return out_(bytes);
  }

  Result<FileSummary> finish() {
    if (root_.compression == Compression::zstd && frame_pending_) {
      return corrupt("file " + file_id_.hex() + ": zstd stream ends mid-frame");
    }
    if (written_ != root_.file_size) {
      return corrupt("file " + file_id_.hex() + ": rebuilt " + std::to_string(written_) +
                     " bytes, the manifest says " + std::to_string(root_.file_size));
    }
    const Hash32 digest = hasher_.finish();
    if (digest != root_.sha256) {
      return corrupt("file " + file_id_.hex() + ": SHA-256 of the rebuilt bytes is " +
                     to_hex(digest) + ", the manifest says " + to_hex(root_.sha256));
    }
    return summary_;
  }

  const Codec& codec_;
  const BlobId file_id_;
  const BlobFetch& fetch_;
  const ByteSink& out_;
  Manifest root_;
  CommittedBlob scratch_;
  Sha256 hasher_;
  uint64_t written_ = 0;
  DCtx dctx_;
  Bytes zbuf_;
  bool frame_pending_ = true;
  FileSummary summary_;
};

}  // namespace

size_t manifest_capacity(uint32_t blob_size, ManifestKind kind) noexcept {
  const size_t header =
      kind == ManifestKind::root ? kManifestRootHeaderBytes : kManifestInteriorHeaderBytes;
  return blob_size < header ? 0 : (blob_size - header) / kManifestEntryBytes;
}

Bytes Manifest::serialize() const {
  Bytes out;
  const bool root = kind == ManifestKind::root;
  out.reserve((root ? kManifestRootHeaderBytes : kManifestInteriorHeaderBytes) +
              entries.size() * kManifestEntryBytes);
  append(out, kManifestMagic);
  out.push_back(kManifestVersion);
  out.push_back(static_cast<uint8_t>(kind));
  out.push_back(height);
  out.push_back(0);  // reserved
  if (root) {
    append_be<uint64_t>(out, file_size);
    append_be<uint64_t>(out, stored_size);
    out.push_back(static_cast<uint8_t>(compression));
    out.insert(out.end(), 3, 0);  // reserved
    append(out, sha256);
  }
  append_be<uint32_t>(out, static_cast<uint32_t>(entries.size()));
  for (const ManifestEntry& e : entries) {
    append(out, e.id.bytes);
    append_be<uint64_t>(out, e.length);
  }
  return out;
}

Result<Manifest> Manifest::parse(ByteSpan data) noexcept {
  ByteReader r(data);
  std::array<uint8_t, 4> magic{};
  uint8_t version = 0, kind = 0, height = 0, reserved = 0;
  if (!r.read(magic) || !r.read_be(version) || !r.read_be(kind) || !r.read_be(height) ||
      !r.read_be(reserved)) {
    return malformed("truncated header");
  }
  if (magic != kManifestMagic) return malformed("bad magic (not a cairn manifest)");
  if (version != kManifestVersion) {
    return make_error(Errc::unsupported, "manifest: version " + std::to_string(version) +
                                             " (this build reads version " +
                                             std::to_string(kManifestVersion) + ")");
  }
  if (kind > static_cast<uint8_t>(ManifestKind::interior)) {
    return malformed("unknown kind " + std::to_string(kind));
  }
  if (height > kMaxManifestHeight) {
    return malformed("height " + std::to_string(height) + " exceeds " +
                     std::to_string(kMaxManifestHeight));
  }
  if (reserved != 0) return malformed("reserved header byte is not zero");
  Manifest m;
  m.kind = static_cast<ManifestKind>(kind);
  m.height = height;
  const bool root = m.kind == ManifestKind::root;
  if (root) {
    uint8_t compression = 0;
    std::array<uint8_t, 3> pad{};
    if (!r.read_be(m.file_size) || !r.read_be(m.stored_size) || !r.read_be(compression) ||
        !r.read(pad) || !r.read(m.sha256)) {
      return malformed("truncated root header");
    }
    if (compression > static_cast<uint8_t>(Compression::zstd)) {
      return malformed("unknown compression " + std::to_string(compression));
    }
    if (pad != std::array<uint8_t, 3>{}) return malformed("reserved root bytes are not zero");
    m.compression = static_cast<Compression>(compression);
  }
  uint32_t count = 0;
  if (!r.read_be(count)) return malformed("truncated entry count");
  // The count must match the bytes present exactly; this bounds the
  // allocation below by the input size.
  if (uint64_t{count} * kManifestEntryBytes != r.remaining()) {
    return malformed(std::to_string(count) + " entries need " +
                     std::to_string(uint64_t{count} * kManifestEntryBytes) + " bytes, " +
                     std::to_string(r.remaining()) + " present");
  }
  if (count == 0 && (!root || height > 0)) return malformed("a manifest node with no entries");
  m.entries.resize(count);
  uint64_t total = 0;
  for (uint32_t i = 0; i < count; ++i) {
    ManifestEntry& e = m.entries[i];
    r.read(e.id.bytes);
    r.read_be(e.length);
    if (e.length == 0) return malformed("entry " + std::to_string(i) + " has length 0");
    if (add_overflows(total, e.length, total)) return malformed("entry lengths overflow 64 bits");
  }
  if (root) {
    if (total != m.stored_size) {
      return malformed("entries hold " + std::to_string(total) + " bytes, stored_size is " +
                       std::to_string(m.stored_size));
    }
    if (m.compression == Compression::none && m.stored_size != m.file_size) {
      return malformed("uncompressed, yet stored_size " + std::to_string(m.stored_size) +
                       " differs from file_size " + std::to_string(m.file_size));
    }
    if (m.compression == Compression::zstd && m.stored_size == 0) {
      return malformed("zstd compression with an empty stream");
    }
  }
  return m;
}

Result<FileSummary> encode_file(const Codec& codec, ByteSpan content, const FileOptions& options,
                                const BlobSink& sink) {
  const uint32_t blob_size = codec.params().blob_size;
  if (blob_size < kMinFileBlobSize) {
    return make_error(Errc::invalid_argument,
                      "files need blob_size >= " + std::to_string(kMinFileBlobSize) + ", have " +
                          std::to_string(blob_size));
  }
  auto compress = should_compress(content, options.compress);
  if (!compress) return tl::unexpected(compress.error());

  FileEncoder encoder(codec, sink);
  Manifest root;
  root.file_size = content.size();
  root.sha256 = sha256(content);
  if (*compress) {
    root.compression = Compression::zstd;
    auto stored = add_compressed(content, blob_size, encoder);
    if (!stored) return tl::unexpected(stored.error());
    root.stored_size = *stored;
  } else {
    for (size_t off = 0; off < content.size(); off += blob_size) {
      CAIRN_TRY_STATUS(encoder.add_data(
          content.subspan(off, std::min<size_t>(blob_size, content.size() - off))));
    }
    root.stored_size = content.size();
  }
  return encoder.finish(std::move(root));
}

Result<FileSummary> decode_file(const Codec& codec, const BlobId& file_id, const BlobFetch& fetch,
                                const ByteSink& out) {
  FileDecoder decoder(codec, file_id, fetch, out);
  return decoder.run();
}

}  // namespace cairn::erasure
