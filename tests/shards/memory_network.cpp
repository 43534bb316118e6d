#include "shards/memory_network.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "cairn/erasure/commitment.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/serve.hpp"
#include "support/test_util.hpp"

namespace cairn::shards::testing {

MemoryNetwork::MemoryNetwork(std::chrono::milliseconds timeout)
    : timeout_(timeout), thread_([this] { run(); }) {}

MemoryNetwork::~MemoryNetwork() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void MemoryNetwork::add_peer(const NodeId& peer, const Store* store,
                             std::shared_ptr<const ReplicaTransform> transform,
                             std::vector<ShardId> shards, PeerBehavior behavior) {
  std::lock_guard lock(mu_);
  peers_[peer] = Peer{store, std::move(transform), std::move(shards), behavior};
}

void MemoryNetwork::set_behavior(const NodeId& peer, PeerBehavior behavior) {
  std::lock_guard lock(mu_);
  peers_.at(peer).behavior = behavior;
}

void MemoryNetwork::remove_peer(const NodeId& peer) {
  std::lock_guard lock(mu_);
  peers_.erase(peer);
}

std::vector<NodeId> MemoryNetwork::peers(ShardId shard) {
  std::lock_guard lock(mu_);
  std::vector<NodeId> out;
  for (const auto& [id, p] : peers_) {
    if (std::find(p.shards.begin(), p.shards.end(), shard) != p.shards.end()) out.push_back(id);
  }
  return out;
}

Result<FetchHandle> MemoryNetwork::fetch(const NodeId& peer, const FragmentRequest& request,
                                         FetchCallback done) {
  std::lock_guard lock(mu_);
  if (stopping_) return make_error(Errc::cancelled, "network stopping");
  auto it = peers_.find(peer);
  if (it == peers_.end()) return make_error(Errc::not_found, "peer not connected");
  if (it->second.behavior.mode == PeerMode::refuse_busy) return make_error(Errc::busy, "peer busy");
  const FetchHandle h = next_handle_++;
  const auto delay =
      it->second.behavior.mode == PeerMode::silent ? timeout_ : it->second.behavior.delay;
  pending_.emplace(
      h, Pending{peer, request, std::move(done), std::chrono::steady_clock::now() + delay, false});
  log_.emplace_back(peer, request);
  wake_.notify_all();
  return h;
}

void MemoryNetwork::cancel(FetchHandle handle) {
  std::lock_guard lock(mu_);
  auto it = pending_.find(handle);
  if (it == pending_.end()) return;
  it->second.cancelled = true;
  it->second.due = std::chrono::steady_clock::now();
  wake_.notify_all();
}

void MemoryNetwork::report(const NodeId& peer, PeerVerdict verdict) {
  std::lock_guard lock(mu_);
  reports_.emplace_back(peer, verdict);
}

size_t MemoryNetwork::requests_to(const NodeId& peer) const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(
      std::count_if(log_.begin(), log_.end(), [&](const auto& e) { return e.first == peer; }));
}

std::vector<std::pair<NodeId, FragmentRequest>> MemoryNetwork::requests() const {
  std::lock_guard lock(mu_);
  return log_;
}

std::vector<std::pair<NodeId, PeerVerdict>> MemoryNetwork::reports() const {
  std::lock_guard lock(mu_);
  return reports_;
}

size_t MemoryNetwork::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

Result<FragmentReply> MemoryNetwork::answer(const NodeId& peer, const FragmentRequest& request) {
  Peer p;
  {
    std::lock_guard lock(mu_);
    auto it = peers_.find(peer);
    if (it == peers_.end()) return make_error(Errc::io_error, "peer disconnected");
    p = it->second;
  }
  switch (p.behavior.mode) {
    case PeerMode::missing:
      return make_error(Errc::not_found, "peer does not hold the blob");
    case PeerMode::silent:
      return make_error(Errc::timeout, "peer did not answer in time");
    case PeerMode::wrong_blob: {
      // Another blob this peer holds, presented as the one asked for.
      auto page = p.store->scan_blobs(BlobIndex{0}, 64);
      if (!page) return tl::unexpected(page.error());
      for (const BlobRecord& r : page->records) {
        if (r.id == request.id) continue;
        FragmentRequest other = request;
        other.id = r.id;
        other.index = r.index;
        return serve_fragments(*p.store, other, p.transform.get());
      }
      return make_error(Errc::not_found, "no other blob to lie with");
    }
    case PeerMode::corrupt: {
      auto reply = serve_fragments(*p.store, request, p.transform.get());
      if (reply && !reply->data.empty()) reply->data[reply->data.size() / 2] ^= 0x01;
      return reply;
    }
    case PeerMode::honest:
    case PeerMode::refuse_busy:
      break;
  }
  return serve_fragments(*p.store, request, p.transform.get());
}

