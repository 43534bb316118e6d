#include "frame.hpp"

#include <zstd.h>

#include <new>

namespace cairn::p2p {

Result<uint32_t> decode_record_length(ByteSpan prefix, size_t max_record) noexcept {
  if (prefix.size() < kLengthPrefixBytes) {
    return make_error(Errc::corruption, "record length prefix is truncated");
  }
  const uint32_t len = get_be<uint32_t>(prefix.data());
  if (len == 0) return make_error(Errc::corruption, "empty record");
  if (len > max_record) {
    return make_error(Errc::invalid_argument, "record of " + std::to_string(len) +
                                                  " bytes exceeds the limit of " +
                                                  std::to_string(max_record));
  }
  return len;
}

ZstdContexts::~ZstdContexts() {
  ZSTD_freeCCtx(c_);
  ZSTD_freeDCtx(d_);
}

ZSTD_CCtx* ZstdContexts::compressor() noexcept {
  if (c_ == nullptr) c_ = ZSTD_createCCtx();
  return c_;
}

ZSTD_DCtx* ZstdContexts::decompressor() noexcept {
  if (d_ == nullptr) d_ = ZSTD_createDCtx();
  return d_;
}

Result<FrameView> decode_frame(ByteSpan plaintext, uint32_t max_payload, Bytes& scratch,
                               ZstdContexts* zstd) noexcept {
  ByteReader r(plaintext);
  uint16_t type = 0;
  uint8_t flags = 0;
  if (!r.read_be(type) || !r.read_be(flags)) {
    return make_error(Errc::corruption, "frame shorter than its 3-byte header");
  }
  FrameView f;
  f.type = static_cast<MessageType>(type);
  if ((flags & ~kFlagZstd) != 0) {
    return make_error(Errc::corruption, "frame has unknown flag bits set");
  }
  if ((flags & kFlagZstd) == 0) {
    if (r.remaining() > max_payload) {
      return make_error(Errc::invalid_argument, "frame payload exceeds the limit");
    }
    r.view(r.remaining(), f.payload);
    return f;
  }
  f.compressed = true;
  uint32_t raw_len = 0;
  if (!r.read_be(raw_len)) return make_error(Errc::corruption, "compressed frame lacks raw_len");
  if (raw_len > max_payload) {
    return make_error(
        Errc::invalid_argument,
        "compressed frame declares " + std::to_string(raw_len) + " bytes, above the limit");
  }
  ByteSpan body;
  r.view(r.remaining(), body);
  if (body.size() >= raw_len) {
    // We only ever compress when it shrinks; anything else is not ours.
    return make_error(Errc::corruption, "compressed body is not smaller than raw_len");
  }
  try {
    scratch.resize(raw_len);
  } catch (const std::bad_alloc&) {
    return make_error(Errc::internal, "out of memory inflating a frame");
  }
  size_t n = 0;
  ZSTD_DCtx* dctx = zstd != nullptr ? zstd->decompressor() : nullptr;
  if (dctx != nullptr) {
    n = ZSTD_decompressDCtx(dctx, scratch.data(), raw_len, body.data(), body.size());
  } else {
    n = ZSTD_decompress(scratch.data(), raw_len, body.data(), body.size());
  }
  if (ZSTD_isError(n) != 0) {
    return make_error(Errc::corruption, std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  if (n != raw_len) {
    return make_error(Errc::corruption, "inflated size differs from raw_len");
  }
  f.payload = ByteSpan(scratch.data(), raw_len);
  return f;
}

bool compress_body(ByteSpan payload, int level, ZstdContexts& zstd, Bytes& body) {
  ZSTD_CCtx* cctx = zstd.compressor();
  if (cctx == nullptr || payload.size() <= kRawLengthBytes) return false;
  // Only worth it when the result is strictly smaller than sending raw.
  const size_t budget = payload.size() - kRawLengthBytes - 1;
  body.resize(kRawLengthBytes + budget);
  put_be<uint32_t>(body.data(), static_cast<uint32_t>(payload.size()));
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);
  const size_t n =
      ZSTD_compress2(cctx, body.data() + kRawLengthBytes, budget, payload.data(), payload.size());
  if (ZSTD_isError(n) != 0) return false;  // includes "dst too small": it did not shrink
  body.resize(kRawLengthBytes + n);
  return true;
}

}  // namespace cairn::p2p
