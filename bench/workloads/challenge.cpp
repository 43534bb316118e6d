// `cairn bench challenge`: the timing argument of the storage challenge
// (docs/proof-format.md "Parameters"). With the network's parameters:
//
//  - honest: a node walks its sealed replica (run_walk: S sequential chunk
//    reads from the store, two SHA-256 per step, the transcript tree) until
//    it holds the commitment it anchors. Baseline: the same S chunk reads as
//    raw pread() from a flat file of the same sealed bytes plus the same two
//    SHA-256 per step: what any walk over this data costs.
//  - no replica: a node that keeps the plain blobs and computes each step's
//    mask on demand (replica_mask_prefix up to the step's chunk, the least
//    work there is), per step. Baseline: the same mask computations alone.
//  - deadline = deadline_blocks * block_time_ms; the ratios of both walks to it.
//
// The store: the node's shards::Store (RocksDB), the sealed replica ingested
// through shards::ingest_committed with a sealing ReplicaTransform, read per
// step through the same ProverSource adapter a node uses (get_fragment, then
// the chunk). Its fragment values are kept inline in the SST files
// (StoreSettings::separate_fragment_values = false); the same walk over a
// store with the default, values in RocksDB blob files, is reported beside it.

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>

#include "bench.hpp"
#include "cairn/contracts/params_json.hpp"
#include "cairn/erasure/sha256.hpp"
#include "cairn/sampling/memory_replica.hpp"
#include "cairn/sampling/seal.hpp"
#include "cairn/sampling/walk.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/prover.hpp"
#include "cairn/shards/seal_transform.hpp"
#include "cairn/shards/store.hpp"

