// `cairn bench chain`: PutBlob transactions per second through the dev chain
// with persistence, against raw RocksDB batch writes of the same records.
//
// Ours, per round unit (one block of kBlockTxs transactions, signed before
// measuring): admission with ed25519 verification on the chain's verify
// threads, contract apply (index assignment, blobs_root), block header and
// sequencer signature, and the block's RocksDB write batch (header, body,
// receipts, head) with fsync. Baseline: the same keys and value sizes
// written as one RocksDB WriteBatch per block with the same options and
// fsync, nothing else.

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

#include "bench.hpp"
#include "cairn/contracts/devchain.hpp"
#include "cairn/contracts/tx.hpp"

namespace cairn::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Transactions per block: 10,000 PutBlob/s at a 500 ms block time.
constexpr size_t kBlockTxs = 5000;
constexpr size_t kUploaders = 16;
// Cap on pre-signed transactions (~170 bytes each in memory).
constexpr size_t kMaxPresigned = 1'500'000;

struct ScratchDir {
  std::filesystem::path path;
  bool owned = false;
  explicit ScratchDir(const std::string& requested) {
    if (!requested.empty()) {
      path = std::filesystem::path(requested) / "bench-chain";
      std::filesystem::remove_all(path);
      std::filesystem::create_directories(path);
      return;
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-bench-chain-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
    owned = true;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (owned) std::filesystem::remove_all(path, ec);
  }
};

// Signs PutBlobs of fresh random commitments, round-robin over uploaders,
// on all hardware threads (outside any measurement).
class Signer {
 public:
  Signer(uint64_t seed, const Hash32& chain_id) : rng_(seed), chain_id_(chain_id) {
    for (size_t i = 0; i < kUploaders; ++i) {
      std::array<uint8_t, 32> s{};
      for (auto& b : s) b = static_cast<uint8_t>(rng_());
      keys_.push_back(SigningKey::from_seed(s));
    }
    nonces_.assign(kUploaders, 0);
  }

  std::vector<Bytes> sign(size_t n) {
    struct Job {
      size_t key;
      uint64_t nonce;
      BlobId id;
      uint32_t size;
    };
    std::vector<Job> jobs(n);
    for (size_t i = 0; i < n; ++i) {
      const size_t k = next_key_++ % kUploaders;
      jobs[i].key = k;
      jobs[i].nonce = ++nonces_[k];
      for (auto& b : jobs[i].id.bytes) b = static_cast<uint8_t>(rng_());
      jobs[i].size = static_cast<uint32_t>(1 + rng_() % 131072);
    }
    std::vector<Bytes> out(n);
    const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (size_t i = t; i < n; i += threads) {
          out[i] = contracts::make_put_blob(keys_[jobs[i].key], chain_id_, jobs[i].nonce, jobs[i].id, jobs[i].size);
        }
      });
    }
    for (auto& th : pool) th.join();
    return out;
  }

 private:
  std::mt19937_64 rng_;
  Hash32 chain_id_;
  std::vector<SigningKey> keys_;
  std::vector<uint64_t> nonces_;
  size_t next_key_ = 0;
};

rocksdb::Options baseline_options() {
  // The dev chain store's options (contracts/chain_store.cpp).
  rocksdb::Options o;
  o.create_if_missing = true;
  o.paranoid_checks = true;
  o.write_buffer_size = 64 << 20;
  o.max_background_jobs = 2;
  return o;
}

// The records one block of these transactions writes, keyed so that every
// baseline batch writes fresh keys.
struct BlockRecords {
  std::vector<std::pair<std::string, std::string>> receipts;  // "T" || tx hash
  std::string header, body, head;
};

