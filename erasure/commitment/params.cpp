#include "cairn/erasure/params.hpp"

#include <string>

namespace cairn::erasure {
namespace {
tl::unexpected<Error> bad(const std::string& what) {
  return make_error(Errc::invalid_argument, "network parameters: " + what);
}
}  // namespace

Status NetworkParams::validate() const {
  if (blob_size == 0) return bad("blob_size must be > 0");
  if (blob_size > kMaxBlobSize) {
    return bad("blob_size " + std::to_string(blob_size) + " exceeds " +
               std::to_string(kMaxBlobSize) + " (1 GiB)");
  }
  if (data_fragments == 0) return bad("data_fragments (k) must be > 0");
  if (chunk_size == 0) return bad("chunk_size must be > 0");
  if (blobs_per_shard == 0) return bad("blobs_per_shard must be > 0");
  if (block_time_ms == 0) return bad("block_time_ms must be > 0");
  if (epoch_blocks == 0) return bad("epoch_blocks must be > 0");
  if (walk_steps == 0) return bad("walk_steps must be > 0");
  if (seal_cost == 0) return bad("seal_cost must be > 0");
  if (uint64_t{data_fragments} + parity_fragments > 255) {
    return bad("data_fragments + parity_fragments = " +
               std::to_string(uint64_t{data_fragments} + parity_fragments) +
               " exceeds 255 (GF(2^8) Reed-Solomon)");
  }
  if (blob_size % data_fragments != 0) {
    return bad("blob_size " + std::to_string(blob_size) + " is not divisible by data_fragments " +
               std::to_string(data_fragments));
  }
  if (fragment_size() % chunk_size != 0) {
    return bad("fragment size " + std::to_string(fragment_size()) +
               " (blob_size / data_fragments) is not a multiple of chunk_size " +
               std::to_string(chunk_size));
  }
  if (deadline_blocks >= epoch_blocks) {
    return bad("deadline_blocks " + std::to_string(deadline_blocks) +
               " must be below epoch_blocks " + std::to_string(epoch_blocks));
  }
  if (uint64_t{openings} * 2 > walk_steps) {
    return bad("openings (pairs) " + std::to_string(openings) + " exceed walk_steps / 2");
  }
  if (openings == 0) return bad("openings must be > 0");
  if (mask_checks == 0) return bad("mask_checks must be > 0");
  if (uint64_t{mask_checks} > uint64_t{openings} * 2) {
    return bad("mask_checks " + std::to_string(mask_checks) + " exceed the " +
               std::to_string(uint64_t{openings} * 2) + " opened steps (2 * openings)");
  }
  return {};
}

}  // namespace cairn::erasure