namespace cairn::bench {
namespace {

using Clock = std::chrono::steady_clock;

// 1,024 blobs: a 192 MiB sealed replica, three times the block cache, a
// quarter of a full default shard (4,096 blobs).
constexpr uint64_t kBlobs = 1024;
// Steps per no-replica measurement unit (the full walk would take seconds).
constexpr uint32_t kNoReplicaSteps = 64;

Result<std::unique_ptr<shards::Store>> open_store(const std::filesystem::path& dir,
                                                  const erasure::NetworkParams& params, bool blob_files) {
  shards::StoreSettings settings;
  settings.sync_writes = false;  // setup speed; reads are what is measured
  settings.separate_fragment_values = blob_files;
  return shards::Store::open(dir, params, settings);
}

// The raw baseline's data: the same sealed bytes in one flat file.
class FlatFile {
 public:
  explicit FlatFile(const std::filesystem::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
  }
  ~FlatFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  bool append(ByteSpan b) { return ::write(fd_, b.data(), b.size()) == static_cast<ssize_t>(b.size()); }
  bool read(uint64_t offset, MutableByteSpan out) const {
    return ::pread(fd_, out.data(), out.size(), static_cast<off_t>(offset)) == static_cast<ssize_t>(out.size());
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

double ms_of(double per_second) { return per_second > 0 ? 1000.0 / per_second : 0; }

Result<nlohmann::json> run_challenge(const Options& opts) {
  const erasure::NetworkParams params = erasure::NetworkParams::defaults();
  const uint32_t s_steps = params.walk_steps;
  const double deadline_ms = static_cast<double>(uint64_t{params.deadline_blocks} * params.block_time_ms);
  ScratchDir scratch(opts.work_dir, "challenge");
  auto codec = erasure::Codec::create(params);
  if (!codec) return tl::unexpected(codec.error());

  std::mt19937_64 rng(opts.seed);
  std::array<uint8_t, 32> seed{};
  for (auto& b : seed) b = static_cast<uint8_t>(rng());
  const SigningKey node = SigningKey::from_seed(seed);

  // Blobs, sealed for `node`, into two stores (values inline, values in
  // blob files) and the flat file; the plain encodings into a third store
  // for the node without a replica.
  sampling::BlobLog log;
  auto inline_store = open_store(scratch.path / "inline", params, false);
  auto blob_store = open_store(scratch.path / "blobfiles", params, true);
  auto plain_store = open_store(scratch.path / "plain", params, false);
  if (!inline_store) return tl::unexpected(inline_store.error());
  if (!blob_store) return tl::unexpected(blob_store.error());
  if (!plain_store) return tl::unexpected(plain_store.error());
  FlatFile flat(scratch.path / "replica.flat");
  if (!flat.ok()) return make_error(Errc::io_error, "bench challenge: cannot create the flat file");
  const size_t replica_bytes = size_t{params.total_fragments()} * params.fragment_size();
  const shards::SealingTransform seal(params, node.public_key());
  Bytes payload(params.blob_size), sealed;
  const auto setup_start = Clock::now();
  for (uint64_t i = 0; i < kBlobs; ++i) {
    for (size_t j = 0; j + 8 <= payload.size(); j += 8) put_be<uint64_t>(payload.data() + j, rng());
    auto blob = erasure::encode_and_commit(**codec, payload);
    if (!blob) return tl::unexpected(blob.error());
    const BlobIndex index = log.append(blob->commitment.id);
    auto stored = shards::ingest_committed(**plain_store, index, *blob);
    if (!stored) return tl::unexpected(stored.error());
    stored = shards::ingest_committed(**blob_store, index, *blob, &seal);
    if (!stored) return tl::unexpected(stored.error());
    sealed = blob->encoded.data;
    seal.to_stored(blob->commitment.id, index, sealed);
    if (!flat.append(sealed)) return make_error(Errc::io_error, "bench challenge: writing the flat file failed");
    stored = shards::ingest_committed(**inline_store, index, std::move(*blob), &seal);
    if (!stored) return tl::unexpected(stored.error());
  }
  for (auto* st : {&*inline_store, &*blob_store, &*plain_store}) CAIRN_TRY_STATUS((*st)->flush());
  const auto log_paths = [&log](BlobIndex index, BlockNumber, uint64_t tree_size) {
    return log.prove(index, tree_size);
  };
  shards::StoreProver inline_replica(**inline_store, node.public_key(), log_paths);
  shards::StoreProver blob_replica(**blob_store, node.public_key(), log_paths);
  shards::StoreProver plain_replica(**plain_store, node.public_key(), log_paths);
  const double setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();

  // A fresh epoch per walk (new randomness), so no walk repeats another's reads.
  auto next_challenge = [&]() {
    sampling::EpochChallenge c;
    c.params = params;
    c.shard = ShardId{0};
    c.epoch = Epoch{rng()};
    for (auto& b : c.randomness) b = static_cast<uint8_t>(rng());
    c.first_blob = BlobIndex{0};
    c.blob_count = kBlobs;
    c.blobs_root = *log.root(kBlobs);
    c.blobs_tree_size = kBlobs;
    return c;
  };

  // Honest walk through the store, until the commitment exists.
  Status failure;
  std::vector<double> honest_cpu_ms;
  auto walk_over = [&](sampling::ProverSource& store, std::vector<double>* cpu_ms) -> uint64_t {
    const double cpu0 = thread_cpu_seconds();
    auto t = sampling::run_walk(next_challenge(), node.public_key(), store);
    if (!t) {
      failure = tl::unexpected(t.error());
      return 1;
    }
    (void)t->commitment();
    if (cpu_ms != nullptr) cpu_ms->push_back((thread_cpu_seconds() - cpu0) * 1000.0);
    return 1;
  };
  Side honest{"cairn run_walk over a shards::Store (S reads, 2 SHA-256 per step, transcript tree)",
              [&]() { return walk_over(inline_replica, &honest_cpu_ms); }};
  // Raw: S pread()s at the walk's own positions and the same two hashes.
  Side raw_walk{"raw pread() of S 1 KiB chunks from a flat file + 2 SHA-256 per step", [&]() -> uint64_t {
                  const sampling::EpochChallenge c = next_challenge();
                  Hash32 state = sampling::initial_state(c, node.public_key());
                  const Hash32 state0 = state;
                  Bytes chunk(params.chunk_size);
                  for (uint32_t i = 1; i <= s_steps; ++i) {
                    const sampling::ChunkPosition p = sampling::step_position(c, state);
                    if (!flat.read(p.blob.value * replica_bytes + size_t{p.chunk} * params.chunk_size, chunk)) {
                      failure = make_error(Errc::io_error, "bench challenge: pread failed");
                    }
                    const Hash32 next = erasure::sha256({state0, state, chunk});
                    (void)erasure::sha256({state, chunk, next});
                    state = next;
                  }
                  return 1;
                }};
  auto [honest_stats, raw_walk_stats] = measure_pair(opts, honest, raw_walk);
  if (!failure) return tl::unexpected(failure.error());
  nlohmann::json result = pair_report("challenge", "walks/s", honest, honest_stats, raw_walk, raw_walk_stats, opts);

  // The same walk with fragment values in RocksDB blob files.
  Side honest_blob_files{"cairn run_walk over a shards::Store with its default blob-file values",
                         [&]() { return walk_over(blob_replica, nullptr); }};
  auto [blob_stats, raw_walk_stats2] = measure_pair(opts, honest_blob_files, raw_walk);
  if (!failure) return tl::unexpected(failure.error());

  // Opening (after the anchor; not on the deadline path).
  std::vector<double> open_ms;
  for (int i = 0; i < 3; ++i) {
    auto t = sampling::run_walk(next_challenge(), node.public_key(), inline_replica);
    if (!t) return tl::unexpected(t.error());
    Hash32 anchor{};
    for (auto& b : anchor) b = static_cast<uint8_t>(rng());
    const auto start = Clock::now();
    auto resp = sampling::open_response(*t, BlockNumber{1}, anchor, inline_replica, node);
    if (!resp) return tl::unexpected(resp.error());
    open_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }

  // No replica: plain data, each step's mask computed on demand.
  struct NoReplica {
    sampling::EpochChallenge c;
    Hash32 state0, state;
  } nr{next_challenge(), {}, {}};
  nr.state0 = nr.state = sampling::initial_state(nr.c, node.public_key());
  Bytes chunk(params.chunk_size), mask(params.chunk_size), plain_scratch;
  std::vector<sampling::ChunkPosition> positions;  // the steps the baseline repeats
  std::vector<double> no_replica_cpu_us;
  Side no_replica{"walk steps over plain data in a shards::Store, mask computed per step (replica_mask_prefix)",
                  [&]() -> uint64_t {
                    const double cpu0 = thread_cpu_seconds();
                    for (uint32_t i = 0; i < kNoReplicaSteps; ++i) {
                      const sampling::ChunkPosition p = sampling::step_position(nr.c, nr.state);
                      positions.push_back(p);
                      auto st = plain_replica.read_sealed_chunk(p, chunk);  // plain bytes here
                      if (!st) failure = st;
                      sampling::replica_chunk_mask(params, {node.public_key(), log.at(p.blob), p.blob}, p.chunk, mask,
                                                   plain_scratch);
                      for (size_t b = 0; b < chunk.size(); ++b) chunk[b] ^= mask[b];
                      const Hash32 next = erasure::sha256({nr.state0, nr.state, chunk});
                      (void)erasure::sha256({nr.state, chunk, next});
                      nr.state = next;
                    }
                    no_replica_cpu_us.push_back((thread_cpu_seconds() - cpu0) * 1e6 / kNoReplicaSteps);
                    return kNoReplicaSteps;
                  }};
  size_t raw_next = 0;
  Side raw_masks{"raw replica_mask_prefix for the same steps' chunks, nothing else", [&]() -> uint64_t {
                   for (uint32_t i = 0; i < kNoReplicaSteps; ++i) {
                     const sampling::ChunkPosition p =
                         positions.empty() ? sampling::ChunkPosition{} : positions[raw_next++ % positions.size()];
                     sampling::replica_chunk_mask(params, {node.public_key(), log.at(p.blob), p.blob}, p.chunk, mask,
                                                  plain_scratch);
                   }
                   return kNoReplicaSteps;
                 }};
  auto [nr_stats, raw_mask_stats] = measure_pair(opts, no_replica, raw_masks);
  if (!failure) return tl::unexpected(failure.error());

  // The cheapest step a node without its replica can take: the mask of chunk
  // 0 still needs seal_cost - 1 whole passes.
  std::vector<double> cheapest_us, cheapest_cpu_us;
  for (int r = 0; r < 5; ++r) {
    const auto start = Clock::now();
    const double cpu0 = thread_cpu_seconds();
    const int n = 50;
    for (int i = 0; i < n; ++i) {
      sampling::replica_chunk_mask(params, {node.public_key(), log.at(BlobIndex{uint64_t(i)}), BlobIndex{uint64_t(i)}},
                                   0, mask, plain_scratch);
    }
    cheapest_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count() / n);
    cheapest_cpu_us.push_back((thread_cpu_seconds() - cpu0) * 1e6 / n);
  }

  const double honest_ms = ms_of(honest_stats.median);
  const double blob_files_ms = ms_of(blob_stats.median);
  const double step_us = nr_stats.median > 0 ? 1e6 / nr_stats.median : 0;
  const double no_replica_ms = step_us * s_steps / 1000.0;
  const double floor_ms = median(cheapest_us) * s_steps / 1000.0;
  result["store"] =
      "shards::Store (RocksDB), sealed by a ReplicaTransform on ingest, read through get_fragment; fragment "
      "values inline in SST files (separate_fragment_values = false), default 64 MiB block cache";
  result["blobs"] = kBlobs;
  result["replica_mib"] = static_cast<double>(kBlobs * replica_bytes) / (1 << 20);
  result["setup_seconds"] = setup_s;
  result["params"] = contracts::params_to_json(params);
  result["deadline_ms"] = deadline_ms;
  result["honest_walk_ms"] = honest_ms;
  result["honest_over_deadline"] = honest_ms / deadline_ms;
  result["honest_step_us"] = honest_ms * 1000.0 / s_steps;
  result["honest_blob_files"] = {{"walk_ms", blob_files_ms},
                                 {"over_deadline", blob_files_ms / deadline_ms},
                                 {"rounds", blob_stats.per_second},
                                 {"raw_walk_ms", ms_of(raw_walk_stats2.median)}};
  result["openings_ms"] = median(open_ms);
  result["no_replica"] =
      pair_report("challenge/no-replica", "steps/s", no_replica, nr_stats, raw_masks, raw_mask_stats, opts);
  result["no_replica_step_us"] = step_us;
  result["no_replica_walk_ms"] = no_replica_ms;
  result["no_replica_over_deadline"] = no_replica_ms / deadline_ms;
  result["cheapest_step_us"] = median(cheapest_us);
  result["no_replica_floor_ms"] = floor_ms;
  result["no_replica_floor_over_deadline"] = floor_ms / deadline_ms;
  result["no_replica_over_honest"] = honest_ms > 0 ? no_replica_ms / honest_ms : 0;
  // The same medians in thread CPU time: the walks on a core of their own.
  const double cpu_honest_ms = median(honest_cpu_ms);
  const double cpu_step_us = median(no_replica_cpu_us);
  const double cpu_cheapest_us = median(cheapest_cpu_us);
  result["cpu"] = {{"honest_walk_ms", cpu_honest_ms},
                   {"honest_over_deadline", cpu_honest_ms / deadline_ms},
                   {"no_replica_step_us", cpu_step_us},
                   {"no_replica_walk_ms", cpu_step_us * s_steps / 1000.0},
                   {"no_replica_over_deadline", cpu_step_us * s_steps / 1000.0 / deadline_ms},
                   {"cheapest_step_us", cpu_cheapest_us},
                   {"no_replica_floor_over_deadline", cpu_cheapest_us * s_steps / 1000.0 / deadline_ms}};
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) result["load_average"] = {load[0], load[1], load[2]};
  return result;
}

}  // namespace

Workload challenge_workload() {
  return {"challenge",
          "storage challenge walk: honest (sealed replica in RocksDB) and without a replica, vs the deadline",
          run_challenge};
}

}  // namespace cairn::bench
