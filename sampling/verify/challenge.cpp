#include "cairn/sampling/challenge.hpp"

#include <algorithm>
#include <string>

#include "cairn/erasure/merkle.hpp"
#include "cairn/erasure/sha256.hpp"

namespace cairn::sampling {
namespace {

constexpr std::string_view kWalkDomain = "cairn/walk/v1";
constexpr std::string_view kResponseDomain = "cairn/response/v1";
constexpr std::string_view kOpeningsDomain = "cairn/openings/v1";

// Draw `count` distinct values in [0, range) from a counter-mode SHA-256
// stream under (seed, tag): value = u64(SHA-256(seed || tag || u32 ctr)[0..8])
// mod range, repeats skipped. range >= count > 0 is the caller's promise
// (NetworkParams::validate() gives it), so the loop ends with probability 1;
// the bias of a 64-bit value mod a 32-bit range is below 2^-32.
std::vector<uint32_t> draw_distinct(const Hash32& seed, uint8_t tag, uint32_t count,
                                    uint64_t range) {
  std::vector<uint32_t> out;
  if (range < count) return out;  // impossible draw: never loop forever on bad parameters
  out.reserve(count);
  uint8_t ctr_be[4];
  for (uint32_t ctr = 0; out.size() < count; ++ctr) {
    put_be<uint32_t>(ctr_be, ctr);
    const Hash32 h = erasure::sha256({seed, ByteSpan(&tag, 1), ByteSpan(ctr_be, 4)});
    const auto v = static_cast<uint32_t>(get_be<uint64_t>(h.data()) % range);
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out;
}

}  // namespace

Result<EpochChallenge> make_epoch_challenge(const erasure::NetworkParams& params, ShardId shard,
                                            Epoch epoch, const contracts::BlockHeader& start) {
  CAIRN_TRY_STATUS(params.validate());
  const std::string what =
      "challenge of shard " + std::to_string(shard.value) + " epoch " + std::to_string(epoch.value);
  BlockNumber start_block{};
  if (!contracts::epoch_start_block(params, epoch, start_block) || start.number != start_block) {
    return make_error(Errc::invalid_argument, what + ": header of block " +
                                                  std::to_string(start.number.value) +
                                                  " is not the epoch's first block");
  }
  EpochChallenge c;
  c.params = params;
  c.shard = shard;
  c.epoch = epoch;
  c.start_block = start_block;
  c.randomness = contracts::block_randomness(start.hash());
  c.first_blob = params.first_index(shard);
  c.blob_count = contracts::shard_blob_count(start, params, shard);
  c.blobs_root = start.blobs_root;
  c.blobs_tree_size = start.blob_count;
  if (c.blob_count == 0) {
    return make_error(Errc::not_found, what + ": the shard held no blob at block " +
                                           std::to_string(start_block.value));
  }
  return c;
}

Hash32 initial_state(const EpochChallenge& challenge, const NodeId& node) {
  uint8_t se[12];
  put_be<uint32_t>(se, challenge.shard.value);
  put_be<uint64_t>(se + 4, challenge.epoch.value);
  return erasure::sha256(
      {as_bytes(kWalkDomain), challenge.randomness, node.span(), ByteSpan(se, 12)});
}

ChunkPosition step_position(const EpochChallenge& challenge, const Hash32& prev_state) noexcept {
  ChunkPosition p;
  const uint64_t blobs = std::max<uint64_t>(challenge.blob_count, 1);
  const uint64_t chunks = std::max<uint64_t>(challenge.replica_chunks(), 1);
  p.blob = BlobIndex{challenge.first_blob.value + get_be<uint64_t>(prev_state.data()) % blobs};
  p.chunk = static_cast<uint32_t>(get_be<uint64_t>(prev_state.data() + 8) % chunks);
  return p;
}

Hash32 next_state(const Hash32& state0, const Hash32& prev_state, ByteSpan sealed_chunk) {
  return erasure::sha256({state0, prev_state, sealed_chunk});
}

Hash32 transcript_leaf(uint32_t step, const Hash32& prev_state, ByteSpan sealed_chunk,
                       const Hash32& state) {
  const uint8_t prefix = erasure::kMerkleLeafPrefix;
  uint8_t step_be[4];
  put_be<uint32_t>(step_be, step);
  return erasure::sha256(
      {ByteSpan(&prefix, 1), ByteSpan(step_be, 4), prev_state, sealed_chunk, state});
}

Hash32 commitment_hash(const NodeId& node, ShardId shard, Epoch epoch,
                       const Hash32& transcript_root, const Hash32& final_state) {
  uint8_t se[12];
  put_be<uint32_t>(se, shard.value);
  put_be<uint64_t>(se + 4, epoch.value);
  return erasure::sha256(
      {as_bytes(kResponseDomain), node.span(), ByteSpan(se, 12), transcript_root, final_state});
}

OpeningPlan plan_openings(const erasure::NetworkParams& params, const Hash32& commitment,
                          const Hash32& anchor_randomness) {
  const Hash32 seed = erasure::sha256({as_bytes(kOpeningsDomain), commitment, anchor_randomness});
  OpeningPlan plan;
  // Pair starts i in [1, S-1]: draw in [0, S-1) and shift.
  plan.pair_steps = draw_distinct(seed, 1, params.openings, uint64_t{params.walk_steps} - 1);
  for (uint32_t& s : plan.pair_steps) s += 1;
  plan.mask_slots = draw_distinct(seed, 2, params.mask_checks, uint64_t{params.openings} * 2);
  return plan;
}

}  // namespace cairn::sampling
