#include "cairn/erasure/codec.hpp"

#include <isa-l/erasure_code.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "commitment/sha256_batch.hpp"

namespace cairn::erasure {
namespace {

constexpr uint32_t kMaxFragments = 255;  // GF(2^8): at most 255 distinct rows

// An erasure pattern: which fragments decode reads (sources) and which it
// rebuilds (targets), one bit per fragment index.
struct PatternKey {
  std::array<uint64_t, 4> sources{};
  std::array<uint64_t, 4> targets{};
  bool operator==(const PatternKey&) const = default;

  static void set(std::array<uint64_t, 4>& bits, uint32_t i) {
    bits[i / 64] |= uint64_t{1} << (i % 64);
  }
};

struct PatternKeyHash {
  size_t operator()(const PatternKey& k) const noexcept {
    uint64_t h = 0xcbf29ce484222325ULL;
    auto mix = [&h](uint64_t w) { h ^= w + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
    for (uint64_t w : k.sources) mix(w);
    for (uint64_t w : k.targets) mix(w);
    return static_cast<size_t>(h);
  }
};

using Tables = std::shared_ptr<const std::vector<uint8_t>>;

// Least-recently-used cache of ISA-L decode tables, bounded in bytes.
// Thread-safe; lookups hand out shared_ptrs so an evicted entry stays alive
// for a decode that is still using it.
class DecodeCache {
 public:
  explicit DecodeCache(size_t capacity) : capacity_(capacity) {}

  Tables find(const PatternKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) {
      ++misses_;
      return nullptr;
    }
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }

  void insert(const PatternKey& key, Tables tables) {
    const size_t cost = entry_cost(*tables);
    if (cost > capacity_) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (index_.count(key) != 0) return;  // another thread computed it first
    while (bytes_ + cost > capacity_ && !lru_.empty()) {
      bytes_ -= entry_cost(*lru_.back().second);
      index_.erase(lru_.back().first);
      lru_.pop_back();
    }
    lru_.emplace_front(key, std::move(tables));
    index_.emplace(key, lru_.begin());
    bytes_ += cost;
  }

  void fill(CodecStats& s) const {
    std::lock_guard<std::mutex> lock(mu_);
    s.cache_hits = hits_;
    s.cache_misses = misses_;
    s.cache_entries = lru_.size();
    s.cache_bytes = bytes_;
    s.cache_capacity = capacity_;
  }

 private:
  // Table bytes plus the list node, map node and key it takes to hold them.
  static size_t entry_cost(const std::vector<uint8_t>& t) { return t.size() + 160; }

  mutable std::mutex mu_;
  std::list<std::pair<PatternKey, Tables>> lru_;  // most recently used first
  std::unordered_map<PatternKey, std::list<std::pair<PatternKey, Tables>>::iterator, PatternKeyHash>
      index_;
  size_t bytes_ = 0;
  const size_t capacity_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

tl::unexpected<Error> codec_invalid(std::string message) {
  return make_error(Errc::invalid_argument, "erasure codec: " + std::move(message));
}

// ISA-L takes non-const pointers for read-only inputs.
uint8_t* writable(const uint8_t* p) { return const_cast<uint8_t*>(p); }

class IsalCodec final : public Codec {
 public:
  explicit IsalCodec(const NetworkParams& params)
      : params_(params),
        k_(params.data_fragments),
        m_(params.parity_fragments),
        n_(params.total_fragments()),
        fragment_size_(params.fragment_size()),
        matrix_(size_t{n_} * k_),
        encode_tables_(size_t{32} * k_ * m_),
        cache_(kDecodeCacheBytes) {
    gf_gen_cauchy1_matrix(matrix_.data(), static_cast<int>(n_), static_cast<int>(k_));
    if (m_ > 0) {
      ec_init_tables(static_cast<int>(k_), static_cast<int>(m_), &matrix_[size_t{k_} * k_],
                     encode_tables_.data());
    }
  }

  const NetworkParams& params() const noexcept override { return params_; }

  Result<EncodedBlob> encode(ByteSpan payload) const override {
    EncodedBlob out;
    CAIRN_TRY_STATUS(encode_into(payload, out));
    return out;
  }

  Status encode_into(ByteSpan payload, EncodedBlob& out) const override {
    if (payload.size() > params_.blob_size) {
      return codec_invalid("payload of " + std::to_string(payload.size()) +
                           " bytes exceeds blob_size " + std::to_string(params_.blob_size));
    }
    const size_t data_bytes = size_t{k_} * fragment_size_;
    out.data.resize(size_t{n_} * fragment_size_);
    out.fragment_size = fragment_size_;
    out.fragments = n_;
    out.length = static_cast<uint32_t>(payload.size());
    if (!payload.empty()) std::memcpy(out.data.data(), payload.data(), payload.size());
    std::memset(out.data.data() + payload.size(), 0, data_bytes - payload.size());
    return encode_parity(out);
  }

