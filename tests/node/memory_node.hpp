#pragma once
// A NodeService held in memory, for testing front-ends (the HTTP API) without
// a network: files and blobs are really encoded, committed and decoded with
// the default network parameters, so ids are the real ids; the "chain"
// assigns indexes in upload order. Hooks let a test make calls fail, watch
// the spooled upload file, or cut a read short.

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>

#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/file.hpp"
#include "node/metrics.hpp"
#include "node/node_service.hpp"
#include "support/test_util.hpp"

namespace cairn::node::test {

class MemoryNode final : public NodeService {
 public:
  explicit MemoryNode(metrics::Registry& registry)
      : registry_(registry), codec_(*erasure::Codec::create(erasure::NetworkParams::defaults())) {
    id_.bytes.fill(0x5a);
  }

  // ---- hooks (set before the calls they affect) ----
  // Every call fails with this error while set.
  void fail_with(std::optional<Error> e) {
    std::lock_guard lock(mu_);
    fail_ = std::move(e);
  }
  // read() fails with Errc::corruption once this many bytes went to the sink.
  void fail_reads_after(std::optional<uint64_t> bytes) {
    std::lock_guard lock(mu_);
    fail_after_ = bytes;
  }
  // read() and read_blob() flip the first byte they return while set (a node serving wrong
  // bytes without noticing).
  void corrupt_reads(bool on) {
    std::lock_guard lock(mu_);
    corrupt_ = on;
  }
  // Called with the path put_file(path) receives, while the file exists.
  std::function<void(const std::filesystem::path&)> on_put_path;

  PutOptions last_options() const {
    std::lock_guard lock(mu_);
    return last_options_;
  }
  const erasure::Codec& codec() const { return *codec_; }

  // ---- NodeService ----
  Result<PutFileResult> put_file(ByteSpan content, const PutOptions& options) override {
    CAIRN_TRY_STATUS(check());
    remember(options);
    erasure::FileOptions file_options;
    file_options.compress = options.compress;
    auto summary =
        erasure::encode_file(*codec_, content, file_options, [&](const erasure::BlobPiece& p) {
          store(p.blob.commitment.id, p.payload);
          return Status{};
        });
    if (!summary) return tl::unexpected(summary.error());
    if (options.phases) {
      // One replica, this node's: registered, then acknowledged.
      const uint64_t blobs = summary->data_blobs + summary->manifest_blobs;
      options.phases(UploadPhase{blobs, true, blobs, 0, 0, 1});
      options.phases(UploadPhase{blobs, true, blobs, blobs, 1, 1});
    }
    return put_file_result(*summary, 1);
  }

  Result<PutFileResult> put_file(const std::filesystem::path& path,
                                 const PutOptions& options) override {
    if (on_put_path) on_put_path(path);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      return make_error(Errc::io_error, "no spooled file at " + path.string());
    }
    const Bytes content = cairn::test::read_file(path);
    return put_file(ByteSpan(content), options);
  }

  Result<PutBlobResult> put_blob(ByteSpan payload, const PutOptions& options) override {
    CAIRN_TRY_STATUS(check());
    remember(options);
    auto committed = erasure::encode_and_commit(*codec_, payload);
    if (!committed) return tl::unexpected(committed.error());
    const BlobId id = committed->commitment.id;
    store(id, payload);
    std::lock_guard lock(mu_);
    const Entry& e = blobs_.at(id);
    return PutBlobResult{id, static_cast<uint32_t>(payload.size()), e.index, shard_of(e.index), 1};
  }

  Result<ObjectInfo> stat(const BlobId& id) override {
    auto entry = lookup(id);
    if (!entry) return tl::unexpected(entry.error());
    ObjectInfo info;
    info.id = id;
    info.index = entry->index;
    info.shard = shard_of(entry->index);
    info.size = entry->payload.size();
    auto manifest = erasure::Manifest::parse(entry->payload);
    if (manifest && manifest->kind == erasure::ManifestKind::root) {
      info.kind = ObjectKind::file;
      info.size = manifest->file_size;
      info.stored_size = manifest->stored_size;
      info.compression = manifest->compression;
      info.sha256 = manifest->sha256;
      info.blob_count = count_data_blobs(*manifest);
    }
    return info;
  }

