// `cairn bench e2e`: a 6-node, 2-shard localnet of real processes (this
// very binary: `cairn devchain` plus six `cairn node`s with their config
// files, docs/localnet.md), driven through the HTTP API like any client,
// against raw baselines measured in the same run:
//   - upload: 3 concurrent POST /v1/files of fresh incompressible 8 MiB
//     files, each through another node, acknowledged once min_replicas (2)
//     sealed replicas are stored. Baseline: raw RocksDB writes of one
//     replica's fragments of the same payload bytes (raw_rocksdb.hpp, the
//     store's options), one writer.
//   - download: 3 concurrent GET /v1/files/<id> of those files, each
//     through another node of the other shard, which holds none of their
//     blobs and fetches every one from shard 0's nodes over encrypted TCP.
//     Baseline: the same bytes over one raw loopback TCP stream
//     (raw_tcp.hpp).
//   - propagation: POST of a one-blob file (64 KiB) through a node of the
//     shard being filled, until every node of that shard reports a replica
//     from each of the shard's nodes (the announce gossip, the pulls and
//     the stored notices gossiped back to every node). Includes the wait
//     for the registration block (block_time_ms). Baseline: the same bytes
//     sent over raw loopback TCP to each of the shard's other two nodes and
//     acknowledged (one hop each, the least any replication can cost).
// MB/s is payload bytes per second; propagation is ms per blob (lower is
// better, ratio = ours / baseline).
//   - proof verification: the replica-count proof of shard 0 at the latest
//     finished epoch, fetched from a node of the shard over the API, checked
//     with the verifier `cairn verify` runs (header chain, every response's
//     signature, openings, paths and mask checks) under the sequencer key.
//     Baseline: the raw mask computations verification cannot avoid: the
//     proof's own q mask checks per response (mask_checks.hpp).

#include <httplib.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <random>
#include <thread>

#include "bench.hpp"
#include "cairn/contracts/params_json.hpp"
#include "cairn/erasure/params.hpp"
#include "cairn/sampling/proof.hpp"
#include "cairn/sampling/seal.hpp"
#include "localnet/localnet.hpp"
#include "mask_checks.hpp"
#include "node/settings.hpp"
#include "node_bench.hpp"
#include "raw_tcp.hpp"

namespace cairn::bench {
namespace {

constexpr uint32_t kNodes = 6;
constexpr uint32_t kShards = 2;
constexpr size_t kFileBytes = size_t{8} << 20;
// Concurrent transfers: one client per node of a shard, as several users
// would, so the figure is the network's throughput, not one stream's
// latency-bound rate.
constexpr size_t kStreams = 3;
constexpr size_t kProbeBytes = size_t{64} << 10;
// Shards hold 4096 blobs here (the default network's size, not the
// localnet preset's 256): every upload of a run (512 MiB fit) lands in
// shard 0, so the nodes of shard 1 hold none of it and read it all over
// the network.
constexpr uint64_t kBlobsPerShard = 4096;

std::string self_binary() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw SideFailed(Error{Errc::io_error, "cannot resolve /proc/self/exe: " + ec.message()});
  return p.string();
}

// A localnet for the length of the bench: down (every process stopped) on
// every exit path.
struct BenchNet {
  localnet::State state;
  std::filesystem::path dir;
  ~BenchNet() { (void)localnet::down(dir); }
};

// A JSON object from the API; an empty object when the node does not
// answer 200 with one.
nlohmann::json get_json(uint16_t port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10);
  auto r = c.Get(path);
  if (!r || r->status != 200) return nlohmann::json::object();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

// Uploads `bytes` through the node on `port`; the file id.
std::string upload(uint16_t port, ByteSpan bytes) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(300);
  c.set_write_timeout(300);
  auto r = c.Post("/v1/files?compress=never", reinterpret_cast<const char*>(bytes.data()), bytes.size(),
                  "application/octet-stream");
  if (!r)
    throw SideFailed(Error{Errc::io_error, "upload to port " + std::to_string(port) + ": " + to_string(r.error())});
  if (r->status != 201 && r->status != 200) {
    throw SideFailed(Error{Errc::io_error, "upload to port " + std::to_string(port) + ": HTTP " +
                                               std::to_string(r->status) + " " + r->body});
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string()) {
    throw SideFailed(Error{Errc::io_error, "upload answer without id: " + r->body});
  }
  return j["id"].get<std::string>();
}