  Status encode_parity(EncodedBlob& blob) const override {
    if (blob.fragments != n_ || blob.fragment_size != fragment_size_ ||
        blob.data.size() != size_t{n_} * fragment_size_) {
      return codec_invalid("blob has " + std::to_string(blob.fragments) + " fragments of " +
                           std::to_string(blob.fragment_size) + " bytes (" +
                           std::to_string(blob.data.size()) + " total), expected " +
                           std::to_string(n_) + " of " + std::to_string(fragment_size_));
    }
    if (m_ == 0) return {};
    std::array<uint8_t*, kMaxFragments> ptrs{};
    for (uint32_t i = 0; i < n_; ++i) ptrs[i] = blob.fragment(i).data();
    ec_encode_data(static_cast<int>(fragment_size_), static_cast<int>(k_), static_cast<int>(m_),
                   writable(encode_tables_.data()), ptrs.data(), ptrs.data() + k_);
    detail::clear_upper_vector_state();  // the commitment's SHA-256 runs next
    return {};
  }

  Result<Bytes> decode(std::span<const FragmentRef> available, uint32_t length) const override {
    if (length > params_.blob_size) {
      return codec_invalid("length " + std::to_string(length) + " exceeds blob_size " +
                           std::to_string(params_.blob_size));
    }
    Present present;
    CAIRN_TRY_STATUS(index_fragments(available, present));
    // Only the data fragments overlapping [0, length) matter.
    const uint32_t needed =
        static_cast<uint32_t>((uint64_t{length} + fragment_size_ - 1) / fragment_size_);
    Bytes out(size_t{needed} * fragment_size_);
    std::vector<uint32_t> targets;
    for (uint32_t i = 0; i < needed; ++i) {
      if (present[i] != nullptr) {
        std::memcpy(out.data() + size_t{i} * fragment_size_, present[i], fragment_size_);
      } else {
        targets.push_back(i);
      }
    }
    if (!targets.empty()) {
      std::vector<uint8_t*> outputs;
      for (uint32_t t : targets) outputs.push_back(out.data() + size_t{t} * fragment_size_);
      CAIRN_TRY_STATUS(rebuild(present, targets, outputs));
    }
    out.resize(length);
    return out;
  }

  Result<Bytes> reconstruct(std::span<const FragmentRef> available,
                            std::span<const uint32_t> wanted) const override {
    Present present;
    CAIRN_TRY_STATUS(index_fragments(available, present));
    std::array<bool, kMaxFragments> missing_wanted{};
    for (uint32_t w : wanted) {
      if (w >= n_) {
        return codec_invalid("wanted fragment " + std::to_string(w) + " is outside 0.." +
                             std::to_string(n_ - 1));
      }
      if (present[w] == nullptr) missing_wanted[w] = true;
    }
    std::vector<uint32_t> targets;
    for (uint32_t i = 0; i < n_; ++i) {
      if (missing_wanted[i]) targets.push_back(i);
    }
    // Rebuild each missing fragment once, then lay out in the caller's order.
    Bytes rebuilt(targets.size() * fragment_size_);
    std::array<const uint8_t*, kMaxFragments> source_of = present;
    if (!targets.empty()) {
      std::vector<uint8_t*> outputs;
      for (size_t j = 0; j < targets.size(); ++j) {
        outputs.push_back(rebuilt.data() + j * fragment_size_);
        source_of[targets[j]] = outputs.back();
      }
      CAIRN_TRY_STATUS(rebuild(present, targets, outputs));
    }
    Bytes out(wanted.size() * size_t{fragment_size_});
    for (size_t j = 0; j < wanted.size(); ++j) {
      std::memcpy(out.data() + j * fragment_size_, source_of[wanted[j]], fragment_size_);
    }
    return out;
  }

  CodecStats stats() const override {
    CodecStats s;
    cache_.fill(s);
    return s;
  }

 private:
  // present[i]: the bytes of fragment i, or nullptr when it was not given.
  using Present = std::array<const uint8_t*, kMaxFragments>;

  // Validates the given fragments and indexes them by fragment number.
  // too_many_losses when fewer than k distinct fragments are present.
  Status index_fragments(std::span<const FragmentRef> available, Present& present) const {
    present.fill(nullptr);
    uint32_t count = 0;
    for (const FragmentRef& f : available) {
      if (f.index >= n_) {
        return codec_invalid("fragment index " + std::to_string(f.index) + " is outside 0.." +
                             std::to_string(n_ - 1));
      }
      if (f.data.size() != fragment_size_) {
        return codec_invalid("fragment " + std::to_string(f.index) + " has " +
                             std::to_string(f.data.size()) + " bytes, expected " +
                             std::to_string(fragment_size_));
      }
      if (present[f.index] != nullptr) {
        return codec_invalid("fragment " + std::to_string(f.index) + " given twice");
      }
      present[f.index] = f.data.data();
      ++count;
    }
    if (count < k_) {
      return make_error(Errc::too_many_losses, "erasure codec: " + std::to_string(count) + " of " +
                                                   std::to_string(n_) + " fragments present, " +
                                                   std::to_string(k_) +
                                                   " needed to rebuild the blob");
    }
    return {};
  }

