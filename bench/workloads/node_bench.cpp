#include "node_bench.hpp"

#include <chrono>
#include <functional>
#include <thread>

#include "bench.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/sampling/seal.hpp"
#include "cairn/shards/serve.hpp"

namespace cairn::bench {
namespace {

// Median milliseconds of `fn` over `reps` calls.
double median_ms(int reps, const std::function<void()>& fn) {
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(ms);
}

}  // namespace

std::vector<Bytes> baseline_replicas(const erasure::NetworkParams& params, uint64_t seed) {
  auto codec = erasure::Codec::create(params);
  if (!codec) throw SideFailed(codec.error());
  std::mt19937_64 rng(seed);
  std::vector<Bytes> out;
  for (int i = 0; i < 16; ++i) {
    Bytes p(params.blob_size);
    for (auto& b : p) b = static_cast<uint8_t>(rng());
    auto enc = (*codec)->encode(p);
    if (!enc) throw SideFailed(enc.error());
    out.push_back(std::move(enc->data));
  }
  return out;
}

nlohmann::json path_profile(const erasure::NetworkParams& params, uint64_t seed, const PathSteps& steps) {
  auto codec = erasure::Codec::create(params);
  if (!codec) throw SideFailed(codec.error());
  std::mt19937_64 rng(seed);
  Bytes payload(params.blob_size);
  for (auto& b : payload) b = static_cast<uint8_t>(rng());
  auto committed = erasure::encode_and_commit(**codec, payload);
  if (!committed) throw SideFailed(committed.error());
  const shards::RegisteredBlob reg{BlobIndex{7}, committed->commitment.id, params.blob_size};
  shards::FragmentReply reply;
  for (uint32_t f = 0; f < params.data_fragments; ++f)
    reply.fragments.push_back(FragmentIndex{static_cast<uint8_t>(f)});
  reply.data.assign(committed->encoded.data.begin(),
                    committed->encoded.data.begin() + std::ptrdiff_t{params.data_fragments} * params.fragment_size());
  Bytes mask(committed->encoded.data.size());
  const sampling::SealKey key{NodeId{}, reg.id, reg.index};
  constexpr int kReps = 15;
  const double mask_ms = median_ms(kReps, [&] { sampling::replica_mask(params, key, mask); });
  const double verify_ms = median_ms(kReps, [&] {
    auto v = shards::verify_fetched(**codec, reg, reply);
    if (!v) throw SideFailed(v.error());
  });
  const double encode_ms = median_ms(kReps, [&] {
    auto e = erasure::encode_and_commit(**codec, payload);
    if (!e) throw SideFailed(e.error());
  });
  const double masks_ms = steps.masks * mask_ms;
  const double per_blob = masks_ms + steps.verifies * verify_ms + steps.encodes * encode_ms;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return nlohmann::json{
      {"unit", "ms of one core per full blob"},
      {"replica_mask", mask_ms},
      {"verify_fetched", verify_ms},
      {"encode_and_commit", encode_ms},
      {"masks_per_blob", steps.masks},
      {"verifies_per_blob", steps.verifies},
      {"encodes_per_blob", steps.encodes},
      {"cpu_ms_per_blob", per_blob},
      {"mask_share_of_cpu_work", per_blob > 0 ? masks_ms / per_blob : 0.0},
      {"ceiling_mb_s_all_cores", per_blob > 0 ? params.blob_size / per_blob / 1e3 * cores : 0.0},
      {"note", steps.note + "; the ceiling uses every hardware thread for these steps alone and ignores TCP "
                            "encryption, copies and RocksDB, so the real path is below it"}};
}

}  // namespace cairn::bench