// Runs `one(k)` for k in [0, kStreams) on as many threads; their results,
// or the first failure rethrown.
std::vector<std::string> concurrently(const std::function<std::string(size_t)>& one) {
  std::vector<std::string> out(kStreams);
  std::vector<std::optional<Error>> errors(kStreams);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < kStreams; ++k) {
    threads.emplace_back([&, k] {
      try {
        out[k] = one(k);
      } catch (const SideFailed& e) {
        errors[k] = e.error;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) throw SideFailed(*e);
  }
  return out;
}

// Per-round rates of one-unit-per-call sides as milliseconds per unit.
void rates_to_ms(SideStats& s) {
  for (double& v : s.per_second) v = v > 0 ? 1000.0 / v : 0.0;
  s.median = median(s.per_second);
}

// The proof verification pair (see the header comment), as ms per proof.
nlohmann::json measure_proof_verify(const Options& opts, const localnet::State& state, const std::string& blob) {
  const localnet::NodeRecord* holder = nullptr;
  for (const auto& n : state.nodes) {
    if (n.shard == 0) {
      holder = &n;
      break;
    }
  }
  if (holder == nullptr) throw SideFailed(Error{Errc::internal, "bench e2e: no node serves shard 0"});
  const auto seq = NodeId::from_hex(state.sequencer);
  if (!seq) throw SideFailed(Error{Errc::internal, "bench e2e: the localnet state has no sequencer key"});
  // The latest proof once it counts every node of the shard (epochs that
  // ran beside the upload rounds may have left a starved node out), or the
  // fullest seen within 90 s.
  size_t shard_nodes = 0;
  for (const auto& n : state.nodes) shard_nodes += n.shard == 0 ? 1 : 0;
  Bytes file;
  std::optional<sampling::ReplicaProof> proof;
  std::string last_answer;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < give_up && (!proof || proof->entries.size() < shard_nodes)) {
    httplib::Client c("127.0.0.1", holder->api_port);
    c.set_read_timeout(30);
    auto r = c.Get("/v1/proofs/latest?blob=" + blob);
    last_answer = r ? std::to_string(r->status) + " " + r->body.substr(0, 200) : to_string(r.error());
    if (r && r->status == 200) {
      Bytes got(r->body.begin(), r->body.end());
      auto decoded = sampling::ReplicaProof::decode(got);
      if (!decoded) throw SideFailed(decoded.error());
      if (!proof || decoded->entries.size() > proof->entries.size()) {
        proof = std::move(*decoded);
        file = std::move(got);
      }
    }
    if (!proof || proof->entries.size() < shard_nodes) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!proof) {
    throw SideFailed(
        Error{Errc::timeout, "no replica-count proof from " + holder->api_url() + " within 90 s: " + last_answer});
  }
  const auto trust = sampling::TrustRoot::key(*seq);
  uint32_t replicas = 0;
  Side ours{"cairn verify's verifier on the fetched proof (sequencer key)", [&]() -> uint64_t {
              auto report = sampling::verify_replica_proof(file, trust);
              if (!report) throw SideFailed(report.error());
              replicas = report->replicas();
              return 1;
            }};
  const erasure::NetworkParams& params = proof->params;
  auto checks = proof_mask_checks(*proof);
  if (!checks) throw SideFailed(checks.error());
  Bytes mask(params.chunk_size), scratch;
  Side baseline{"raw replica_chunk_mask: the proof's own q mask checks per response", [&]() -> uint64_t {
                  for (const auto& [key, chunk] : *checks)
                    sampling::replica_chunk_mask(params, key, chunk, mask, scratch);
                  return 1;
                }};
  auto [o, b] = measure_pair(opts, ours, baseline);
  rates_to_ms(o);
  rates_to_ms(b);
  auto j = pair_report("e2e", "ms", ours, o, baseline, b, opts);
  for (const char* k : {"workload", "rounds", "round_seconds"}) j.erase(k);
  j["replicas"] = replicas;
  j["responses"] = proof->entries.size();
  j["mask_checks"] = checks->size();
  j["proof_bytes"] = file.size();
  j["epoch"] = proof->epoch.value;
  return j;
}

