#include "cairn/shards/ingest.hpp"

#include <string>
#include <vector>

#include "records.hpp"

namespace cairn::shards {
namespace {

Status check_codec(const Store& store, const erasure::Codec& codec) {
  if (!records::same_geometry(store.params(), codec.params())) {
    return make_error(Errc::invalid_argument,
                      "codec geometry (" + records::describe_geometry(codec.params()) +
                          ") differs from store " + store.path().string() + " (" +
                          records::describe_geometry(store.params()) + ")");
  }
  return {};
}

// Stores `blob` at `index`, applying `transform` to its replica in place.
Result<IngestResult> store_committed(Store& store, BlobIndex index, erasure::CommittedBlob& blob,
                                     const ReplicaTransform* transform) {
  const erasure::NetworkParams& p = store.params();
  const erasure::EncodedBlob& enc = blob.encoded;
  if (enc.fragments != p.total_fragments() || enc.fragment_size != p.fragment_size() ||
      enc.data.size() != size_t{enc.fragments} * enc.fragment_size ||
      blob.commitment.fragment_roots.size() != enc.fragments) {
    return make_error(
        Errc::invalid_argument,
        "ingesting " + blob_context(index) + ": encoded blob has " + std::to_string(enc.fragments) +
            " fragments of " + std::to_string(enc.fragment_size) + " bytes and " +
            std::to_string(blob.commitment.fragment_roots.size()) + " roots; the store expects " +
            std::to_string(p.total_fragments()) + " of " + std::to_string(p.fragment_size()));
  }
  if (transform != nullptr && transform->encoding() == FragmentEncoding::plain) {
    return make_error(Errc::invalid_argument,
                      "ingesting " + blob_context(index) +
                          ": a replica transform must name a non-plain encoding");
  }

  BlobRecord record;
  record.id = blob.commitment.id;
  record.index = index;
  record.length = enc.length;
  record.fragment_size = enc.fragment_size;
  record.data_fragments = static_cast<uint8_t>(p.data_fragments);
  record.encoding = transform != nullptr ? transform->encoding() : FragmentEncoding::plain;
  record.fragment_roots = blob.commitment.fragment_roots;

  if (transform != nullptr) transform->to_stored(record.id, index, blob.encoded.data);
  std::vector<ByteSpan> fragments;
  fragments.reserve(enc.fragments);
  for (uint32_t f = 0; f < enc.fragments; ++f) fragments.push_back(enc.fragment(f));
  auto outcome = store.put_blob(record, fragments);
  if (!outcome) return tl::unexpected(outcome.error());
  return IngestResult{std::move(record), *outcome};
}

}  // namespace

Result<IngestResult> ingest_payload(Store& store, const erasure::Codec& codec, BlobIndex index,
                                    ByteSpan payload, const ReplicaTransform* transform) {
  CAIRN_TRY_STATUS(check_codec(store, codec));
  // One encode buffer per thread (a worker ingests blob after blob): no
  // 192 KiB allocation and page faults per blob.
  thread_local erasure::CommittedBlob scratch;
  auto encoded = erasure::encode_and_commit_into(codec, payload, scratch);
  if (!encoded)
    return tl::unexpected(with_context(encoded.error(), "ingesting " + blob_context(index)));
  return store_committed(store, index, scratch, transform);
}

Result<IngestResult> ingest_committed(Store& store, BlobIndex index, erasure::CommittedBlob blob,
                                      const ReplicaTransform* transform) {
  return store_committed(store, index, blob, transform);
}

Result<Bytes> read_payload(const Store& store, const erasure::Codec& codec, BlobIndex index,
                           const ReplicaTransform* transform) {
  CAIRN_TRY_STATUS(check_codec(store, codec));
  auto record = store.get_blob_at(index);
  if (!record) return tl::unexpected(record.error());
  if (record->encoding != FragmentEncoding::plain &&
      (transform == nullptr || transform->encoding() != record->encoding)) {
    return make_error(Errc::invalid_argument, "reading " + blob_context(index) +
                                                  ": its fragments are stored sealed; "
                                                  "a matching transform is needed to read them");
  }
  if (erasure::commitment_from_roots(record->fragment_roots) != record->id) {
    return make_error(Errc::corruption,
                      "reading " + blob_context(index) + " from store " + store.path().string() +
                          ": fragment roots do not commit to blob id " + record->id.hex());
  }

  const uint32_t k = record->data_fragments;
  const uint32_t n = record->total_fragments();
  const uint32_t chunk = store.params().chunk_size;
  const bool stored_plain = record->encoding == FragmentEncoding::plain;
  std::vector<Bytes> good;
  std::vector<uint32_t> good_index;
  std::string problems;
  // Reads fragments from `from` on until `want` load; returns where it stopped.
  const auto load = [&](uint32_t from, size_t want, std::vector<Bytes>& out,
                        std::vector<uint32_t>& out_index) {
    uint32_t f = from;
    for (; f < n && out.size() < want; ++f) {
      auto bytes = store.get_fragment(index, FragmentIndex{static_cast<uint8_t>(f)});
      if (!bytes) {
        problems += "; fragment " + std::to_string(f) + ": " + bytes.error().to_string();
        continue;
      }
      out.push_back(std::move(*bytes));
      out_index.push_back(f);
    }
    return f;
  };
  // Unseals (when sealed) and keeps the fragments that match their roots.
  const auto check = [&](std::vector<Bytes>& loaded, std::vector<uint32_t>& loaded_index) {
    if (!stored_plain) {
      std::vector<StoredFragment> slots;
      for (size_t i = 0; i < loaded.size(); ++i) {
        slots.push_back(
            StoredFragment{FragmentIndex{static_cast<uint8_t>(loaded_index[i])}, loaded[i]});
      }
      transform->from_stored(record->id, index, slots);
    }
    for (size_t i = 0; i < loaded.size(); ++i) {
      if (erasure::fragment_root(loaded[i], chunk) != record->fragment_roots[loaded_index[i]]) {
        problems +=
            "; fragment " + std::to_string(loaded_index[i]) + ": does not match its fragment root";
        continue;
      }
      good.push_back(std::move(loaded[i]));
      good_index.push_back(loaded_index[i]);
    }
  };
  // Data fragments first (when they are all good, decoding is a copy); each
  // further round loads as many more as are still missing, so a sealed blob
  // needs one unseal per round, and one round when nothing is damaged.
  uint32_t next = 0;
  while (good.size() < k && next < n) {
    std::vector<Bytes> loaded;
    std::vector<uint32_t> loaded_index;
    next = load(next, k - good.size(), loaded, loaded_index);
    check(loaded, loaded_index);
  }
  if (good.size() < k) {
    return make_error(Errc::corruption,
                      "reading " + blob_context(index) + " (blob " + record->id.hex() +
                          ") from store " + store.path().string() + ": only " +
                          std::to_string(good.size()) + " of the " + std::to_string(k) +
                          " needed fragments are good" + problems);
  }
  std::vector<erasure::FragmentRef> refs;
  refs.reserve(good.size());
  for (size_t i = 0; i < good.size(); ++i)
    refs.push_back(erasure::FragmentRef{good_index[i], good[i]});
  auto payload = codec.decode(refs, record->length);
  if (!payload)
    return tl::unexpected(with_context(payload.error(), "reading " + blob_context(index)));
  return payload;
}

}  // namespace cairn::shards
