// Replica mask cost per blob against the raw XChaCha20 keystream over the
// same bytes (the floor any stream-cipher-based mask pays).
#include <benchmark/benchmark.h>
#include <sodium.h>

#include "cairn/sampling/seal.hpp"

namespace {

void BM_ReplicaMask(benchmark::State& state) {
  auto params = cairn::erasure::NetworkParams::defaults();
  params.seal_cost = static_cast<uint32_t>(state.range(0));
  cairn::Bytes out(size_t{params.total_fragments()} * params.fragment_size());
  cairn::sampling::SealKey key;
  for (auto _ : state) {
    key.index.value++;
    cairn::sampling::replica_mask(params, key, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * params.blob_size);
}
BENCHMARK(BM_ReplicaMask)->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMicrosecond);

void BM_RawXChaCha20(benchmark::State& state) {
  auto params = cairn::erasure::NetworkParams::defaults();
  cairn::Bytes out(size_t{params.total_fragments()} * params.fragment_size());
  uint8_t key[crypto_stream_xchacha20_KEYBYTES] = {1};
  uint8_t nonce[crypto_stream_xchacha20_NONCEBYTES] = {};
  for (auto _ : state) {
    crypto_stream_xchacha20(out.data(), out.size(), nonce, key);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * params.blob_size);
}
BENCHMARK(BM_RawXChaCha20)->Unit(benchmark::kMicrosecond);

}  // namespace
