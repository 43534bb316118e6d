#include "cairn/shards/reader.hpp"

#include <algorithm>
#include <deque>
#include <future>
#include <string>
#include <vector>

#include "cairn/erasure/file.hpp"
#include "cairn/erasure/sha256.hpp"

namespace cairn::shards {
namespace {

tl::unexpected<Error> corrupt(const BlobId& file, const std::string& what) {
  return make_error(Errc::corruption, "file " + file.hex() + ": " + what);
}

// Yields the data-blob entries of a manifest tree in order, fetching
// interior manifests on the way and checking that each one's entries add up
// to the length its parent gave it.
class DataWalker {
 public:
  DataWalker(ObjectReader& reader, const BlobId& file, const erasure::Manifest& root)
      : reader_(reader), file_(file) {
    stack_.push_back(Level{root.entries, 0, root.height});
  }

  // Skips `bytes` of the stored stream, whole subtrees where they fit.
  // Returns the offset left inside the next data blob.
  Result<uint64_t> skip(uint64_t bytes) {
    while (!stack_.empty()) {
      Level& top = stack_.back();
      if (top.next == top.entries.size()) {
        stack_.pop_back();
        continue;
      }
      const erasure::ManifestEntry& e = top.entries[top.next];
      if (e.length <= bytes) {
        bytes -= e.length;
        ++top.next;
        continue;
      }
      if (top.height == 0) return bytes;
      ++top.next;
      CAIRN_TRY_STATUS(descend(e, top.height));
    }
    if (bytes > 0) return corrupt(file_, "the manifest tree ends before the requested offset");
    return uint64_t{0};
  }

  // The next data blob entry; nullopt at the end of the tree.
  Result<std::optional<erasure::ManifestEntry>> next() {
    while (!stack_.empty()) {
      Level& top = stack_.back();
      if (top.next == top.entries.size()) {
        stack_.pop_back();
        continue;
      }
      const erasure::ManifestEntry e = top.entries[top.next++];
      if (top.height == 0) return std::optional<erasure::ManifestEntry>(e);
      CAIRN_TRY_STATUS(descend(e, top.height));
    }
    return std::optional<erasure::ManifestEntry>();
  }

 private:
  struct Level {
    std::vector<erasure::ManifestEntry> entries;
    size_t next = 0;
    uint8_t height = 0;
  };

  Status descend(const erasure::ManifestEntry& e, uint8_t parent_height) {
    auto bytes = reader_.fetch_blob(e.id);
    if (!bytes)
      return tl::unexpected(with_context(bytes.error(), "reading manifest blob " + e.id.hex()));
    auto m = erasure::Manifest::parse(*bytes);
    if (!m) return tl::unexpected(with_context(m.error(), "manifest blob " + e.id.hex()));
    if (m->kind != erasure::ManifestKind::interior || m->height + 1 != parent_height) {
      return corrupt(file_, "manifest blob " + e.id.hex() + " is not an interior node of height " +
                                std::to_string(parent_height - 1));
    }
    uint64_t total = 0;
    for (const auto& c : m->entries) total += c.length;
    if (total != e.length) {
      return corrupt(file_, "manifest blob " + e.id.hex() + " lists " + std::to_string(total) +
                                " bytes, its parent says " + std::to_string(e.length));
    }
    stack_.push_back(Level{std::move(m->entries), 0, m->height});
    return {};
  }

