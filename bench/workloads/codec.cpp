// `cairn bench codec`: what an uploader does per blob (RS encode + commitment)
// against the raw work it cannot avoid: ISA-L ec_encode_data on the same
// bytes plus one SHA-256 pass over all n fragments (the bytes the commitment
// covers). Ours hashes ~19% more SHA-256 blocks (a prefix byte and a padding
// block per 1 KiB chunk, ~200 two-block node hashes per blob) and copies the
// payload into the fragment buffer, but its leaves and nodes are independent
// messages that it hashes two at a time on SHA-NI, which the one-shot
// baseline cannot.

#include <isa-l/erasure_code.h>

// Low-level SHA-256 for the baseline, as in erasure/sha256.cpp (EVP's
// dispatch would only slow the baseline's single call per blob slightly).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <cstring>
#include <random>

#include "bench.hpp"
#include "cairn/contracts/params_json.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"

namespace cairn::bench {
namespace {

// 32 distinct payloads (4 MiB with default parameters): more than the L2
// cache, so both sides read their input from memory alike.
constexpr size_t kPoolBlobs = 32;
constexpr size_t kBlobsPerCall = 8;

// ISA-L's AVX-512 kernels return with dirty upper vector state, which slows
// the legacy-SSE SHA-NI code that follows by ~20% until a vzeroupper. The
// library clears it after every ISA-L call; the baseline must too, or the
// ratio would flatter us with a penalty only the baseline pays.
#if defined(__x86_64__)
__attribute__((target("avx"))) void vzeroupper() { _mm256_zeroupper(); }
void clear_upper_vector_state() {
  static const bool avx = __builtin_cpu_supports("avx");
  if (avx) vzeroupper();
}
#else
void clear_upper_vector_state() {}
#endif

Result<nlohmann::json> run_codec(const Options& opts) {
  using namespace erasure;
  const NetworkParams params = NetworkParams::defaults();
  auto created = Codec::create(params);
  if (!created) return tl::unexpected(created.error());
  const Codec& codec = **created;
  const uint32_t k = params.data_fragments;
  const uint32_t m = params.parity_fragments;
  const uint32_t n = params.total_fragments();
  const uint32_t fs = params.fragment_size();
  const size_t blob = params.blob_size;

  std::mt19937_64 rng(opts.seed);
  Bytes pool(kPoolBlobs * blob);
  for (size_t i = 0; i < pool.size(); i += 8) {
    const uint64_t r = rng();
    std::memcpy(&pool[i], &r, 8);
  }
  auto payload = [&pool, blob](size_t i) { return ByteSpan(pool).subspan((i % kPoolBlobs) * blob, blob); };

  // Ours: the library path, buffers reused across blobs as an ingest loop would.
  CommittedBlob out;
  size_t ours_next = 0;
  Status ours_status;
  Side ours{"cairn encode_and_commit_into (RS encode, chunk and fragment Merkle trees)", [&]() -> uint64_t {
              for (size_t b = 0; b < kBlobsPerCall; ++b) {
                auto s = encode_and_commit_into(codec, payload(ours_next++), out);
                if (!s) ours_status = s;
              }
              return kBlobsPerCall * blob;
            }};

  // Baseline: raw ISA-L with the same generator, raw SHA-256 over the n fragments.
  std::vector<uint8_t> matrix(size_t{n} * k);
  std::vector<uint8_t> tables(size_t{32} * k * m);
  gf_gen_cauchy1_matrix(matrix.data(), static_cast<int>(n), static_cast<int>(k));
  ec_init_tables(static_cast<int>(k), static_cast<int>(m), &matrix[size_t{k} * k], tables.data());
  Bytes parity(size_t{m} * fs);
  std::vector<uint8_t*> data_ptrs(k), parity_ptrs(m);
  for (uint32_t i = 0; i < m; ++i) parity_ptrs[i] = &parity[size_t{i} * fs];
  size_t base_next = 0;
  auto raw_blob = [&](ByteSpan p, uint8_t* digest) {
    for (uint32_t i = 0; i < k; ++i) data_ptrs[i] = const_cast<uint8_t*>(p.data()) + size_t{i} * fs;
    ec_encode_data(static_cast<int>(fs), static_cast<int>(k), static_cast<int>(m), tables.data(), data_ptrs.data(),
                   parity_ptrs.data());
    clear_upper_vector_state();
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, p.data(), p.size());
    SHA256_Update(&ctx, parity.data(), parity.size());
    SHA256_Final(digest, &ctx);
  };
  Side baseline{"raw ISA-L ec_encode_data + one-shot SHA-256 over all n fragments", [&]() -> uint64_t {
                  uint8_t digest[32];
                  for (size_t b = 0; b < kBlobsPerCall; ++b) {
                    raw_blob(payload(base_next++), digest);
                  }
                  return kBlobsPerCall * blob;
                }};

  // Both sides must do the same coding work: same parity bytes for a blob.
  CAIRN_TRY_STATUS(encode_and_commit_into(codec, payload(0), out));
  uint8_t digest[32];
  raw_blob(payload(0), digest);
  if (std::memcmp(out.encoded.fragment(k).data(), parity.data(), parity.size()) != 0) {
    return make_error(Errc::internal, "bench codec: library parity differs from raw ISA-L parity");
  }

  auto [ours_stats, base_stats] = measure_pair(opts, ours, baseline);
  if (!ours_status) return tl::unexpected(ours_status.error());
  // Bytes per second -> MB/s of blob payload.
  for (SideStats* s : {&ours_stats, &base_stats}) {
    scale(*s, 1e-6);
  }
  nlohmann::json report = pair_report("codec", "MB/s", ours, ours_stats, baseline, base_stats, opts);
  report["params"] = contracts::params_to_json(params);
  report["blobs_per_second"] = ours_stats.median * 1e6 / static_cast<double>(blob);
  return report;
}

}  // namespace

Workload codec_workload() {
  return {"codec", "RS encode + blob commitment per blob vs raw ISA-L encode + SHA-256 of n fragments", run_codec};
}

}  // namespace cairn::bench
