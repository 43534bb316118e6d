#include "records.hpp"

namespace cairn::shards::records {
namespace {

tl::unexpected<Error> corrupt(const std::string& what, const std::string& why) {
  return make_error(Errc::corruption, what + ": " + why);
}

// Fixed part of a blob record: id, length, fragment_size, k, n, encoding.
constexpr size_t kBlobRecordFixed = 32 + 4 + 4 + 1 + 1 + 1;

}  // namespace

Bytes encode_blob_record(const BlobRecord& r) {
  Bytes out;
  out.reserve(kBlobRecordFixed + 32 * r.fragment_roots.size());
  append(out, r.id.span());
  append_be<uint32_t>(out, r.length);
  append_be<uint32_t>(out, r.fragment_size);
  out.push_back(r.data_fragments);
  out.push_back(static_cast<uint8_t>(r.fragment_roots.size()));
  out.push_back(static_cast<uint8_t>(r.encoding));
  for (const auto& root : r.fragment_roots) append(out, root);
  return out;
}

Result<BlobRecord> decode_blob_record(ByteSpan payload, BlobIndex index,
                                      const std::string& what) noexcept {
  ByteReader in(payload);
  BlobRecord r;
  r.index = index;
  uint8_t n = 0, encoding = 0;
  if (!in.read(r.id.bytes) || !in.read_be(r.length) || !in.read_be(r.fragment_size) ||
      !in.read_be(r.data_fragments) || !in.read_be(n) || !in.read_be(encoding)) {
    return corrupt(what, "blob record truncated");
  }
  if (n == 0 || r.data_fragments == 0 || r.data_fragments > n) {
    return corrupt(what, "blob record names k=" + std::to_string(r.data_fragments) +
                             " of n=" + std::to_string(n) + " fragments");
  }
  if (in.remaining() != size_t{32} * n) {
    return corrupt(what, "blob record has " + std::to_string(in.remaining()) +
                             " bytes of fragment roots, expected " + std::to_string(32 * n));
  }
  if (encoding > static_cast<uint8_t>(FragmentEncoding::sealed)) {
    return make_error(Errc::unsupported,
                      what + ": unknown fragment encoding " + std::to_string(encoding));
  }
  r.encoding = static_cast<FragmentEncoding>(encoding);
  r.fragment_roots.resize(n);
  for (auto& root : r.fragment_roots) in.read(root);
  return r;
}

Bytes encode_pending(const PendingUpload& p) {
  Bytes out;
  out.reserve(8 + p.payload.size());
  append_be<uint64_t>(out, p.created_at_ms);
  append(out, p.payload);
  return out;
}

Result<PendingUpload> decode_pending(ByteSpan payload, const std::string& what) noexcept {
  ByteReader in(payload);
  PendingUpload p;
  if (!in.read_be(p.created_at_ms)) return corrupt(what, "pending upload truncated");
  ByteSpan rest;
  in.view(in.remaining(), rest);
  p.payload.assign(rest.begin(), rest.end());
  return p;
}

Bytes encode_sync_cursor(const SyncCursor& c) {
  Bytes out;
  append_be<uint64_t>(out, c.next.value);
  append_be<uint64_t>(out, c.updated_at_ms);
  return out;
}

Result<SyncCursor> decode_sync_cursor(ByteSpan payload, const std::string& what) noexcept {
  ByteReader in(payload);
  SyncCursor c;
  if (!in.read_be(c.next.value) || !in.read_be(c.updated_at_ms) || !in.done()) {
    return corrupt(what,
                   "sync cursor is " + std::to_string(payload.size()) + " bytes, expected 16");
  }
  return c;
}

Bytes encode_geometry(const erasure::NetworkParams& p) {
  Bytes out;
  append_be<uint32_t>(out, p.blob_size);
  append_be<uint32_t>(out, p.data_fragments);
  append_be<uint32_t>(out, p.parity_fragments);
  append_be<uint32_t>(out, p.chunk_size);
  append_be<uint64_t>(out, p.blobs_per_shard);
  return out;
}

Result<erasure::NetworkParams> decode_geometry(ByteSpan payload, const std::string& what) noexcept {
  ByteReader in(payload);
  erasure::NetworkParams p;
  if (!in.read_be(p.blob_size) || !in.read_be(p.data_fragments) ||
      !in.read_be(p.parity_fragments) || !in.read_be(p.chunk_size) ||
      !in.read_be(p.blobs_per_shard) || !in.done()) {
    return corrupt(what, "network geometry record is " + std::to_string(payload.size()) +
                             " bytes, expected 24");
  }
  return p;
}

std::string describe_geometry(const erasure::NetworkParams& p) {
  return "blob_size " + std::to_string(p.blob_size) + ", k " + std::to_string(p.data_fragments) +
         ", m " + std::to_string(p.parity_fragments) + ", chunk_size " +
         std::to_string(p.chunk_size) + ", blobs_per_shard " + std::to_string(p.blobs_per_shard);
}

bool same_geometry(const erasure::NetworkParams& a, const erasure::NetworkParams& b) noexcept {
  return a.blob_size == b.blob_size && a.data_fragments == b.data_fragments &&
         a.parity_fragments == b.parity_fragments && a.chunk_size == b.chunk_size &&
         a.blobs_per_shard == b.blobs_per_shard;
}

}  // namespace cairn::shards::records
