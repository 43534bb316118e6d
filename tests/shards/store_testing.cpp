#include "shards/store_testing.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "erasure/test_params.hpp"
#include "support/test_util.hpp"

namespace cairn::shards::testing {

erasure::NetworkParams small_params() {
  auto p = test::blob_geometry(4, 2, 8192, 512);
  p.blobs_per_shard = 16;
  return p;
}

std::vector<ByteSpan> SyntheticBlob::spans() const {
  std::vector<ByteSpan> out;
  for (const auto& f : fragments) out.emplace_back(f);
  return out;
}

SyntheticBlob synthetic_blob(const erasure::NetworkParams& params, BlobIndex index,
                             std::mt19937_64& rng) {
  SyntheticBlob b;
  b.record.index = index;
  const Bytes id = test::random_bytes(rng, 32);
  std::copy(id.begin(), id.end(), b.record.id.bytes.begin());
  b.record.length = static_cast<uint32_t>(rng() % (params.blob_size + 1));
  b.record.fragment_size = params.fragment_size();
  b.record.data_fragments = static_cast<uint8_t>(params.data_fragments);
  for (uint32_t f = 0; f < params.total_fragments(); ++f) {
    Hash32 root{};
    const Bytes r = test::random_bytes(rng, 32);
    std::copy(r.begin(), r.end(), root.begin());
    b.record.fragment_roots.push_back(root);
    b.fragments.push_back(test::random_bytes(rng, params.fragment_size()));
  }
  return b;
}

namespace {
rocksdb::Slice slice(ByteSpan b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
void check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) throw std::runtime_error(std::string(what) + ": " + s.ToString());
}
}  // namespace

RawDb::RawDb(const std::filesystem::path& dir, const StoreSettings& settings) {
  DbLayout layout = make_db_layout(settings);
  layout.db.create_if_missing = false;
  rocksdb::DB* raw = nullptr;
  check(rocksdb::DB::Open(layout.db, dir.string(), layout.families, &handles_, &raw), "raw open");
  db_.reset(raw);
}

RawDb::~RawDb() {
  for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
  (void)db_->Close();
}

std::optional<std::string> RawDb::get(format::Family f, ByteSpan key) {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), handles_[format::family_slot(f)], slice(key), &value);
  if (s.IsNotFound()) return std::nullopt;
  check(s, "raw get");
  return value;
}

void RawDb::put(format::Family f, ByteSpan key, const std::string& value) {
  rocksdb::WriteOptions w;
  w.sync = true;
  check(db_->Put(w, handles_[format::family_slot(f)], slice(key), value), "raw put");
}

size_t RawDb::count(format::Family f, ByteSpan prefix) {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[format::family_slot(f)]));
  size_t n = 0;
  for (it->Seek(slice(prefix)); it->Valid() && it->key().starts_with(slice(prefix)); it->Next())
    ++n;
  check(it->status(), "raw iterate");
  return n;
}

void RawDb::flush() { check(db_->Flush(rocksdb::FlushOptions(), handles_), "raw flush"); }

format::FragmentKeyBytes fragment_key(const erasure::NetworkParams& params, BlobIndex index,
                                      uint8_t fragment) {
  return format::fragment_key(params.shard_of(index), index, FragmentIndex{fragment});
}

format::BlobKey blob_key(const erasure::NetworkParams& params, BlobIndex index) {
  return format::blob_key(params.shard_of(index), index);
}

}  // namespace cairn::shards::testing
