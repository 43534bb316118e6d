#pragma once
// Batched SHA-256 of equal-length messages that share a one-byte prefix: the
// shape of Merkle work (chunk leaves: 0x00 || chunk; nodes: 0x01 || left ||
// right). With SHA-NI the messages are hashed two at a time in interleaved
// lanes: sha256rnds2 is latency-bound, so two independent chains run in
// nearly the time of one. Without SHA-NI (or off x86-64) each message goes
// through OpenSSL. Results are identical either way (tested).

#include <cstddef>
#include <cstdint>

#include "cairn/core/bytes.hpp"

namespace cairn::erasure::detail {

// out[i] = SHA-256(prefix || data[i*len .. (i+1)*len)) for i < count.
// `out` must not overlap `data`.
void hash_prefixed(uint8_t prefix, const uint8_t* data, size_t len, size_t count, Hash32* out);

// The two implementations behind hash_prefixed, for tests and benchmarks.
// sha_ni_supported() is false when the CPU lacks SHA-NI, SSSE3 or SSE4.1, or
// when the environment variable CAIRN_DISABLE_SHA_NI is set to anything but
// "" or "0" (read once per process: to measure or rule out the fast path).
bool sha_ni_supported() noexcept;
void hash_prefixed_portable(uint8_t prefix, const uint8_t* data, size_t len, size_t count,
                            Hash32* out);
// Only when sha_ni_supported().
void hash_prefixed_sha_ni(uint8_t prefix, const uint8_t* data, size_t len, size_t count,
                          Hash32* out);

// Executes vzeroupper when the CPU has AVX. ISA-L's AVX-512 kernels return
// with the upper halves of the vector registers dirty; until they are
// cleared, every legacy-SSE instruction (SHA-NI has no VEX form) carries a
// false dependency on them. Measured on the bench machine (AMD EPYC, Zen 5):
// hashing 192 leaves takes 126 us after an ISA-L encode, 72 us after this.
void clear_upper_vector_state() noexcept;

}  // namespace cairn::erasure::detail