  Status read(const BlobId& id, const ReadRange& range, const ByteSink& sink) override {
    CAIRN_TRY_STATUS(check());
    auto info = stat(id);
    if (!info) return tl::unexpected(info.error());
    const uint64_t length = range.length.value_or(info->size - std::min(range.offset, info->size));
    if (range.offset > info->size || length > info->size - range.offset) {
      return make_error(Errc::invalid_argument, "range beyond the object");
    }
    std::optional<uint64_t> fail_after;
    bool corrupt = false;
    {
      std::lock_guard lock(mu_);
      fail_after = fail_after_;
      corrupt = corrupt_;
    }
    // Forwards the part of the decoded stream inside the range.
    uint64_t position = 0;
    uint64_t sent = 0;
    bool done = false;
    auto forward = [&](ByteSpan bytes) -> Status {
      const uint64_t begin = std::max(position, range.offset);
      const uint64_t end = std::min(position + bytes.size(), range.offset + length);
      position += bytes.size();
      if (begin < end) {
        ByteSpan part = bytes.subspan(begin - (position - bytes.size()), end - begin);
        if (fail_after && sent + part.size() > *fail_after) {
          CAIRN_TRY_STATUS(sink(part.first(*fail_after - sent)));
          return make_error(Errc::corruption,
                            "injected corruption after " + std::to_string(*fail_after) + " bytes");
        }
        if (corrupt && sent == 0 && !part.empty()) {
          Bytes flipped(part.begin(), part.end());
          flipped[0] ^= 0x01;
          CAIRN_TRY_STATUS(sink(flipped));
        } else {
          CAIRN_TRY_STATUS(sink(part));
        }
        sent += part.size();
      }
      if (position >= range.offset + length) {
        done = true;
        return make_error(Errc::cancelled, "range complete");
      }
      return {};
    };
    if (length == 0) return {};
    if (info->kind == ObjectKind::blob) {
      auto entry = find(id);
      return forward(entry->payload).or_else([&](const Error& e) -> Status {
        if (done) return {};
        return tl::unexpected(e);
      });
    }
    auto decoded = erasure::decode_file(
        *codec_, id,
        [&](const BlobId& b) -> Result<Bytes> {
          auto e = find(b);
          if (!e) return tl::unexpected(e.error());
          return e->payload;
        },
        forward);
    if (!decoded && !done) return tl::unexpected(decoded.error());
    return {};
  }

  Result<Bytes> read_blob(const BlobId& id) override {
    auto entry = lookup(id);
    if (!entry) return tl::unexpected(entry.error());
    std::lock_guard lock(mu_);
    if (corrupt_ && !entry->payload.empty()) entry->payload[0] ^= 0x01;
    return entry->payload;
  }

  Result<BlobStatus> blob_status(const BlobId& id) override {
    auto entry = lookup(id);
    if (!entry) return tl::unexpected(entry.error());
    BlobStatus s;
    s.id = id;
    s.size = static_cast<uint32_t>(entry->payload.size());
    s.index = entry->index;
    s.shard = shard_of(entry->index);
    s.registered_in = BlockNumber{entry->index.value + 1};
    s.stored_locally = true;
    s.holders.push_back(HolderInfo{id_, "127.0.0.1:8640", true});
    return s;
  }

  Result<NodeStatus> status() override {
    CAIRN_TRY_STATUS(check());
    std::lock_guard lock(mu_);
    NodeStatus s;
    s.id = id_;
    s.version = CAIRN_VERSION;
    s.chain.backend = "memory";
    s.chain.head = next_index_;
    s.chain.blob_count = next_index_;
    s.chain.registered = true;
    s.chain.params = codec_->params();
    s.shards = {ShardId{0}};
    s.blobs_stored = blobs_.size();
    s.bytes_stored =
        blobs_.size() * codec_->params().total_fragments() * codec_->params().fragment_size();
    shards::SyncProgress sync;
    sync.shard = ShardId{0};
    sync.state = shards::SyncState::synced;
    sync.known = next_index_;
    sync.held = blobs_.size();
    sync.cursor = BlobIndex{next_index_};
    s.sync.push_back(sync);
    return s;
  }

  std::string metrics_text() override { return registry_.render(); }

  const NodeId& id() const { return id_; }

 private:
  struct Entry {
    BlobIndex index;
    Bytes payload;
  };

  Status check() const {
    std::lock_guard lock(mu_);
    if (fail_) return tl::unexpected(*fail_);
    return {};
  }
  void remember(const PutOptions& options) {
    std::lock_guard lock(mu_);
    last_options_ = options;
    last_options_.phases = nullptr;
  }
  void store(const BlobId& id, ByteSpan payload) {
    std::lock_guard lock(mu_);
    if (blobs_.count(id) == 0) {
      blobs_.emplace(id, Entry{BlobIndex{next_index_++}, Bytes(payload.begin(), payload.end())});
    }
  }
  // check() then find().
  Result<Entry> lookup(const BlobId& id) const {
    CAIRN_TRY_STATUS(check());
    return find(id);
  }
  Result<Entry> find(const BlobId& id) const {
    std::lock_guard lock(mu_);
    auto it = blobs_.find(id);
    if (it == blobs_.end()) return make_error(Errc::not_found, "no blob " + id.hex());
    return it->second;
  }
  ShardId shard_of(BlobIndex i) const { return codec_->params().shard_of(i); }
  uint64_t count_data_blobs(const erasure::Manifest& m) const {
    if (m.height == 0) return m.entries.size();
    uint64_t n = 0;
    for (const auto& e : m.entries) {
      auto child = find(e.id);
      if (!child) continue;
      auto parsed = erasure::Manifest::parse(child->payload);
      if (parsed) n += count_data_blobs(*parsed);
    }
    return n;
  }

  metrics::Registry& registry_;
  std::shared_ptr<const erasure::Codec> codec_;
  NodeId id_;
  mutable std::mutex mu_;
  std::map<BlobId, Entry> blobs_;
  uint64_t next_index_ = 0;
  std::optional<Error> fail_;
  std::optional<uint64_t> fail_after_;
  bool corrupt_ = false;
  PutOptions last_options_;
};

}  // namespace cairn::node::test