BlockRecords records_like(const std::vector<Bytes>& txs, uint64_t first_index) {
  BlockRecords r;
  std::vector<ByteSpan> spans;
  for (size_t i = 0; i < txs.size(); ++i) {
    const auto tx = *contracts::Transaction::decode(txs[i]);
    const auto& put = std::get<contracts::PutBlob>(tx.body);
    contracts::Receipt rc;
    rc.tx_hash = contracts::tx_hash(txs[i]);
    rc.block = BlockNumber{1};
    rc.position = static_cast<uint32_t>(i);
    rc.kind = contracts::TxKind::put_blob;
    rc.blob_index = BlobIndex{first_index + i};
    rc.events.emplace_back(contracts::BlobRegistered{*rc.blob_index, put.commitment, put.size});
    const Bytes v = rc.encode();
    std::string key(1, 'T');
    key.append(reinterpret_cast<const char*>(rc.tx_hash.data()), rc.tx_hash.size());
    r.receipts.emplace_back(std::move(key), std::string(v.begin(), v.end()));
    spans.push_back(txs[i]);
  }
  size_t body = 4;
  for (ByteSpan s : spans) body += 2 + s.size();
  r.body.assign(body, 'b');
  r.header.assign(contracts::kHeaderBytes, 'h');
  r.head.assign(8, 'n');
  return r;
}