  ObjectReader& reader_;
  BlobId file_;
  std::vector<Level> stack_;
};

}  // namespace

struct ObjectReader::Opened {
  ObjectInfo info;
  Bytes payload;                          // the id's own blob
  std::optional<erasure::Manifest> root;  // files
};

ObjectReader::ObjectReader(BlobSource& source, std::shared_ptr<const erasure::Codec> codec,
                           ReaderSettings settings)
    : source_(source), codec_(std::move(codec)), settings_(settings) {}

Result<Bytes> ObjectReader::fetch_blob(const BlobId& id) {
  auto promise = std::make_shared<std::promise<Result<Bytes>>>();
  auto future = promise->get_future();
  source_.fetch(id, [promise](Result<Bytes> r) { promise->set_value(std::move(r)); });
  // A fetch handed to a network thread that exits never completes: stop
  // waiting then.
  while (future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (source_.stopped())
      return make_error(Errc::cancelled, "node stopping: reading blob " + id.hex());
  }
  return future.get();
}

Result<ObjectReader::Opened> ObjectReader::open(const BlobId& id) {
  auto payload = fetch_blob(id);
  if (!payload) return tl::unexpected(payload.error());
  Opened o;
  o.info.id = id;
  if (auto reg = source_.lookup(id); reg) {
    o.info.index = reg->index;
    o.info.shard = codec_->params().shard_of(reg->index);
  }
  auto m = erasure::Manifest::parse(*payload);
  if (m && m->kind == erasure::ManifestKind::root) {
    o.info.kind = ObjectKind::file;
    o.info.size = m->file_size;
    o.info.stored_size = m->stored_size;
    o.info.compression = m->compression;
    o.info.sha256 = m->sha256;
    const uint64_t bs = codec_->params().blob_size;
    o.info.blob_count = (m->stored_size + bs - 1) / bs;
    o.root = std::move(*m);
  } else {
    o.info.kind = ObjectKind::blob;
    o.info.size = payload->size();
  }
  o.payload = std::move(*payload);
  return o;
}

Result<ObjectInfo> ObjectReader::stat(const BlobId& id) {
  auto o = open(id);
  if (!o) return tl::unexpected(o.error());
  return o->info;
}

Status ObjectReader::read(const BlobId& id, const ReadRange& range, const ByteSink& sink) {
  auto o = open(id);
  if (!o) return tl::unexpected(o.error());
  const uint64_t size = o->info.size;
  if (range.offset > size || (range.length && *range.length > size - range.offset)) {
    return make_error(Errc::invalid_argument,
                      "range [" + std::to_string(range.offset) + ", +" +
                          (range.length ? std::to_string(*range.length) : std::string("end")) +
                          ") lies outside the object's " + std::to_string(size) + " bytes");
  }
  const uint64_t length = range.length.value_or(size - range.offset);
  if (o->info.kind == ObjectKind::blob) {
    if (length == 0) return {};
    count(length);
    return sink(ByteSpan(o->payload).subspan(range.offset, length));
  }
  if (o->root->compression == erasure::Compression::none) {
    return read_plain_file(*o, range.offset, length, sink);
  }
  return read_compressed_file(*o, range.offset, length, sink);
}

Status ObjectReader::read_plain_file(const Opened& o, uint64_t offset, uint64_t length,
                                     const ByteSink& sink) {
  const BlobId& file = o.info.id;
  const bool whole = offset == 0 && length == o.info.size;
  DataWalker walker(*this, file, *o.root);
  auto skip = walker.skip(offset);
  if (!skip) return tl::unexpected(skip.error());
  uint64_t in_blob = *skip;

  struct Slot {
    erasure::ManifestEntry entry;
    std::shared_ptr<std::promise<Result<Bytes>>> promise;
    std::future<Result<Bytes>> future;
  };
  std::deque<Slot> window;
  bool more = true;
  const size_t ahead = std::max<uint32_t>(1, settings_.readahead_blobs);
  uint64_t remaining = length;
  erasure::Sha256 sha;
  while (remaining > 0) {
    while (more && window.size() < ahead) {
      auto e = walker.next();
      if (!e) return tl::unexpected(e.error());
      if (!*e) {
        more = false;
        break;
      }
      Slot s{**e, std::make_shared<std::promise<Result<Bytes>>>(), {}};
      s.future = s.promise->get_future();
      auto p = s.promise;
      source_.fetch(s.entry.id, [p](Result<Bytes> r) { p->set_value(std::move(r)); });
      window.push_back(std::move(s));
    }
    if (window.empty()) return corrupt(file, "the manifest tree ends before the file does");
    Slot slot = std::move(window.front());
    window.pop_front();
    while (slot.future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      if (source_.stopped())
        return make_error(Errc::cancelled, "node stopping: reading file " + file.hex());
    }
    auto payload = slot.future.get();
    if (!payload)
      return tl::unexpected(with_context(payload.error(), "reading file " + file.hex()));
    if (payload->size() != slot.entry.length) {
      return corrupt(file, "blob " + slot.entry.id.hex() + " holds " +
                               std::to_string(payload->size()) + " bytes, the manifest says " +
                               std::to_string(slot.entry.length));
    }
    if (in_blob > payload->size()) return corrupt(file, "offset beyond a blob");
    const uint64_t take = std::min<uint64_t>(payload->size() - in_blob, remaining);
    const ByteSpan part = ByteSpan(*payload).subspan(in_blob, take);
    if (whole) sha.update(part);
    CAIRN_TRY_STATUS(sink(part));
    count(take);
    remaining -= take;
    in_blob = 0;
  }
  if (whole && sha.finish() != o.root->sha256) {
    return corrupt(file, "the SHA-256 of the bytes read differs from the manifest's");
  }
  return {};
}

Status ObjectReader::read_compressed_file(const Opened& o, uint64_t offset, uint64_t length,
                                          const ByteSink& sink) {
  // zstd frames must be inflated from the start: skip up to `offset`, stop
  // after `length` (the whole-file checks then run only for whole reads).
  uint64_t pos = 0;
  bool range_done = false;
  const bool whole = offset == 0 && length == o.info.size;
  auto summary = erasure::decode_file(
      *codec_, o.info.id,
      [this, &o](const BlobId& id) -> Result<Bytes> {
        if (id == o.info.id) return o.payload;
        return fetch_blob(id);
      },
      [&](ByteSpan chunk) -> Status {
        const uint64_t begin = pos, end = pos + chunk.size();
        pos = end;
        if (end <= offset) return {};
        const uint64_t from = std::max(begin, offset), to = std::min(end, offset + length);
        if (from < to) {
          CAIRN_TRY_STATUS(sink(chunk.subspan(from - begin, to - from)));
          count(to - from);
        }
        if (!whole && to >= offset + length) {
          range_done = true;
          return make_error(Errc::cancelled, "range complete");
        }
        return {};
      });
  if (!summary && !range_done) return tl::unexpected(summary.error());
  return {};
}

}  // namespace cairn::shards
