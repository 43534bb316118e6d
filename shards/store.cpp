#include "cairn/shards/store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/iterator.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>

#include "db_layout.hpp"
#include "format.hpp"
#include "records.hpp"

namespace cairn::shards {

using format::Family;

namespace {

rocksdb::Slice slice(ByteSpan b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
ByteSpan span(const rocksdb::Slice& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Writers of one blob serialize on the stripes of its index and its id, so
// the check "index free, id not stored elsewhere" and the write are atomic
// while unrelated blobs are written in parallel (and share WAL fsyncs).
constexpr size_t kLockStripes = 64;

size_t stripe_of(BlobIndex index) noexcept { return index.value % kLockStripes; }
size_t stripe_of(const BlobId& id) noexcept { return id.bytes[31] % kLockStripes; }

bool has_prefix(const rocksdb::Slice& key, ByteSpan prefix) {
  if (key.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (static_cast<uint8_t>(key[i]) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

struct Store::Impl {
  std::filesystem::path dir;
  erasure::NetworkParams params;
  DbLayout layout;
  // The Env over an injected file system (StoreOptions); null for the
  // default one. Declared before `db`, which uses it until closed.
  std::unique_ptr<rocksdb::Env> env;
  std::unique_ptr<rocksdb::DB> db;
  std::array<rocksdb::ColumnFamilyHandle*, format::kFamilyCount> handles{};
  std::atomic<uint64_t> blob_count{0};
  std::atomic<uint64_t> write_failures{0};
  mutable std::array<std::mutex, kLockStripes> stripes;

  // Releases the column family handles before the DB (RocksDB requires it),
  // also when open() fails half way.
  ~Impl() { (void)close(); }

  rocksdb::ColumnFamilyHandle* cf(Family f) const { return handles[format::family_slot(f)]; }

  std::string where(Family f, ByteSpan key) const {
    return "store " + dir.string() + ": " + format::describe_key(f, key);
  }

  Status check_open() const {
    if (!db) return make_error(Errc::cancelled, "store " + dir.string() + " is closed");
    return {};
  }

  // Locks the stripes of `index` and, when given, `id` (deadlock-free order).
  std::pair<std::unique_lock<std::mutex>, std::unique_lock<std::mutex>> lock(
      BlobIndex index, const BlobId* id) const {
    const size_t a = stripe_of(index);
    if (id == nullptr || stripe_of(*id) == a) {
      return {std::unique_lock(stripes[a]), std::unique_lock<std::mutex>()};
    }
    std::unique_lock first(stripes[a], std::defer_lock);
    std::unique_lock second(stripes[stripe_of(*id)], std::defer_lock);
    std::lock(first, second);
    return {std::move(first), std::move(second)};
  }

  // The checked payload stored at `key`, nullopt when absent.
  Result<std::optional<Bytes>> get(Family f, ByteSpan key) const {
    CAIRN_TRY_STATUS(check_open());
    rocksdb::PinnableSlice value;
    const rocksdb::Status s = db->Get(layout.read, cf(f), slice(key), &value);
    if (s.IsNotFound()) return std::optional<Bytes>();
    if (!s.ok()) return tl::unexpected(rocksdb_error(s, "reading " + where(f, key)));
    auto payload = format::open_envelope(f, key, span(value));
    if (!payload) return tl::unexpected(with_context(payload.error(), "store " + dir.string()));
    return std::optional<Bytes>(Bytes(payload->begin(), payload->end()));
  }

  // Like get(), but absence is Errc::not_found.
  Result<Bytes> get_required(Family f, ByteSpan key) const {
    auto v = get(f, key);
    if (!v) return tl::unexpected(v.error());
    if (!*v) return make_error(Errc::not_found, where(f, key) + " not found");
    return std::move(**v);
  }

  Status write(rocksdb::WriteBatch& batch, const std::string& what) {
    CAIRN_TRY_STATUS(check_open());
    const rocksdb::Status s = db->Write(layout.write, &batch);
    if (!s.ok()) {
      write_failures.fetch_add(1, std::memory_order_relaxed);
      // What RocksDB 7.8 does next (docs/store-format.md, "Write, sync and
      // read failures"), so the operator knows whether to wait or restart.
      std::string next;
      if (s.IsNoSpace()) {
        next = " (disk full: writes resume once space is freed)";
      } else if (s.IsIOError()) {
        next =
            " (after a failed log write or sync the store takes no more writes until it is "
            "reopened: "
            "restart the node once the disk is healthy)";
      }
      return tl::unexpected(rocksdb_error(s, "store " + dir.string() + ": " + what + next));
    }
    return {};
  }

  Status put(Family f, ByteSpan key, ByteSpan payload) {
    rocksdb::WriteBatch batch;
    CAIRN_TRY_STATUS(batch_put(batch, f, key, payload));
    return write(batch, "writing " + format::describe_key(f, key));
  }

  Status erase(Family f, ByteSpan key) {
    rocksdb::WriteBatch batch;
    const rocksdb::Status s = batch.Delete(cf(f), slice(key));
    if (!s.ok()) return tl::unexpected(rocksdb_error(s, "deleting " + where(f, key)));
    return write(batch, "deleting " + format::describe_key(f, key));
  }

  Status batch_put(rocksdb::WriteBatch& batch, Family f, ByteSpan key, ByteSpan payload) const {
    // Envelope = version | payload | crc, assembled from parts so large
    // payloads (fragments) are copied once, into the batch.
    const format::EnvelopeParts parts = format::envelope_parts(f, key, payload);
    const rocksdb::Slice key_part = slice(key);
    const rocksdb::Slice value_parts[3] = {
        rocksdb::Slice(reinterpret_cast<const char*>(&parts.version), 1), slice(payload),
        slice(parts.crc)};
    const rocksdb::Status s =
        batch.Put(cf(f), rocksdb::SliceParts(&key_part, 1), rocksdb::SliceParts(value_parts, 3));
    if (!s.ok()) return tl::unexpected(rocksdb_error(s, "batching " + where(f, key)));
    return {};
  }

  Result<ShardId> shard_of(BlobIndex index) const {
    auto shard = shard_for(params, index);
    if (!shard) return tl::unexpected(with_context(shard.error(), "store " + dir.string()));
    return shard;
  }

  Result<std::optional<BlobRecord>> record_at(ShardId shard, BlobIndex index) const {
    const auto key = format::blob_key(shard, index);
    auto payload = get(Family::blobs, key);
    if (!payload) return tl::unexpected(payload.error());
    if (!*payload) return std::optional<BlobRecord>();
    auto record = records::decode_blob_record(**payload, index, where(Family::blobs, key));
    if (!record) return tl::unexpected(record.error());
    return std::optional<BlobRecord>(std::move(*record));
  }

  // Where blob `id` is stored according to the id family, nullopt when absent.
  Result<std::optional<format::DecodedBlobKey>> location_of(const BlobId& id) const {
    auto payload = get(Family::blob_ids, id.span());
    if (!payload) return tl::unexpected(payload.error());
    if (!*payload) return std::optional<format::DecodedBlobKey>();
    auto loc = format::decode_blob_key(**payload);
    if (!loc) {
      return make_error(Errc::corruption, where(Family::blob_ids, id.span()) + ": location is " +
                                              std::to_string((*payload)->size()) +
                                              " bytes, expected 12");
    }
    return std::optional<format::DecodedBlobKey>(*loc);
  }

  Status validate(const BlobRecord& r, std::span<const ByteSpan> fragments) const {
    const auto bad = [&](const std::string& why) {
      return make_error(Errc::invalid_argument, "store " + dir.string() + ": blob " + r.id.hex() +
                                                    " at index " + std::to_string(r.index.value) +
                                                    ": " + why);
    };
    if (r.fragment_size != params.fragment_size()) {
      return bad("fragment_size " + std::to_string(r.fragment_size) +
                 " differs from the network's " + std::to_string(params.fragment_size()));
    }
    if (r.data_fragments != params.data_fragments ||
        r.total_fragments() != params.total_fragments()) {
      return bad("has k=" + std::to_string(r.data_fragments) +
                 " n=" + std::to_string(r.total_fragments()) +
                 ", the network uses k=" + std::to_string(params.data_fragments) +
                 " n=" + std::to_string(params.total_fragments()));
    }
    if (r.length > params.blob_size) {
      return bad("length " + std::to_string(r.length) + " exceeds blob_size " +
                 std::to_string(params.blob_size));
    }
    if (r.encoding != FragmentEncoding::plain && r.encoding != FragmentEncoding::sealed) {
      return bad("unknown fragment encoding " + std::to_string(static_cast<int>(r.encoding)));
    }
    if (fragments.size() != r.total_fragments()) {
      return bad(std::to_string(fragments.size()) + " fragments given, expected " +
                 std::to_string(r.total_fragments()));
    }
    for (size_t f = 0; f < fragments.size(); ++f) {
      if (fragments[f].size() != r.fragment_size) {
        return bad("fragment " + std::to_string(f) + " is " + std::to_string(fragments[f].size()) +
                   " bytes, expected " + std::to_string(r.fragment_size));
      }
    }
    return {};
  }

  // Visits the keys and values of family `f` starting at `start` while they
  // begin with `prefix`; `visit` returns false to stop.
  template <class Visit>
  Status scan(Family f, ByteSpan prefix, ByteSpan start, Visit&& visit) const {
    CAIRN_TRY_STATUS(check_open());
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(layout.read, cf(f)));
    for (it->Seek(slice(start)); it->Valid() && has_prefix(it->key(), prefix); it->Next()) {
      if (!visit(span(it->key()), span(it->value()))) break;
    }
    if (!it->status().ok()) {
      return tl::unexpected(rocksdb_error(it->status(), "store " + dir.string() + ": scanning " +
                                                            std::string(format::family_name(f))));
    }
    return {};
  }

  // Up to `limit` blob records from key `start` on while keys begin with
  // `prefix`, checked; corrupt ones are reported and skipped.
  Result<ScanPage> scan_records(ByteSpan prefix, ByteSpan start, size_t limit) const {
    ScanPage page;
    auto s = scan(Family::blobs, prefix, start, [&](ByteSpan key, ByteSpan value) {
      const auto k = format::decode_blob_key(key);
      if (!k) return true;  // not a blob key; cannot occur in this family
      if (page.records.size() + page.corrupt.size() == limit) {
        page.next = k->index;
        return false;
      }
      const std::string what = where(Family::blobs, key);
      auto payload = format::open_envelope(Family::blobs, key, value);
      auto record = payload ? records::decode_blob_record(*payload, k->index, what)
                            : Result<BlobRecord>(tl::unexpected(payload.error()));
      if (record) {
        page.records.push_back(std::move(*record));
      } else {
        page.corrupt.emplace_back(k->index, with_context(record.error(), "store " + dir.string()));
      }
      return true;
    });
    if (!s) return tl::unexpected(s.error());
    return page;
  }

  // Up to `limit` values of a family keyed by (prefix | node id), checked;
  // corrupt ones are reported and skipped.
  Result<NodeRecords> node_records(Family f, ByteSpan prefix, ByteSpan start, size_t limit) const {
    NodeRecords out;
    auto s = scan(f, prefix, start, [&](ByteSpan key, ByteSpan value) {
      if (out.records.size() + out.corrupt.size() == limit) return false;
      if (key.size() != prefix.size() + 32) return true;
      NodeId node;
      std::copy(key.begin() + static_cast<std::ptrdiff_t>(prefix.size()), key.end(),
                node.bytes.begin());
      auto payload = format::open_envelope(f, key, value);
      if (payload) {
        out.records.push_back(NodeRecord{node, Bytes(payload->begin(), payload->end())});
      } else {
        out.corrupt.emplace_back(node, with_context(payload.error(), "store " + dir.string()));
      }
      return true;
    });
    if (!s) return tl::unexpected(s.error());
    return out;
  }

  Result<uint64_t> count_keys(Family f) const {
    uint64_t n = 0;
    auto s = scan(f, {}, {}, [&](ByteSpan, ByteSpan) {
      ++n;
      return true;
    });
    if (!s) return tl::unexpected(s.error());
    return n;
  }

  // Creates the meta records of a new store, or checks those of an existing one.
  Status check_meta() {
    const ByteSpan format_key = as_bytes(format::kMetaFormatKey);
    const ByteSpan network_key = as_bytes(format::kMetaNetworkKey);
    auto stored_format = get(Family::meta, format_key);
    if (!stored_format) return tl::unexpected(stored_format.error());
    if (!*stored_format) {
      // New store (or one whose creation was interrupted before any data).
      for (size_t i = 1; i < format::kFamilyCount; ++i) {
        auto n = count_keys(format::family_at(i));
        if (!n) return tl::unexpected(n.error());
        if (*n != 0) {
          return make_error(Errc::corruption, "store " + dir.string() +
                                                  " holds data but no format record "
                                                  "(not a cairn store, or its metadata was lost)");
        }
      }
      Bytes version;
      append_be<uint32_t>(version, format::kStoreFormatVersion);
      rocksdb::WriteBatch batch;
      CAIRN_TRY_STATUS(batch_put(batch, Family::meta, format_key, version));
      CAIRN_TRY_STATUS(
          batch_put(batch, Family::meta, network_key, records::encode_geometry(params)));
      return write(batch, "initialising");
    }
    if ((*stored_format)->size() != 4) {
      return make_error(Errc::corruption, where(Family::meta, format_key) + " is malformed");
    }
    const uint32_t version = get_be<uint32_t>((*stored_format)->data());
    if (version > format::kStoreFormatVersion) {
      return make_error(Errc::unsupported, "store " + dir.string() + " has format version " +
                                               std::to_string(version) +
                                               "; this cairn reads up to " +
                                               std::to_string(format::kStoreFormatVersion));
    }
    auto network = get_required(Family::meta, network_key);
    if (!network) return tl::unexpected(network.error());
    auto geometry = records::decode_geometry(*network, where(Family::meta, network_key));
    if (!geometry) return tl::unexpected(geometry.error());
    if (!records::same_geometry(*geometry, params)) {
      return make_error(Errc::conflict, "store " + dir.string() + " was created for " +
                                            records::describe_geometry(*geometry) +
                                            "; this node runs " +
                                            records::describe_geometry(params));
    }
    return {};
  }

  Status close() {
    if (!db) return {};
    rocksdb::Status first;
    for (auto*& h : handles) {
      if (h == nullptr) continue;
      const rocksdb::Status s = db->DestroyColumnFamilyHandle(h);
      if (first.ok()) first = s;
      h = nullptr;
    }
    const rocksdb::Status s = db->Close();
    if (first.ok()) first = s;
    db.reset();
    if (!first.ok()) return tl::unexpected(rocksdb_error(first, "closing store " + dir.string()));
    return {};
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Store::~Store() {
  if (impl_) (void)impl_->close();
}

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& dir,
                                           const erasure::NetworkParams& params,
                                           const StoreSettings& settings,
                                           const StoreOptions& options) {
  CAIRN_TRY_STATUS(params.validate());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return make_error(Errc::io_error,
                      "cannot create store directory " + dir.string() + ": " + ec.message());
  }
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->params = params;
  impl->layout = make_db_layout(settings);
  if (options.file_system) {
    impl->env = rocksdb::NewCompositeEnv(options.file_system);
    impl->layout.db.env = impl->env.get();
  }

  if (std::filesystem::exists(dir / "CURRENT", ec)) {
    // RocksDB refuses to open a database without naming all its families:
    // an unknown one means a newer cairn wrote this store.
    std::vector<std::string> names;
    const rocksdb::Status s =
        rocksdb::DB::ListColumnFamilies(impl->layout.db, dir.string(), &names);
    if (!s.ok()) return tl::unexpected(rocksdb_error(s, "reading store " + dir.string()));
    for (const auto& name : names) {
      bool known = false;
      for (const auto& d : impl->layout.families) known = known || d.name == name;
      if (!known) {
        return make_error(Errc::unsupported,
                          "store " + dir.string() + " has column family '" + name +
                              "' unknown to this cairn (written by a newer version?)");
      }
    }
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s =
      rocksdb::DB::Open(impl->layout.db, dir.string(), impl->layout.families, &handles, &raw);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("LOCK") != std::string::npos) {
      return make_error(Errc::io_error, "store " + dir.string() +
                                            " is in use by another process (is another cairn node "
                                            "running on this data dir?): " +
                                            s.ToString());
    }
    return tl::unexpected(rocksdb_error(s, "opening store " + dir.string()));
  }
  impl->db.reset(raw);
  for (size_t i = 0; i < handles.size() && i < impl->handles.size(); ++i)
    impl->handles[i] = handles[i];

  CAIRN_TRY_STATUS(impl->check_meta());
  auto count = impl->count_keys(Family::blobs);
  if (!count) return tl::unexpected(count.error());
  impl->blob_count = *count;
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Status Store::close() { return impl_->close(); }

Status Store::flush() {
  CAIRN_TRY_STATUS(impl_->check_open());
  std::vector<rocksdb::ColumnFamilyHandle*> all(impl_->handles.begin(), impl_->handles.end());
  const rocksdb::Status s = impl_->db->Flush(rocksdb::FlushOptions(), all);
  if (!s.ok()) return tl::unexpected(rocksdb_error(s, "flushing store " + impl_->dir.string()));
  return {};
}

const erasure::NetworkParams& Store::params() const noexcept { return impl_->params; }
const std::filesystem::path& Store::path() const noexcept { return impl_->dir; }
uint64_t Store::blob_count() const noexcept { return impl_->blob_count.load(); }

uint64_t Store::write_failures() const noexcept {
  return impl_->write_failures.load(std::memory_order_relaxed);
}

Result<PutOutcome> Store::put_blob(const BlobRecord& record, std::span<const ByteSpan> fragments) {
  CAIRN_TRY_STATUS(impl_->check_open());
  CAIRN_TRY_STATUS(impl_->validate(record, fragments));
  auto shard = impl_->shard_of(record.index);
  if (!shard) return tl::unexpected(shard.error());
  const auto key = format::blob_key(*shard, record.index);

  auto guard = impl_->lock(record.index, &record.id);
  auto existing = impl_->record_at(*shard, record.index);
  if (!existing) return tl::unexpected(existing.error());
  if (*existing) {
    if ((*existing)->id == record.id) return PutOutcome::already_present;
    return make_error(Errc::conflict, "store " + impl_->dir.string() + ": index " +
                                          std::to_string(record.index.value) + " (shard " +
                                          std::to_string(shard->value) + ") already holds blob " +
                                          (*existing)->id.hex() + ", not " + record.id.hex());
  }
  auto location = impl_->location_of(record.id);
  if (!location) return tl::unexpected(location.error());
  if (*location) {
    // The id entry may be stale (its record was lost to corruption and
    // deleted): only a live record with this id is a conflict.
    auto other = impl_->record_at((*location)->shard, (*location)->index);
    if (other && *other && (*other)->id == record.id) {
      return make_error(Errc::conflict, "store " + impl_->dir.string() + ": blob " +
                                            record.id.hex() + " is already stored at index " +
                                            std::to_string((*location)->index.value) +
                                            ", cannot store it again at index " +
                                            std::to_string(record.index.value));
    }
  }

  rocksdb::WriteBatch batch;
  CAIRN_TRY_STATUS(
      impl_->batch_put(batch, Family::blobs, key, records::encode_blob_record(record)));
  CAIRN_TRY_STATUS(impl_->batch_put(batch, Family::blob_ids, record.id.span(), key));
  for (uint32_t f = 0; f < fragments.size(); ++f) {
    const auto fkey =
        format::fragment_key(*shard, record.index, FragmentIndex{static_cast<uint8_t>(f)});
    CAIRN_TRY_STATUS(impl_->batch_put(batch, Family::fragments, fkey, fragments[f]));
  }
  CAIRN_TRY_STATUS(impl_->write(batch, "writing blob " + record.id.hex() + " at index " +
                                           std::to_string(record.index.value)));
  impl_->blob_count.fetch_add(1);
  return PutOutcome::stored;
}

Status Store::put_fragment(BlobIndex index, FragmentIndex fragment, ByteSpan bytes) {
  auto shard = impl_->shard_of(index);
  if (!shard) return tl::unexpected(shard.error());
  auto guard = impl_->lock(index, nullptr);
  auto record = impl_->record_at(*shard, index);
  if (!record) return tl::unexpected(record.error());
  const auto fkey = format::fragment_key(*shard, index, fragment);
  if (!*record) {
    return make_error(Errc::not_found,
                      impl_->where(Family::fragments, fkey) + ": no blob is stored at this index");
  }
  if (fragment.value >= (*record)->total_fragments() || bytes.size() != (*record)->fragment_size) {
    return make_error(Errc::invalid_argument,
                      impl_->where(Family::fragments, fkey) + ": " + std::to_string(bytes.size()) +
                          " bytes given; the blob has " +
                          std::to_string((*record)->total_fragments()) + " fragments of " +
                          std::to_string((*record)->fragment_size) + " bytes");
  }
  return impl_->put(Family::fragments, fkey, bytes);
}

Result<Bytes> Store::get_fragment(BlobIndex index, FragmentIndex fragment) const {
  auto shard = impl_->shard_of(index);
  if (!shard) return tl::unexpected(shard.error());
  const auto key = format::fragment_key(*shard, index, fragment);
  auto bytes = impl_->get_required(Family::fragments, key);
  if (bytes && bytes->size() != impl_->params.fragment_size()) {
    return make_error(Errc::corruption, impl_->where(Family::fragments, key) +
                                            ": stored fragment is " +
                                            std::to_string(bytes->size()) + " bytes, expected " +
                                            std::to_string(impl_->params.fragment_size()));
  }
  return bytes;
}

Result<BlobRecord> Store::get_blob_at(BlobIndex index) const {
  auto shard = impl_->shard_of(index);
  if (!shard) return tl::unexpected(shard.error());
  auto record = impl_->record_at(*shard, index);
  if (!record) return tl::unexpected(record.error());
  if (!*record) {
    return make_error(Errc::not_found, "store " + impl_->dir.string() + ": no blob at index " +
                                           std::to_string(index.value) + " (shard " +
                                           std::to_string(shard->value) + ")");
  }
  return std::move(**record);
}

Result<BlobRecord> Store::get_blob(const BlobId& id) const {
  auto location = impl_->location_of(id);
  if (!location) return tl::unexpected(location.error());
  if (*location) {
    auto record = impl_->record_at((*location)->shard, (*location)->index);
    if (!record) return tl::unexpected(record.error());
    if (*record && (*record)->id == id) return std::move(**record);
  }
  return make_error(Errc::not_found,
                    "store " + impl_->dir.string() + ": blob " + id.hex() + " is not stored here");
}

Result<std::vector<BlobIndex>> Store::list_shard(ShardId shard) const {
  const auto prefix = format::shard_key(shard);
  std::vector<BlobIndex> out;
  auto s = impl_->scan(Family::blobs, prefix, prefix, [&](ByteSpan key, ByteSpan) {
    if (auto k = format::decode_blob_key(key)) out.push_back(k->index);
    return true;
  });
  if (!s) return tl::unexpected(s.error());
  return out;
}

Result<ScanPage> Store::scan_shard(ShardId shard, BlobIndex from, size_t limit) const {
  if (limit == 0) return make_error(Errc::invalid_argument, "scan_shard: limit must be > 0");
  const BlobIndex first = std::max(from, shard_range(impl_->params, shard).begin);
  return impl_->scan_records(format::shard_key(shard), format::blob_key(shard, first), limit);
}

Result<ScanPage> Store::scan_blobs(BlobIndex from, size_t limit) const {
  if (limit == 0) return make_error(Errc::invalid_argument, "scan_blobs: limit must be > 0");
  auto shard = impl_->shard_of(from);
  if (!shard) return ScanPage{};  // beyond the last shard a key can name: nothing there
  return impl_->scan_records(ByteSpan{}, format::blob_key(*shard, from), limit);
}

Result<bool> Store::delete_blob(BlobIndex index) {
  CAIRN_TRY_STATUS(impl_->check_open());
  auto shard = impl_->shard_of(index);
  if (!shard) return tl::unexpected(shard.error());
  const auto key = format::blob_key(*shard, index);
  // The id the record at `index` names. Outer nullopt: nothing stored there;
  // inner nullopt: the record is corrupt (it is deleted all the same).
  const auto id_at = [&]() -> Result<std::optional<std::optional<BlobId>>> {
    auto record = impl_->record_at(*shard, index);
    if (!record) {
      if (record.error().code != Errc::corruption) return tl::unexpected(record.error());
      return std::optional<std::optional<BlobId>>(std::optional<BlobId>());
    }
    if (!*record) return std::optional<std::optional<BlobId>>();
    return std::optional<std::optional<BlobId>>((*record)->id);
  };
  for (;;) {
    // Learn the id without the lock, then lock index and id and re-check.
    auto peek = id_at();
    if (!peek) return tl::unexpected(peek.error());
    if (!*peek) return false;
    const std::optional<BlobId> id = **peek;
    auto guard = impl_->lock(index, id ? &*id : nullptr);
    auto now = id_at();
    if (!now) return tl::unexpected(now.error());
    if (!*now) return false;
    if (**now != id) continue;  // replaced between peek and lock: retry

    rocksdb::WriteBatch batch;
    batch.Delete(impl_->cf(Family::blobs), slice(key));
    if (id) {
      // Remove the id entry only when it points here.
      auto location = impl_->location_of(*id);
      if (location && *location && (*location)->index == index) {
        batch.Delete(impl_->cf(Family::blob_ids), slice(id->span()));
      }
    }
    // Every stored record has the network's n fragments (put_blob checks).
    const uint32_t n = impl_->params.total_fragments();
    for (uint32_t f = 0; f < n; ++f) {
      batch.Delete(
          impl_->cf(Family::fragments),
          slice(format::fragment_key(*shard, index, FragmentIndex{static_cast<uint8_t>(f)})));
    }
    CAIRN_TRY_STATUS(impl_->write(batch, "deleting blob at index " + std::to_string(index.value)));
    impl_->blob_count.fetch_sub(1);
    return true;
  }
}

Status Store::put_pending(const BlobId& id, const PendingUpload& upload) {
  if (upload.payload.size() > impl_->params.blob_size) {
    return make_error(Errc::invalid_argument, "pending upload " + id.hex() + " is " +
                                                  std::to_string(upload.payload.size()) +
                                                  " bytes, more than blob_size " +
                                                  std::to_string(impl_->params.blob_size));
  }
  return impl_->put(Family::pending, id.span(), records::encode_pending(upload));
}

Result<PendingUpload> Store::get_pending(const BlobId& id) const {
  auto payload = impl_->get_required(Family::pending, id.span());
  if (!payload) return tl::unexpected(payload.error());
  return records::decode_pending(*payload, impl_->where(Family::pending, id.span()));
}

Status Store::erase_pending(const BlobId& id) { return impl_->erase(Family::pending, id.span()); }

Result<std::vector<BlobId>> Store::list_pending(size_t limit) const {
  std::vector<BlobId> out;
  auto s = impl_->scan(Family::pending, {}, {}, [&](ByteSpan key, ByteSpan) {
    if (out.size() == limit) return false;
    if (key.size() == 32) {
      BlobId id;
      std::copy(key.begin(), key.end(), id.bytes.begin());
      out.push_back(id);
    }
    return true;
  });
  if (!s) return tl::unexpected(s.error());
  return out;
}

Status Store::put_sync_cursor(ShardId shard, const SyncCursor& cursor) {
  return impl_->put(Family::sync_cursors, format::shard_key(shard),
                    records::encode_sync_cursor(cursor));
}

Result<SyncCursor> Store::get_sync_cursor(ShardId shard) const {
  const auto key = format::shard_key(shard);
  auto payload = impl_->get_required(Family::sync_cursors, key);
  if (!payload) return tl::unexpected(payload.error());
  return records::decode_sync_cursor(*payload, impl_->where(Family::sync_cursors, key));
}

Status Store::erase_sync_cursor(ShardId shard) {
  return impl_->erase(Family::sync_cursors, format::shard_key(shard));
}

namespace {
Status check_record_size(size_t size, const std::string& what) {
  if (size > Store::kMaxRecordBytes) {
    return make_error(Errc::invalid_argument, what + " is " + std::to_string(size) +
                                                  " bytes, more than the store accepts (" +
                                                  std::to_string(Store::kMaxRecordBytes) + ")");
  }
  return {};
}
}  // namespace

Status Store::put_response(ShardId shard, Epoch epoch, const NodeId& node, ByteSpan response) {
  const auto key = format::response_key(shard, epoch, node);
  CAIRN_TRY_STATUS(
      check_record_size(response.size(), format::describe_key(Family::responses, key)));
  return impl_->put(Family::responses, key, response);
}

Result<Bytes> Store::get_response(ShardId shard, Epoch epoch, const NodeId& node) const {
  return impl_->get_required(Family::responses, format::response_key(shard, epoch, node));
}

Result<NodeRecords> Store::responses(ShardId shard, Epoch epoch, size_t limit) const {
  const auto start = format::response_key(shard, epoch, NodeId{});
  return impl_->node_records(Family::responses, ByteSpan(start).first(12), start, limit);
}

Status Store::prune_responses(ShardId shard, Epoch before) {
  CAIRN_TRY_STATUS(impl_->check_open());
  const auto begin = format::response_key(shard, Epoch{0}, NodeId{});
  const auto end = format::response_key(shard, before, NodeId{});
  rocksdb::WriteBatch batch;
  batch.DeleteRange(impl_->cf(Family::responses), slice(begin), slice(end));
  return impl_->write(batch, "pruning responses of shard " + std::to_string(shard.value));
}

Status Store::put_peer(const NodeId& node, ByteSpan record) {
  CAIRN_TRY_STATUS(
      check_record_size(record.size(), format::describe_key(Family::peers, node.span())));
  return impl_->put(Family::peers, node.span(), record);
}

Result<Bytes> Store::get_peer(const NodeId& node) const {
  return impl_->get_required(Family::peers, node.span());
}

Status Store::erase_peer(const NodeId& node) { return impl_->erase(Family::peers, node.span()); }

Result<NodeRecords> Store::peers(size_t limit) const {
  return impl_->node_records(Family::peers, {}, {}, limit);
}

}  // namespace cairn::shards
