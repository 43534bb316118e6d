#pragma once
// Record and frame codec (docs/wire-protocol.md, "Records" and "Frames").
//
//   record    = u32 BE length L | L bytes
//   handshake : the L bytes are a plaintext handshake message (L <= 512)
//   session   : the L bytes are one secretstream message: tag(1) | c | mac(16)
//   frame     = plaintext of a session record:
//               u16 BE type | u8 flags | body
//               flags bit 0 (zstd): body = u32 BE raw_len | zstd frame
//               other flag bits must be zero
//
// Everything here that reads peer bytes is noexcept, bounds every length
// before allocating and returns a Result. Error codes are part of the
// contract: Errc::invalid_argument means "above a size limit" (the session
// closes with frame_too_large), Errc::corruption means "does not parse"
// (protocol_error).

#include <sodium.h>

#include <cstddef>
#include <cstdint>

#include "cairn/core/bytes.hpp"
#include "cairn/core/result.hpp"
#include "cairn/p2p/message_types.hpp"

typedef struct ZSTD_CCtx_s ZSTD_CCtx;
typedef struct ZSTD_DCtx_s ZSTD_DCtx;

namespace cairn::p2p {

inline constexpr size_t kLengthPrefixBytes = 4;
inline constexpr size_t kFrameHeaderBytes = 3;  // type(2) flags(1)
inline constexpr size_t kTagBytes = 1;          // secretstream tag byte
inline constexpr size_t kMacBytes = 16;         // Poly1305
inline constexpr size_t kSealOverhead = crypto_secretstream_xchacha20poly1305_ABYTES;  // tag + mac
static_assert(kSealOverhead == kTagBytes + kMacBytes);
inline constexpr size_t kRawLengthBytes = 4;  // u32 raw_len before a zstd body
inline constexpr uint8_t kFlagZstd = 0x01;
// Largest plaintext handshake record (a hello is at most 412 bytes).
inline constexpr size_t kMaxHandshakeRecord = 512;

// Largest session record L for a given payload limit: a frame header, the
// payload (a compressed body is only sent when it is smaller than the raw
// payload, so raw_len + zstd frame fits in the same bound) and the seal.
constexpr size_t max_session_record(uint32_t max_payload) noexcept {
  return kFrameHeaderBytes + static_cast<size_t>(max_payload) + kSealOverhead;
}

// Reads a length prefix from the first 4 bytes of `prefix` and checks it
// against `max_record` before anything is allocated for it. Errors:
// corruption when fewer than 4 bytes are given or L == 0; invalid_argument
// when L > max_record.
Result<uint32_t> decode_record_length(ByteSpan prefix, size_t max_record) noexcept;

// Reusable zstd contexts (one pair per session). Owns them; not copyable.
class ZstdContexts {
 public:
  ZstdContexts() = default;
  ~ZstdContexts();
  ZstdContexts(const ZstdContexts&) = delete;
  ZstdContexts& operator=(const ZstdContexts&) = delete;
  ZSTD_CCtx* compressor() noexcept;  // lazily created; nullptr on allocation failure
  ZSTD_DCtx* decompressor() noexcept;

 private:
  ZSTD_CCtx* c_ = nullptr;
  ZSTD_DCtx* d_ = nullptr;
};

struct FrameView {
  MessageType type{};
  bool compressed = false;
  ByteSpan payload;  // into the plaintext, or into `scratch` when compressed
};

// Decodes one decrypted frame. A compressed body is inflated into `scratch`
// (resized to raw_len only after raw_len <= max_payload was checked; the
// inflated size must equal raw_len exactly). `zstd` may be null (a one-shot
// context is used). Errors as in the header comment.
Result<FrameView> decode_frame(ByteSpan plaintext, uint32_t max_payload, Bytes& scratch,
                               ZstdContexts* zstd) noexcept;

// Writes the 3-byte frame header.
inline void put_frame_header(uint8_t* out, MessageType type, uint8_t flags) noexcept {
  put_be<uint16_t>(out, to_wire(type));
  out[2] = flags;
}

// Compresses `payload` into `body` as raw_len | zstd frame. Returns false
// (body unspecified) when that would not be strictly smaller than the
// payload or zstd fails; the caller then sends the payload raw.
bool compress_body(ByteSpan payload, int level, ZstdContexts& zstd, Bytes& body);

}  // namespace cairn::p2p
