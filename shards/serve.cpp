#include "cairn/shards/serve.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "cairn/erasure/commitment.hpp"

namespace cairn::shards {
namespace {

std::string context(const FragmentRequest& r) {
  return "serving fragments of blob " + r.id.hex() + " at index " + std::to_string(r.index.value);
}

}  // namespace

Result<FragmentReply> serve_fragments(const Store& store, const FragmentRequest& request,
                                      const ReplicaTransform* transform) {
  const uint32_t n = store.params().total_fragments();
  const uint32_t chunk = store.params().chunk_size;
  if (request.at_least > n || request.fragments.size() > n) {
    return make_error(Errc::invalid_argument, context(request) + ": asks for more than the " +
                                                  std::to_string(n) + " fragments a blob has");
  }
  if (request.fragments.empty() && request.at_least == 0) {
    return make_error(Errc::invalid_argument, context(request) + ": asks for no fragment");
  }
  std::vector<bool> asked(n, false);
  for (FragmentIndex f : request.fragments) {
    if (f.value >= n || asked[f.value]) {
      return make_error(Errc::invalid_argument,
                        context(request) + ": fragment " + std::to_string(f.value) +
                            (f.value >= n ? " does not exist" : " asked twice"));
    }
    asked[f.value] = true;
  }

  auto record = store.get_blob_at(request.index);
  if (!record) {
    if (record.error().code == Errc::not_found) {
      return make_error(Errc::not_found, context(request) + ": not stored here");
    }
    return tl::unexpected(with_context(record.error(), context(request)));
  }
  if (record->id != request.id) {
    return make_error(Errc::not_found, context(request) + ": this node holds blob " +
                                           record->id.hex() + " at that index");
  }
  if (record->encoding != FragmentEncoding::plain &&
      (transform == nullptr || transform->encoding() != record->encoding)) {
    return make_error(
        Errc::invalid_argument,
        context(request) + ": fragments are stored sealed and no matching transform was given");
  }
  if (erasure::commitment_from_roots(record->fragment_roots) != record->id) {
    return make_error(Errc::corruption,
                      context(request) + ": stored fragment roots do not commit to the id");
  }

  // The order in which fragments are tried: the requested ones, then (only
  // when substitutes may be needed) the others, lowest index first.
  std::vector<uint32_t> order;
  order.reserve(n);
  for (FragmentIndex f : request.fragments) order.push_back(f.value);
  if (request.at_least > 0) {
    for (uint32_t f = 0; f < n; ++f) {
      if (!asked[f]) order.push_back(f);
    }
  }
  const size_t want = std::max<size_t>(request.fragments.size(), request.at_least);
  const size_t fragment_size = record->fragment_size;

  FragmentReply reply;
  reply.fragment_roots = record->fragment_roots;
  reply.data.reserve(want * fragment_size);
  std::string problems;
  size_t next = 0;
  // Rounds: load as many as are still wanted, unseal them together (one
  // mask), keep the good ones; a bad one makes the next round try the next
  // candidate in `order`.
  while (reply.fragments.size() < want && next < order.size()) {
    const size_t base = reply.data.size();
    std::vector<uint32_t> loaded;
    while (reply.fragments.size() + loaded.size() < want && next < order.size()) {
      const uint32_t f = order[next++];
      auto bytes = store.get_fragment(request.index, FragmentIndex{static_cast<uint8_t>(f)});
      if (!bytes || bytes->size() != fragment_size) {
        problems += "; fragment " + std::to_string(f) +
                    (bytes ? std::string(": wrong size") : ": " + bytes.error().to_string());
        continue;
      }
      reply.data.insert(reply.data.end(), bytes->begin(), bytes->end());
      loaded.push_back(f);
    }
    if (record->encoding != FragmentEncoding::plain && !loaded.empty()) {
      std::vector<StoredFragment> slots;
      slots.reserve(loaded.size());
      for (size_t i = 0; i < loaded.size(); ++i) {
        slots.push_back(StoredFragment{
            FragmentIndex{static_cast<uint8_t>(loaded[i])},
            MutableByteSpan(reply.data).subspan(base + i * fragment_size, fragment_size)});
      }
      transform->from_stored(record->id, request.index, slots);
    }
    // Compact: keep good fragments in place, drop bad ones.
    size_t write = base;
    for (size_t i = 0; i < loaded.size(); ++i) {
      const ByteSpan slice = ByteSpan(reply.data).subspan(base + i * fragment_size, fragment_size);
      if (erasure::fragment_root(slice, chunk) != record->fragment_roots[loaded[i]]) {
        problems += "; fragment " + std::to_string(loaded[i]) + ": does not match its root";
        continue;
      }
      if (write != base + i * fragment_size) {
        std::copy(slice.begin(), slice.end(),
                  reply.data.begin() + static_cast<std::ptrdiff_t>(write));
      }
      write += fragment_size;
      reply.fragments.push_back(FragmentIndex{static_cast<uint8_t>(loaded[i])});
    }
    reply.data.resize(write);
  }
  const size_t needed = std::max<size_t>(request.at_least, 1);
  if (reply.fragments.size() < needed) {
    return make_error(Errc::corruption,
                      context(request) + ": only " + std::to_string(reply.fragments.size()) +
                          " good fragments, " + std::to_string(needed) + " needed" + problems);
  }
  return reply;
}

Result<erasure::CommittedBlob> verify_fetched(const erasure::Codec& codec,
                                              const RegisteredBlob& expected, FragmentReply reply) {
  const erasure::NetworkParams& p = codec.params();
  const uint32_t n = p.total_fragments();
  const uint32_t k = p.data_fragments;
  const size_t fs = p.fragment_size();
  const auto bad = [&](const std::string& why) {
    return make_error(Errc::verification_failed, "blob " + expected.id.hex() + " at index " +
                                                     std::to_string(expected.index.value) + ": " +
                                                     why);
  };
  if (expected.length > p.blob_size) {
    return make_error(Errc::invalid_argument, "blob " + expected.id.hex() + ": registered length " +
                                                  std::to_string(expected.length) +
                                                  " exceeds blob_size");
  }
  if (reply.data.size() != reply.fragments.size() * fs) {
    return bad("reply carries " + std::to_string(reply.data.size()) + " bytes for " +
               std::to_string(reply.fragments.size()) + " fragments of " + std::to_string(fs));
  }
  // Where each fragment sits in the reply (-1: absent); the first k distinct
  // ones are used.
  std::vector<int> slot(n, -1);
  uint32_t have = 0;
  for (size_t i = 0; i < reply.fragments.size(); ++i) {
    const uint32_t f = reply.fragments[i].value;
    if (f >= n || slot[f] >= 0)
      return bad("reply names fragment " + std::to_string(f) + " twice or out of range");
    slot[f] = static_cast<int>(i);
    ++have;
  }
  if (have < k) {
    // Not a lie: the peer may have lost fragments itself.
    return make_error(Errc::too_many_losses, "blob " + expected.id.hex() + " at index " +
                                                 std::to_string(expected.index.value) +
                                                 ": reply carries " + std::to_string(have) +
                                                 " fragments; " + std::to_string(k) +
                                                 " are needed");
  }

  erasure::CommittedBlob out;
  erasure::EncodedBlob& blob = out.encoded;
  blob.fragment_size = static_cast<uint32_t>(fs);
  blob.fragments = n;
  blob.length = expected.length;
  bool data_in_order = true;
  for (uint32_t f = 0; f < k; ++f) data_in_order = data_in_order && slot[f] == static_cast<int>(f);
  if (data_in_order) {
    // The common case: fragments 0..k-1 lead the reply. Its buffer becomes the blob's.
    blob.data = std::move(reply.data);
    blob.data.resize(size_t{n} * fs);
  } else {
    std::vector<erasure::FragmentRef> refs;
    std::vector<uint32_t> missing;
    for (uint32_t f = 0; f < n && refs.size() < k; ++f) {
      if (slot[f] >= 0) {
        refs.push_back(
            erasure::FragmentRef{f, ByteSpan(reply.data).subspan(size_t(slot[f]) * fs, fs)});
      }
    }
    for (uint32_t f = 0; f < k; ++f) {
      if (slot[f] < 0) missing.push_back(f);
    }
    auto rebuilt = codec.reconstruct(refs, missing);
    if (!rebuilt) return bad("rebuilding data fragments: " + rebuilt.error().to_string());
    blob.data.assign(size_t{n} * fs, 0);
    size_t next_rebuilt = 0;
    for (uint32_t f = 0; f < k; ++f) {
      const uint8_t* src = slot[f] >= 0 ? reply.data.data() + size_t(slot[f]) * fs
                                        : rebuilt->data() + (next_rebuilt++) * fs;
      std::copy(src, src + fs, blob.data.begin() + static_cast<std::ptrdiff_t>(size_t{f} * fs));
    }
  }
  const ByteSpan padding =
      ByteSpan(blob.data).subspan(expected.length, size_t{k} * fs - expected.length);
  if (std::any_of(padding.begin(), padding.end(), [](uint8_t b) { return b != 0; })) {
    return bad("non-zero bytes after the registered length " + std::to_string(expected.length));
  }
  auto parity = codec.encode_parity(blob);
  if (!parity)
    return tl::unexpected(
        with_context(parity.error(), "re-encoding parity of blob " + expected.id.hex()));
  erasure::commit_into(blob, p.chunk_size, out.commitment);
  if (out.commitment.id != expected.id) {
    return bad("fragments commit to " + out.commitment.id.hex() + ", not to the registered id");
  }
  return out;
}

}  // namespace cairn::shards