void MemoryNetwork::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (stopping_) {
      auto pending = std::move(pending_);
      pending_.clear();
      lock.unlock();
      for (auto& [h, p] : pending) p.done(make_error(Errc::cancelled, "network stopped"));
      return;
    }
    auto next =
        std::min_element(pending_.begin(), pending_.end(),
                         [](const auto& a, const auto& b) { return a.second.due < b.second.due; });
    if (next == pending_.end()) {
      wake_.wait(lock);
      continue;
    }
    if (next->second.due > std::chrono::steady_clock::now()) {
      wake_.wait_until(lock, next->second.due);
      continue;
    }
    Pending p = std::move(next->second);
    pending_.erase(next);
    lock.unlock();
    Result<FragmentReply> result =
        p.cancelled ? Result<FragmentReply>(make_error(Errc::cancelled, "cancelled"))
                    : answer(p.peer, p.request);
    p.done(std::move(result));
    lock.lock();
  }
}

// ---- VectorRegistry ----

void VectorRegistry::add(const RegisteredBlob& blob) {
  std::lock_guard lock(mu_);
  ASSERT_EQ(blob.index.value, blobs_.size()) << "registry entries must be added in index order";
  blobs_.push_back(blob);
}

void VectorRegistry::fail_next(int n) {
  std::lock_guard lock(mu_);
  failures_ = n;
}

Status VectorRegistry::maybe_fail() {
  if (failures_ <= 0) return {};
  --failures_;
  return make_error(Errc::io_error, "registry unreachable (injected)");
}

void VectorRegistry::list_only(size_t count) {
  std::lock_guard lock(mu_);
  listed_ = count;
}

size_t VectorRegistry::listed() const { return std::min(blobs_.size(), listed_); }

Result<uint64_t> VectorRegistry::blob_count(ShardId shard) {
  std::lock_guard lock(mu_);
  CAIRN_TRY_STATUS(maybe_fail());
  const uint64_t first = params_.first_index(shard).value;
  if (listed() <= first) return uint64_t{0};
  return std::min<uint64_t>(listed() - first, params_.blobs_per_shard);
}

Result<std::vector<RegisteredBlob>> VectorRegistry::blobs(ShardId shard, BlobIndex from,
                                                          size_t limit) {
  std::lock_guard lock(mu_);
  CAIRN_TRY_STATUS(maybe_fail());
  const uint64_t end =
      std::min<uint64_t>(listed(), params_.first_index(shard).value + params_.blobs_per_shard);
  std::vector<RegisteredBlob> out;
  for (uint64_t i = std::max(from.value, params_.first_index(shard).value);
       i < end && out.size() < limit; ++i) {
    out.push_back(blobs_[i]);
  }
  return out;
}

Result<RegisteredBlob> VectorRegistry::lookup(const BlobId& id) {
  std::lock_guard lock(mu_);
  CAIRN_TRY_STATUS(maybe_fail());
  for (const RegisteredBlob& b : blobs_) {
    if (b.id == id) return b;
  }
  return make_error(Errc::not_found, "blob " + id.hex() + " is not registered");
}

Result<BlockNumber> VectorRegistry::head() {
  std::lock_guard lock(mu_);
  CAIRN_TRY_STATUS(maybe_fail());
  return BlockNumber{blobs_.size()};
}

// ---- nodes and corpora ----

void TestNode::reopen(const erasure::NetworkParams& params) {
  close();
  auto s = Store::open(dir, params);
  ASSERT_TRUE(s) << s.error().to_string();
  store = std::move(*s);
}

void TestNode::close() {
  if (store) {
    ASSERT_TRUE(store->close());
  }
  store.reset();
}

std::unique_ptr<TestNode> make_node(const erasure::NetworkParams& params,
                                    const std::filesystem::path& dir, uint8_t seed) {
  auto node = std::make_unique<TestNode>();
  node->id.bytes.fill(seed);
  node->dir = dir;
  auto s = Store::open(dir, params);
  EXPECT_TRUE(s) << s.error().to_string();
  if (s) node->store = std::move(*s);
  node->seal = std::make_shared<SealingTransform>(params, node->id);
  return node;
}

Corpus make_corpus(const erasure::Codec& codec, BlobIndex first, size_t count,
                   std::mt19937_64& rng) {
  const uint32_t blob_size = codec.params().blob_size;
  Corpus c;
  for (size_t i = 0; i < count; ++i) {
    // Every fourth blob is full; the others have random lengths, 0 included.
    const size_t length = i % 4 == 0 ? blob_size : rng() % (blob_size + 1);
    Bytes payload = test::random_bytes(rng, length);
    auto committed = erasure::encode_and_commit(codec, payload);
    EXPECT_TRUE(committed);
    c.blobs.push_back(RegisteredBlob{BlobIndex{first.value + i}, committed->commitment.id,
                                     static_cast<uint32_t>(length)});
    c.payloads.push_back(std::move(payload));
  }
  return c;
}

void ingest_corpus(TestNode& node, const erasure::Codec& codec, const Corpus& corpus) {
  for (size_t i = 0; i < corpus.blobs.size(); ++i) {
    auto r = ingest_payload(*node.store, codec, corpus.blobs[i].index, corpus.payloads[i],
                            node.seal.get());
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_EQ(r->record.id, corpus.blobs[i].id);
  }
}

}  // namespace cairn::shards::testing
