// Micro benchmarks of the erasure module with the default network
// parameters. Throughput is in blob payload bytes (131072 per blob) unless
// a benchmark names other bytes.

#include <benchmark/benchmark.h>

#include <cstring>
#include <random>

#include "cairn/erasure/checksum.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/erasure/sha256.hpp"

namespace cairn::erasure {
namespace {

void set_bytes(benchmark::State& state, size_t per_iteration) {
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(per_iteration));
}

const Codec& codec() {
  static const auto c = *Codec::create(NetworkParams::defaults());
  return *c;
}

Bytes random_payload(size_t n, uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

void BM_Encode(benchmark::State& state) {
  const Bytes payload = random_payload(codec().params().blob_size);
  EncodedBlob out;
  for (auto _ : state) {
    auto s = codec().encode_into(payload, out);
    benchmark::DoNotOptimize(out.data.data());
  }
  set_bytes(state, payload.size());
}
BENCHMARK(BM_Encode);

void BM_Commit(benchmark::State& state) {
  const Bytes payload = random_payload(codec().params().blob_size);
  EncodedBlob blob = *codec().encode(payload);
  BlobCommitment c;
  for (auto _ : state) {
    commit_into(blob, codec().params().chunk_size, c);
    benchmark::DoNotOptimize(c.id);
  }
  set_bytes(state, payload.size());
}
BENCHMARK(BM_Commit);

void BM_EncodeAndCommit(benchmark::State& state) {
  const Bytes payload = random_payload(codec().params().blob_size);
  CommittedBlob out;
  for (auto _ : state) {
    auto s = encode_and_commit_into(codec(), payload, out);
    benchmark::DoNotOptimize(out.commitment.id);
  }
  set_bytes(state, payload.size());
}
BENCHMARK(BM_EncodeAndCommit);

// Decode with `state.range(0)` data fragments lost (rebuilt from parity).
void BM_Decode(benchmark::State& state) {
  const auto lost = static_cast<uint32_t>(state.range(0));
  const Bytes payload = random_payload(codec().params().blob_size);
  EncodedBlob blob = *codec().encode(payload);
  std::vector<FragmentRef> available;
  for (uint32_t i = lost; i < blob.fragments; ++i) available.push_back({i, blob.fragment(i)});
  for (auto _ : state) {
    auto out = codec().decode(available, codec().params().blob_size);
    benchmark::DoNotOptimize(out->data());
  }
  set_bytes(state, payload.size());
}
BENCHMARK(BM_Decode)->Arg(0)->Arg(1)->Arg(4);

// Rebuilds one lost parity fragment (what repair does); bytes = one fragment.
void BM_ReconstructOneFragment(benchmark::State& state) {
  EncodedBlob blob = *codec().encode(random_payload(codec().params().blob_size));
  std::vector<FragmentRef> available;
  for (uint32_t i = 0; i < blob.fragments; ++i) {
    if (i != 10) available.push_back({i, blob.fragment(i)});
  }
  const uint32_t wanted[] = {10};
  for (auto _ : state) {
    auto out = codec().reconstruct(available, wanted);
    benchmark::DoNotOptimize(out->data());
  }
  set_bytes(state, blob.fragment_size);
}
BENCHMARK(BM_ReconstructOneFragment);

void BM_MerkleLeafHash1KiB(benchmark::State& state) {
  const Bytes chunk = random_payload(1024);
  for (auto _ : state) benchmark::DoNotOptimize(merkle_leaf_hash(chunk));
  set_bytes(state, chunk.size());
}
BENCHMARK(BM_MerkleLeafHash1KiB);

void BM_MerkleNodeHash(benchmark::State& state) {
  Hash32 a{}, b{};
  a[0] = 1;
  for (auto _ : state) {
    a = merkle_node_hash(a, b);
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_MerkleNodeHash);

// The bytes a commitment covers (n fragments), hashed in one pass.
void BM_Sha256OfAllFragments(benchmark::State& state) {
  const Bytes bytes = random_payload(size_t{codec().params().total_fragments()} * codec().params().fragment_size());
  for (auto _ : state) benchmark::DoNotOptimize(sha256(bytes));
  set_bytes(state, codec().params().blob_size);
}
BENCHMARK(BM_Sha256OfAllFragments);

void BM_Crc32c(benchmark::State& state) {
  const Bytes bytes = random_payload(static_cast<size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(crc32c(bytes));
  set_bytes(state, bytes.size());
}
BENCHMARK(BM_Crc32c)->Arg(4096)->Arg(16384);

}  // namespace
}  // namespace cairn::erasure