  // Computes `targets` (ascending, all absent from `present`) into `outputs`
  // from the k lowest-numbered present fragments (data fragments first: they
  // make the inverse cheapest and the pattern space smallest).
  Status rebuild(const Present& present, std::span<const uint32_t> targets,
                 std::span<uint8_t* const> outputs) const {
    std::array<uint32_t, kMaxFragments> sources{};
    std::array<uint8_t*, kMaxFragments> source_ptrs{};
    uint32_t chosen = 0;
    PatternKey key;
    for (uint32_t i = 0; i < n_ && chosen < k_; ++i) {
      if (present[i] == nullptr) continue;
      sources[chosen] = i;
      source_ptrs[chosen] = writable(present[i]);
      PatternKey::set(key.sources, i);
      ++chosen;
    }
    for (uint32_t t : targets) PatternKey::set(key.targets, t);

    Tables tables = cache_.find(key);
    if (!tables) {
      auto built = build_tables(std::span<const uint32_t>(sources.data(), k_), targets);
      if (!built) return tl::unexpected(built.error());
      tables = std::move(*built);
      cache_.insert(key, tables);
    }
    // ISA-L never writes through the table or source pointers.
    ec_encode_data(static_cast<int>(fragment_size_), static_cast<int>(k_),
                   static_cast<int>(targets.size()), writable(tables->data()), source_ptrs.data(),
                   const_cast<uint8_t**>(outputs.data()));
    detail::clear_upper_vector_state();
    return {};
  }

  // Decode tables for rebuilding `targets` from `sources`: with B the k rows
  // of the generator for the sources, fragment t = G[t] * B^-1 * sources.
  Result<Tables> build_tables(std::span<const uint32_t> sources,
                              std::span<const uint32_t> targets) const {
    std::vector<uint8_t> b(size_t{k_} * k_);
    std::vector<uint8_t> inv(size_t{k_} * k_);
    for (uint32_t r = 0; r < k_; ++r) {
      std::memcpy(&b[size_t{r} * k_], &matrix_[size_t{sources[r]} * k_], k_);
    }
    if (gf_invert_matrix(b.data(), inv.data(), static_cast<int>(k_)) != 0) {
      // Cannot happen for a Cauchy generator; report rather than emit garbage.
      return make_error(Errc::internal, "erasure codec: singular decode matrix");
    }
    std::vector<uint8_t> coeffs(targets.size() * k_);
    for (size_t r = 0; r < targets.size(); ++r) {
      const uint32_t t = targets[r];
      uint8_t* row = &coeffs[r * k_];
      if (t < k_) {
        std::memcpy(row, &inv[size_t{t} * k_], k_);
        continue;
      }
      const uint8_t* g = &matrix_[size_t{t} * k_];
      for (uint32_t j = 0; j < k_; ++j) {
        uint8_t acc = 0;
        for (uint32_t l = 0; l < k_; ++l) acc ^= gf_mul(g[l], inv[size_t{l} * k_ + j]);
        row[j] = acc;
      }
    }
    auto tables = std::make_shared<std::vector<uint8_t>>(size_t{32} * k_ * targets.size());
    ec_init_tables(static_cast<int>(k_), static_cast<int>(targets.size()), coeffs.data(),
                   tables->data());
    return Tables(std::move(tables));
  }

  const NetworkParams params_;
  const uint32_t k_;
  const uint32_t m_;
  const uint32_t n_;
  const uint32_t fragment_size_;
  std::vector<uint8_t> matrix_;         // n x k generator, row-major
  std::vector<uint8_t> encode_tables_;  // ISA-L tables for the m parity rows
  mutable DecodeCache cache_;
};

}  // namespace

Result<std::shared_ptr<const Codec>> Codec::create(const NetworkParams& params) {
  CAIRN_TRY_STATUS(params.validate());
  // ISA-L lengths are int; validate() keeps blob_size far below that.
  if (params.fragment_size() > static_cast<uint32_t>(INT_MAX)) {
    return codec_invalid("fragment size " + std::to_string(params.fragment_size()) +
                         " is too large");
  }
  return std::shared_ptr<const Codec>(std::make_shared<IsalCodec>(params));
}

}  // namespace cairn::erasure
