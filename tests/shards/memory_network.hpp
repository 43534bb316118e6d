#pragma once
// Deterministic test doubles for what the sync and scrub engines need from
// the node: a RemoteFragments whose peers are other Stores in this process
// (served through serve_fragments, as the real node serves), with per-peer
// misbehaviour; and a Registry over a vector. Plus helpers that build sealed
// stores holding a corpus of random blobs.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "cairn/erasure/codec.hpp"
#include "cairn/shards/registry.hpp"
#include "cairn/shards/remote.hpp"
#include "cairn/shards/seal_transform.hpp"
#include "cairn/shards/store.hpp"

namespace cairn::shards::testing {

enum class PeerMode {
  honest,
  corrupt,      // flips one byte of every reply
  wrong_blob,   // answers with the fragments of another blob it holds
  missing,      // answers not_found
  refuse_busy,  // fetch() fails at once with busy
  silent,       // never answers; the fetch times out
};

struct PeerBehavior {
  PeerMode mode = PeerMode::honest;
  std::chrono::milliseconds delay{0};  // before the answer is delivered
};

// Serves every request from a dispatcher thread of its own after the peer's
// delay; callbacks run on that thread, never inside fetch().
class MemoryNetwork final : public RemoteFragments {
 public:
  explicit MemoryNetwork(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  // Answers everything still pending with Errc::cancelled, then joins.
  ~MemoryNetwork() override;

  // `store` must outlive the network (or remove_peer first).
  void add_peer(const NodeId& peer, const Store* store,
                std::shared_ptr<const ReplicaTransform> transform, std::vector<ShardId> shards,
                PeerBehavior behavior = {});
  void set_behavior(const NodeId& peer, PeerBehavior behavior);
  void remove_peer(const NodeId& peer);

  std::vector<NodeId> peers(ShardId shard) override;
  Result<FetchHandle> fetch(const NodeId& peer, const FragmentRequest& request,
                            FetchCallback done) override;
  void cancel(FetchHandle handle) override;
  void report(const NodeId& peer, PeerVerdict verdict) override;

  // Requests accepted (fetch returned a handle), per peer and in all.
  size_t requests_to(const NodeId& peer) const;
  std::vector<std::pair<NodeId, FragmentRequest>> requests() const;
  std::vector<std::pair<NodeId, PeerVerdict>> reports() const;
  size_t pending() const;

 private:
  struct Peer {
    const Store* store = nullptr;
    std::shared_ptr<const ReplicaTransform> transform;
    std::vector<ShardId> shards;
    PeerBehavior behavior;
  };
  struct Pending {
    NodeId peer;
    FragmentRequest request;
    FetchCallback done;
    std::chrono::steady_clock::time_point due;
    bool cancelled = false;
  };
  void run();
  Result<FragmentReply> answer(const NodeId& peer, const FragmentRequest& request);

  const std::chrono::milliseconds timeout_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  FetchHandle next_handle_ = 1;
  std::map<NodeId, Peer> peers_;
  std::map<FetchHandle, Pending> pending_;
  std::vector<std::pair<NodeId, FragmentRequest>> log_;
  std::vector<std::pair<NodeId, PeerVerdict>> reports_;
  std::thread thread_;
};

// The registry as a vector; safe from any thread.
class VectorRegistry final : public Registry {
 public:
  explicit VectorRegistry(erasure::NetworkParams params) : params_(params) {}
  void add(const RegisteredBlob& blob);
  // The next `n` calls of any method fail with Errc::io_error.
  void fail_next(int n);
  // blob_count() and blobs() list only the first `count` blobs (the node's
  // settle delay); lookup() finds every one.
  void list_only(size_t count);

  Result<uint64_t> blob_count(ShardId shard) override;
  Result<std::vector<RegisteredBlob>> blobs(ShardId shard, BlobIndex from, size_t limit) override;
  Result<BlockNumber> head() override;
  Result<RegisteredBlob> lookup(const BlobId& id) override;

 private:
  Status maybe_fail();
  size_t listed() const;  // with mu_ held
  erasure::NetworkParams params_;
  std::mutex mu_;
  std::vector<RegisteredBlob> blobs_;  // by index, from 0
  size_t listed_ = SIZE_MAX;
  int failures_ = 0;
};

// A node's store and seal, in a directory of its own.
struct TestNode {
  NodeId id;
  std::filesystem::path dir;
  std::unique_ptr<Store> store;
  std::shared_ptr<const SealingTransform> seal;

  // Closes and reopens the store (what a restart does).
  void reopen(const erasure::NetworkParams& params);
  void close();
};

// Opens (creating) a store at `dir` for the node whose id is `seed` repeated.
std::unique_ptr<TestNode> make_node(const erasure::NetworkParams& params,
                                    const std::filesystem::path& dir, uint8_t seed);

// Random payloads (lengths from 0 to blob_size, the full size included)
// for indexes [first, first + count) and their registry entries.
struct Corpus {
  std::vector<Bytes> payloads;
  std::vector<RegisteredBlob> blobs;
};
Corpus make_corpus(const erasure::Codec& codec, BlobIndex first, size_t count,
                   std::mt19937_64& rng);

// Ingests (encodes, commits, seals, stores) every blob of `corpus` into `node`.
void ingest_corpus(TestNode& node, const erasure::Codec& codec, const Corpus& corpus);

}  // namespace cairn::shards::testing
