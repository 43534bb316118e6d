// `cairn bench verify`: what checking storage challenges costs a verifier.
// An epoch of the dev chain is played for real (8 nodes register and hold
// sealed replicas of 32 blobs, walk, anchor with SubmitResponse, open with
// the anchor block's randomness) and its replica-count proof assembled.
//
//  - ours: verify_response() of one response (signature, 2 * openings
//    opened steps with their transcript, chunk and blobs_root paths, and
//    mask_checks mask recomputations);
//  - baseline: the mask_checks replica_mask_prefix computations of the same
//    response alone: the part no verifier of this construction can skip.
// Also reported: the whole proof's verification time and its bytes per
// replica.

#include <chrono>
#include <cstdlib>
#include <random>

#include "bench.hpp"
#include "cairn/contracts/devchain.hpp"
#include "cairn/contracts/params_json.hpp"
#include "cairn/contracts/tx.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/sampling/assemble.hpp"
#include "cairn/sampling/memory_replica.hpp"
#include "cairn/sampling/seal.hpp"
#include "mask_checks.hpp"

namespace cairn::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kNodes = 8;
constexpr size_t kBlobs = 32;

SigningKey key_from(std::mt19937_64& rng) {
  std::array<uint8_t, 32> seed{};
  for (auto& b : seed) b = static_cast<uint8_t>(rng());
  return SigningKey::from_seed(seed);
}

// One epoch of the dev chain with kNodes honest nodes: its proof.
struct PlayedEpoch {
  contracts::ChainInfo chain;
  sampling::EpochChallenge challenge;
  sampling::ReplicaProof proof;
  std::vector<Hash32> anchor_randomness;  // per entry
};

Result<PlayedEpoch> play_epoch(const Options& opts, const std::filesystem::path& dir) {
  const erasure::NetworkParams params = erasure::NetworkParams::defaults();
  std::mt19937_64 rng(opts.seed);
  contracts::DevChainSettings settings;
  settings.db_path = (dir / "chain").string();
  settings.sync_writes = false;
  auto time = std::make_shared<contracts::ManualTime>(1'700'000'000'000);
  auto opened = contracts::DevChain::open(settings, key_from(rng), params, time);
  if (!opened) return tl::unexpected(opened.error());
  contracts::DevChain& chain = **opened;
  const Hash32 chain_id = chain.info().chain_id;
  auto block = [&]() {
    time->advance(params.block_time_ms);
    return chain.produce_block();
  };
  auto paths = [&chain](BlobIndex i, BlockNumber b, uint64_t) -> Result<erasure::MerkleProof> {
    auto inc = chain.blob_inclusion(i, b);
    if (!inc) return tl::unexpected(inc.error());
    return inc->proof;
  };

  std::vector<SigningKey> keys;
  std::vector<std::unique_ptr<sampling::MemoryReplica>> replicas;
  for (size_t i = 0; i < kNodes; ++i) {
    keys.push_back(key_from(rng));
    replicas.push_back(std::make_unique<sampling::MemoryReplica>(params, keys.back().public_key(), paths));
    auto h = chain.submit(contracts::make_register_node(keys.back(), chain_id, 1, "127.0.0.1:9000", {ShardId{0}}));
    if (!h) return tl::unexpected(h.error());
  }
  auto codec = erasure::Codec::create(params);
  if (!codec) return tl::unexpected(codec.error());
  const SigningKey uploader = key_from(rng);
  std::vector<erasure::CommittedBlob> blobs;
  for (size_t i = 0; i < kBlobs; ++i) {
    Bytes payload(params.blob_size);
    for (auto& b : payload) b = static_cast<uint8_t>(rng());
    auto c = erasure::encode_and_commit(**codec, payload);
    if (!c) return tl::unexpected(c.error());
    blobs.push_back(std::move(*c));
    auto h =
        chain.submit(contracts::make_put_blob(uploader, chain_id, i + 1, blobs.back().commitment.id, params.blob_size));
    if (!h) return tl::unexpected(h.error());
  }
  CAIRN_TRY_STATUS(block());
  for (auto& r : replicas) {
    for (size_t i = 0; i < kBlobs; ++i) r->add(BlobIndex{i}, blobs[i]);
  }
  const Epoch epoch{1};
  while (chain.head()->number.value < params.epoch_blocks) CAIRN_TRY_STATUS(block());
  auto start = chain.header(BlockNumber{params.epoch_blocks});
  if (!start) return tl::unexpected(start.error());
  auto challenge = sampling::make_epoch_challenge(params, ShardId{0}, epoch, *start);
  if (!challenge) return tl::unexpected(challenge.error());

  std::vector<sampling::WalkTranscript> walks;
  for (size_t i = 0; i < kNodes; ++i) {
    auto t = sampling::run_walk(*challenge, keys[i].public_key(), *replicas[i]);
    if (!t) return tl::unexpected(t.error());
    auto h = chain.submit(contracts::make_submit_response(keys[i], chain_id, 2, ShardId{0}, epoch, t->commitment()));
    if (!h) return tl::unexpected(h.error());
    walks.push_back(std::move(*t));
  }
  auto anchor = block();
  if (!anchor) return tl::unexpected(anchor.error());
  const Hash32 randomness = contracts::block_randomness(anchor->hash());
  std::vector<sampling::AnchoredResponse> candidates;
  for (size_t i = 0; i < kNodes; ++i) {
    auto resp = sampling::open_response(walks[i], anchor->number, randomness, *replicas[i], keys[i]);
    if (!resp) return tl::unexpected(resp.error());
    auto inc = chain.response_inclusion(keys[i].public_key(), ShardId{0}, epoch);
    if (!inc) return tl::unexpected(inc.error());
    candidates.push_back({std::move(*resp), std::move(inc->proof)});
  }
  while (chain.head()->number.value < params.epoch_blocks + params.deadline_blocks) CAIRN_TRY_STATUS(block());
  auto headers = chain.headers(BlockNumber{params.epoch_blocks}, params.deadline_blocks + 1);
  if (!headers) return tl::unexpected(headers.error());
  auto assembled = sampling::assemble_replica_proof(chain.info(), ShardId{0}, epoch, *headers, candidates);
  if (!assembled) return tl::unexpected(assembled.error());
  if (assembled->proof.entries.size() != kNodes) {
    return make_error(Errc::internal, "bench verify: only " + std::to_string(assembled->proof.entries.size()) + " of " +
                                          std::to_string(kNodes) + " responses verified");
  }
  PlayedEpoch out{chain.info(), *challenge, std::move(assembled->proof), {}};
  out.anchor_randomness.assign(kNodes, randomness);
  return out;
}