Result<nlohmann::json> run_e2e(const Options& opts) {
  return run_guarded([&]() -> Result<nlohmann::json> {
    WorkDir scratch(opts.work_dir, "e2e");
    localnet::Settings s;
    s.dir = scratch.path() / "localnet";
    s.binary = self_binary();
    s.nodes = kNodes;
    s.shards = kShards;
    s.genesis.block_time_ms = 100;
    s.genesis.blobs_per_shard = kBlobsPerShard;
    // 4 s epochs with a 3 s response window: the challenge walks run, but
    // not every 0.8 s on six nodes sharing the machine with the measurement
    // (as in the e2e tests).
    s.genesis.epoch_blocks = 40;
    s.genesis.deadline_blocks = 30;
    s.ready_timeout = std::chrono::seconds(120);
    BenchNet net{{}, s.dir};
    auto up = localnet::up(s);
    if (!up) return tl::unexpected(up.error());
    net.state = *up;
    const auto& nodes = net.state.nodes;
    auto status = get_json(nodes[0].api_port, "/v1/status");
    if (!status.contains("chain")) return make_error(Errc::io_error, "node0 gives no status");
    auto node_params = contracts::params_from_json(
        status.value("chain", nlohmann::json::object()).value("params", nlohmann::json::object()));
    if (!node_params) return tl::unexpected(node_params.error());
    auto params = *node_params;
    params.blobs_per_shard = kBlobsPerShard;

    // ---- upload: kStreams at once, each through another node ----
    std::vector<std::unique_ptr<UniqueContent>> contents;
    for (size_t k = 0; k < kStreams; ++k)
      contents.push_back(std::make_unique<UniqueContent>(kFileBytes, opts.seed + k));
    std::vector<std::string> uploaded;
    size_t turn = 0;
    Side ours_put{std::to_string(kStreams) +
                      " concurrent POST /v1/files of 8 MiB, each through another node, "
                      "acknowledged at 2 sealed replicas",
                  [&]() -> uint64_t {
                    const auto ids = concurrently([&](size_t k) {
                      return upload(nodes[(turn + k) % nodes.size()].api_port, contents[k]->next(params.blob_size));
                    });
                    turn += kStreams;
                    uploaded.insert(uploaded.end(), ids.begin(), ids.end());
                    return kStreams * kFileBytes;
                  }};
    RawSide raw(scratch.path() / "raw", params, shards::StoreSettings{}, baseline_replicas(params, opts.seed));
    Side raw_put{"raw RocksDB: batch of n fragment-sized puts per blob, one replica", [&] { return raw.run_once(); }};
    auto [put_ours, put_raw] = measure_pair(opts, ours_put, raw_put);
    scale(put_ours, 1e-6);
    scale(put_raw, 1e-6);

    // ---- download: kStreams at once through the nodes of the shard that holds none of it ----
    // Every upload landed in shard 0 (it holds kBlobsPerShard blobs).
    std::vector<const localnet::NodeRecord*> readers;
    for (const auto& n : nodes) {
      if (n.shard == 1) readers.push_back(&n);
    }
    size_t next_file = 0;
    Side ours_get{std::to_string(kStreams) +
                      " concurrent GET /v1/files/<id> of 8 MiB, each through another node "
                      "of the other shard (every blob fetched from peers)",
                  [&]() -> uint64_t {
                    concurrently([&](size_t k) {
                      const auto* reader = readers[k % readers.size()];
                      const std::string& id = uploaded[(next_file + k) % uploaded.size()];
                      httplib::Client c("127.0.0.1", reader->api_port);
                      c.set_read_timeout(300);
                      uint64_t got = 0;
                      auto r = c.Get("/v1/files/" + id, [&](const char*, size_t n) {
                        got += n;
                        return true;
                      });
                      if (!r || r->status != 200 || got != kFileBytes) {
                        throw SideFailed(Error{Errc::io_error, "download of " + id + " through " + reader->name() +
                                                                   " failed or came short"});
                      }
                      return id;
                    });
                    next_file += kStreams;
                    return kStreams * kFileBytes;
                  }};
    const ByteSpan file_bytes = contents[0]->next(params.blob_size);
    RawServer raw_sender([&](int fd) {
      for (size_t at = 0; at < file_bytes.size(); at += size_t{1} << 20) {
        if (!write_all(fd, file_bytes.data() + at, std::min(size_t{1} << 20, file_bytes.size() - at))) return;
      }
    });
    std::vector<uint8_t> read_buf(64 * 1024);
    Side raw_get{"raw loopback TCP: the same 8 MiB in 1 MiB writes, reader discards", [&]() -> uint64_t {
                   const int fd = raw_sender.connect();
                   const uint64_t got = read_all(fd, read_buf, [](const uint8_t*, size_t) {});
                   ::close(fd);
                   if (got != kFileBytes) throw SideFailed(Error{Errc::io_error, "raw download short"});
                   return got;
                 }};
    auto [get_ours, get_raw] = measure_pair(opts, ours_get, raw_get);
    scale(get_ours, 1e-6);
    scale(get_raw, 1e-6);

    // ---- propagation of one blob to every node of its shard ----
    const uint64_t filled = get_json(nodes[0].api_port, "/v1/status")
                                .value("chain", nlohmann::json::object())
                                .value("blob_count", uint64_t{0});
    const uint32_t shard = static_cast<uint32_t>(filled / kBlobsPerShard);
    std::vector<const localnet::NodeRecord*> shard_nodes;
    for (const auto& n : nodes) {
      if (n.shard == shard) shard_nodes.push_back(&n);
    }
    if (shard >= kShards || shard_nodes.size() < 2) {
      return make_error(Errc::internal, "the run filled both shards (" + std::to_string(filled) +
                                            " blobs): use fewer --rounds or a shorter --round-seconds");
    }
    UniqueContent probe(kProbeBytes, opts.seed + 1);
    std::vector<double> after_ack_ms;  // acknowledgement -> every node saw every replica
    Side ours_prop{"POST of a 64 KiB file until every node of its shard has seen every replica's stored notice",
                   [&]() -> uint64_t {
                     const std::string id = upload(shard_nodes[0]->api_port, probe.next(params.blob_size));
                     const auto acked = std::chrono::steady_clock::now();
                     const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
                     for (const auto* n : shard_nodes) {
                       for (;;) {
                         auto b = get_json(n->api_port, "/v1/blobs/" + id + "/status");
                         if (b.value("replicas", size_t{0}) >= shard_nodes.size()) break;
                         if (std::chrono::steady_clock::now() > deadline) {
                           throw SideFailed(Error{Errc::timeout, n->name() + " never saw every replica of " + id});
                         }
                         std::this_thread::sleep_for(std::chrono::milliseconds(2));
                       }
                     }
                     after_ack_ms.push_back(
                         std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - acked).count());
                     return 1;
                   }};
    const ByteSpan probe_bytes = probe.next(params.blob_size);
    std::vector<std::unique_ptr<RawServer>> receivers;
    for (size_t k = 1; k < shard_nodes.size(); ++k) {
      receivers.push_back(std::make_unique<RawServer>([&](int fd) {
        std::vector<uint8_t> buf(kProbeBytes);
        size_t got = 0;
        while (got < probe_bytes.size()) {
          const ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
          if (r <= 0) return;
          got += static_cast<size_t>(r);
        }
        const uint8_t ack = 1;
        write_all(fd, &ack, 1);
      }));
    }
    Side raw_prop{"raw loopback TCP: the same 64 KiB to each other node of the shard, acknowledged", [&]() -> uint64_t {
                    for (auto& rcv : receivers) {
                      const int fd = rcv->connect();
                      const bool sent = write_all(fd, probe_bytes.data(), probe_bytes.size());
                      uint8_t ack = 0;
                      const bool acked = ::recv(fd, &ack, 1, 0) == 1;
                      ::close(fd);
                      if (!sent || !acked) throw SideFailed(Error{Errc::io_error, "raw fan-out failed"});
                    }
                    return 1;
                  }};
    auto [prop_ours, prop_raw] = measure_pair(opts, ours_prop, raw_prop);
    rates_to_ms(prop_ours);
    rates_to_ms(prop_raw);

    auto report = pair_report("e2e", "MB/s", ours_put, put_ours, raw_put, put_raw, opts);
    report["direction"] = "upload";
    auto download = pair_report("e2e", "MB/s", ours_get, get_ours, raw_get, get_raw, opts);
    auto propagation = pair_report("e2e", "ms", ours_prop, prop_ours, raw_prop, prop_raw, opts);
    for (auto* j : {&download, &propagation}) {
      for (const char* k : {"workload", "rounds", "round_seconds"}) j->erase(k);
    }
    report["download"] = download;
    // How much of a propagation comes after the upload is acknowledged (the
    // rest is the registration block and the first pulls).
    propagation["after_ack_median_ms"] = median(after_ack_ms);
    report["propagation"] = propagation;
    if (uploaded.empty()) return make_error(Errc::internal, "bench e2e: nothing was uploaded");
    report["proof_verify"] = measure_proof_verify(opts, net.state, uploaded.front());
    report["nodes"] = kNodes;
    report["shards"] = kShards;
    report["file_bytes"] = kFileBytes;
    report["streams"] = kStreams;
    report["block_time_ms"] = s.genesis.block_time_ms;
    report["epoch_blocks"] = s.genesis.epoch_blocks;
    report["min_replicas"] = node::UploadSettings{}.min_replicas;
    return report;
  });
}

}  // namespace

Workload e2e_workload() {
  return Workload{"e2e",
                  "a 6-node 2-shard localnet of processes through the HTTP API: upload and download MB/s and "
                  "one blob's propagation to its shard vs raw RocksDB / raw loopback TCP",
                  run_e2e};
}

}  // namespace cairn::bench
