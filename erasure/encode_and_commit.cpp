#include "cairn/erasure/codec.hpp"

// The codec-bound half of blob commitments: encoding and committing in one
// call, and re-checking a received blob's parity. The hashing itself is
// cairn_commitment's (erasure/commitment/).

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "cairn/erasure/commitment.hpp"

namespace cairn::erasure {
namespace {

tl::unexpected<Error> commitment_invalid(std::string message) {
  return make_error(Errc::invalid_argument, "blob commitment: " + std::move(message));
}

}  // namespace

Status encode_and_commit_into(const Codec& codec, ByteSpan payload, CommittedBlob& out) {
  CAIRN_TRY_STATUS(codec.encode_into(payload, out.encoded));
  commit_into(out.encoded, codec.params().chunk_size, out.commitment);
  return {};
}

Result<CommittedBlob> encode_and_commit(const Codec& codec, ByteSpan payload) {
  CommittedBlob out;
  CAIRN_TRY_STATUS(encode_and_commit_into(codec, payload, out));
  return out;
}

Status verify_blob(const Codec& codec, const EncodedBlob& blob, const BlobId& id) {
  const NetworkParams& params = codec.params();
  const uint32_t n = params.total_fragments();
  const uint32_t k = params.data_fragments;
  const uint32_t fs = params.fragment_size();
  if (blob.fragments != n || blob.fragment_size != fs || blob.data.size() != size_t{n} * fs) {
    return commitment_invalid("blob " + id.hex() + " has " + std::to_string(blob.fragments) +
                              " fragments of " + std::to_string(blob.fragment_size) +
                              " bytes, expected " + std::to_string(n) + " of " +
                              std::to_string(fs));
  }
  if (blob.length > params.blob_size) {
    return commitment_invalid("blob " + id.hex() + " claims length " + std::to_string(blob.length) +
                              " above blob_size " + std::to_string(params.blob_size));
  }
  auto fail = [&id](const std::string& why) {
    return make_error(Errc::verification_failed, "blob " + id.hex() + ": " + why);
  };
  const size_t data_bytes = size_t{k} * fs;
  const auto padding = ByteSpan(blob.data).subspan(blob.length, data_bytes - blob.length);
  if (std::any_of(padding.begin(), padding.end(), [](uint8_t b) { return b != 0; })) {
    return fail("non-zero padding after byte " + std::to_string(blob.length));
  }
  EncodedBlob expected = blob;
  CAIRN_TRY_STATUS(codec.encode_parity(expected));
  for (uint32_t i = k; i < n; ++i) {
    const ByteSpan got = blob.fragment(i);
    const ByteSpan want = expected.fragment(i);
    if (std::memcmp(got.data(), want.data(), fs) != 0) {
      return fail("parity fragment " + std::to_string(i) +
                  " differs from the parity re-encoded from the data fragments");
    }
  }
  const BlobCommitment c = commit(expected, params.chunk_size);
  if (c.id != id) return fail("fragments commit to " + c.id.hex() + ", not to the claimed id");
  return {};
}

}  // namespace cairn::erasure