Result<nlohmann::json> run_verify(const Options& opts) {
  ScratchDir scratch(opts.work_dir, "verify");
  const auto setup_start = Clock::now();
  auto played = play_epoch(opts, scratch.path);
  if (!played) return tl::unexpected(played.error());
  const double setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();
  const PlayedEpoch& e = *played;
  const erasure::NetworkParams& params = e.challenge.params;

  Status failure;
  size_t next = 0;
  std::vector<double> ours_cpu_ms, base_cpu_ms;
  Side ours{"cairn verify_response: signature, 2t opened steps with 3 Merkle paths each, q mask checks",
            [&]() -> uint64_t {
              const double cpu0 = thread_cpu_seconds();
              const size_t i = next++ % e.proof.entries.size();
              auto st = sampling::verify_response(e.challenge, e.proof.entries[i].response, e.anchor_randomness[i]);
              if (!st) failure = st;
              ours_cpu_ms.push_back((thread_cpu_seconds() - cpu0) * 1000.0);
              return 1;
            }};
  std::vector<MaskChecks> checks;
  for (size_t i = 0; i < e.proof.entries.size(); ++i) {
    checks.push_back(mask_checks_of(e.challenge, e.proof.entries[i].response, e.anchor_randomness[i]));
  }
  size_t base_next = 0;
  Bytes mask(params.chunk_size), scratch_mask;
  Side baseline{"raw replica_mask_prefix for the same response's q checked chunks", [&]() -> uint64_t {
                  const double cpu0 = thread_cpu_seconds();
                  for (const auto& [key, chunk] : checks[base_next++ % checks.size()]) {
                    sampling::replica_chunk_mask(params, key, chunk, mask, scratch_mask);
                  }
                  base_cpu_ms.push_back((thread_cpu_seconds() - cpu0) * 1000.0);
                  return 1;
                }};
  auto [ours_stats, base_stats] = measure_pair(opts, ours, baseline);
  if (!failure) return tl::unexpected(failure.error());
  nlohmann::json result = pair_report("verify", "responses/s", ours, ours_stats, baseline, base_stats, opts);

  // The whole proof: decode and verify, under the sequencer key.
  const Bytes file = e.proof.encode();
  std::vector<double> proof_ms;
  for (int r = 0; r < opts.rounds; ++r) {
    const auto start = Clock::now();
    auto report = sampling::verify_replica_proof(file, sampling::TrustRoot::key(e.chain.sequencer));
    proof_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (!report) return tl::unexpected(report.error());
    if (report->replicas() != kNodes) return make_error(Errc::internal, "bench verify: wrong replica count");
  }
  const double per_response_ms = ours_stats.median > 0 ? 1000.0 / ours_stats.median : 0;
  const double masks_ms = base_stats.median > 0 ? 1000.0 / base_stats.median : 0;
  size_t response_bytes = 0;
  for (const auto& entry : e.proof.entries) response_bytes += entry.response.encode().size();
  result["setup_seconds"] = setup_s;
  result["params"] = contracts::params_to_json(params);
  result["params"]["blobs"] = kBlobs;
  result["ms_per_response"] = per_response_ms;
  result["mask_checks_ms"] = masks_ms;
  result["paths_and_signature_ms"] = per_response_ms - masks_ms;
  result["replicas"] = kNodes;
  result["proof_bytes"] = file.size();
  result["proof_bytes_per_replica"] = static_cast<double>(file.size()) / kNodes;
  result["response_bytes"] = static_cast<double>(response_bytes) / kNodes;
  result["proof_verify_ms"] = median(proof_ms);
  // Thread CPU time: the same work on a core of its own (the machine is shared).
  result["cpu"] = {{"ms_per_response", median(ours_cpu_ms)},
                   {"mask_checks_ms", median(base_cpu_ms)},
                   {"paths_and_signature_ms", median(ours_cpu_ms) - median(base_cpu_ms)}};
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) result["load_average"] = {load[0], load[1], load[2]};
  return result;
}

}  // namespace

Workload verify_workload() {
  return {"verify", "checking challenge responses and a replica-count proof (8 replicas) vs the raw mask checks",
          run_verify};
}

}  // namespace cairn::bench