Result<nlohmann::json> run(const Options& opts) {
  ScratchDir scratch(opts.work_dir);
  const SigningKey sequencer = SigningKey::from_seed(std::array<uint8_t, 32>{7});
  contracts::DevChainSettings settings;
  settings.db_path = (scratch.path / "chain").string();
  settings.max_block_txs = kBlockTxs;
  settings.max_mempool_txs = 4 * kBlockTxs;
  settings.sync_writes = true;
  auto opened = contracts::DevChain::open(settings, sequencer, erasure::NetworkParams::defaults());
  if (!opened) return tl::unexpected(opened.error());
  contracts::DevChain& chain = **opened;
  Signer signer(opts.seed, chain.info().chain_id);

  std::vector<Bytes> pool;
  size_t next = 0;
  uint64_t signed_while_measuring = 0;
  double submit_seconds = 0, produce_seconds = 0;
  uint64_t blocks = 0;
  std::string failure;

  auto take_batch = [&]() -> std::span<const Bytes> {
    if (pool.size() - next < kBlockTxs) {
      // Only when the pre-signed pool ran dry; reported in the output.
      auto more = signer.sign(kBlockTxs);
      signed_while_measuring += kBlockTxs;
      pool.insert(pool.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    }
    const std::span<const Bytes> batch(pool.data() + next, kBlockTxs);
    next += kBlockTxs;
    return batch;
  };
  auto admit = [&](std::span<const Bytes> batch) {
    const auto t0 = Clock::now();
    for (const auto& r : chain.submit_many(batch)) {
      if (!r && failure.empty()) failure = r.error().to_string();
    }
    submit_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  };
  // One block: the next batch is verified and admitted on a helper thread
  // while the already admitted one is applied, sealed and persisted, as RPC
  // admission overlaps block production in a running chain.
  bool primed = false;
  auto one_block = [&]() -> uint64_t {
    if (!primed) {
      admit(take_batch());
      primed = true;
    }
    const std::span<const Bytes> ahead = take_batch();
    std::thread helper([&, ahead] { admit(ahead); });
    const auto t1 = Clock::now();
    auto h = chain.produce_block();
    produce_seconds += std::chrono::duration<double>(Clock::now() - t1).count();
    helper.join();
    if (!h && failure.empty()) failure = h.error().to_string();
    if (h && h->tx_count != kBlockTxs && failure.empty()) {
      failure = "block held " + std::to_string(h->tx_count) + " transactions, expected " + std::to_string(kBlockTxs);
    }
    ++blocks;
    // Free what is sealed so the pool does not hold every round's bytes.
    for (size_t i = next - 2 * kBlockTxs; i < next - kBlockTxs; ++i) Bytes().swap(pool[i]);
    return kBlockTxs;
  };

  // Calibrate: a steady-state block (after the one that primes the
  // pipeline) tells how many transactions the rounds will need.
  pool = signer.sign(3 * kBlockTxs);
  one_block();
  const auto c0 = Clock::now();
  one_block();
  const double calib_rate = kBlockTxs / std::chrono::duration<double>(Clock::now() - c0).count();
  if (!failure.empty()) return make_error(Errc::internal, "bench chain: " + failure);
  const double needed = calib_rate * opts.round_seconds * (opts.rounds + 1) * 2 + 2 * kBlockTxs;
  const size_t presign = std::min(kMaxPresigned, static_cast<size_t>(needed));
  {
    auto more = signer.sign(presign);
    pool.insert(pool.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  submit_seconds = produce_seconds = 0;
  blocks = 0;

  // Baseline: raw RocksDB, same records, same options, fsync per batch.
  rocksdb::DB* raw_db = nullptr;
  const std::string baseline_path = (scratch.path / "baseline").string();
  rocksdb::Status s = rocksdb::DB::Open(baseline_options(), baseline_path, &raw_db);
  if (!s.ok()) return make_error(Errc::io_error, "bench chain: baseline RocksDB: " + s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw_db);
  const BlockRecords records = records_like(signer.sign(kBlockTxs), 0);
  uint64_t batch_no = 0;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::string key;
  Side baseline{"rocksdb WriteBatch of the same records, fsync per block", [&]() -> uint64_t {
                  ++batch_no;
                  rocksdb::WriteBatch batch;
                  auto number_key = [&](char prefix) {
                    std::string k(9, prefix);
                    put_be<uint64_t>(reinterpret_cast<uint8_t*>(k.data() + 1), batch_no);
                    return k;
                  };
                  batch.Put(number_key('H'), records.header);
                  batch.Put(number_key('B'), records.body);
                  for (const auto& [k, v] : records.receipts) {
                    key = k;
                    // Fresh keys each batch without rehashing: stamp the batch number in.
                    put_be<uint64_t>(reinterpret_cast<uint8_t*>(key.data() + 1), batch_no);
                    batch.Put(key, v);
                  }
                  batch.Put("N", records.head);
                  rocksdb::Status st = db->Write(wo, &batch);
                  if (!st.ok() && failure.empty()) failure = st.ToString();
                  return records.receipts.size();
                }};
  Side ours{"dev chain: verify + admit (next block) || apply + seal + RocksDB fsync (this block)", one_block};

  auto [ours_stats, baseline_stats] = measure_pair(opts, ours, baseline);
  if (!failure.empty()) return make_error(Errc::internal, "bench chain: " + failure);

  nlohmann::json report =
      pair_report("chain", "PutBlob transactions/s", ours, ours_stats, baseline, baseline_stats, opts);
  report["block_txs"] = kBlockTxs;
  report["uploaders"] = kUploaders;
  report["verify_threads"] = std::max(1u, std::thread::hardware_concurrency());
  report["fsync_per_block"] = true;
  report["blocks_measured"] = blocks;
  // Where the time goes (the two overlap; each is its own wall time).
  report["admission_per_second"] = submit_seconds > 0 ? static_cast<double>(blocks * kBlockTxs) / submit_seconds : 0;
  report["apply_seal_persist_per_second"] =
      produce_seconds > 0 ? static_cast<double>(blocks * kBlockTxs) / produce_seconds : 0;
  report["presigned"] = presign + 3 * kBlockTxs;
  report["signed_during_measurement"] = signed_while_measuring;
  report["target_per_second"] = 10000;
  report["meets_target"] = ours_stats.median >= 10000;
  report["chain_blocks"] = chain.head()->number.value;
  return report;
}

}  // namespace

Workload chain_workload() {
  return Workload{"chain",
                  "dev chain PutBlob tx/s with persistence (verify, apply, seal, RocksDB) vs raw "
                  "RocksDB batch writes of the same records",
                  run};
}

}  // namespace cairn::bench
