#include "chain_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <filesystem>

namespace cairn::contracts {
namespace {

std::string number_key(char prefix, uint64_t n) {
  std::string k(9, '\0');
  k[0] = prefix;
  put_be<uint64_t>(reinterpret_cast<uint8_t*>(k.data() + 1), n);
  return k;
}

std::string hash_key(char prefix, const Hash32& h) {
  std::string k(1 + h.size(), prefix);
  std::copy(h.begin(), h.end(), k.begin() + 1);
  return k;
}

rocksdb::Slice slice(ByteSpan b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

ByteSpan span_of(const std::string& s) { return as_bytes(s); }

tl::unexpected<Error> db_error(const std::string& what, const rocksdb::Status& s) {
  return make_error(s.IsCorruption() ? Errc::corruption : Errc::io_error,
                    "dev chain database: " + what + ": " + s.ToString());
}

const std::string kGenesisKey = "G";
const std::string kHeadKey = "N";

}  // namespace

Bytes encode_body(std::span<const ByteSpan> txs) {
  size_t total = 4;
  for (ByteSpan t : txs) total += 2 + t.size();
  Bytes out;
  out.reserve(total);
  append_be<uint32_t>(out, static_cast<uint32_t>(txs.size()));
  for (ByteSpan t : txs) {
    append_be<uint16_t>(out, static_cast<uint16_t>(t.size()));
    append(out, t);
  }
  return out;
}

Result<std::vector<Bytes>> decode_body(ByteSpan data) noexcept {
  ByteReader r(data);
  uint32_t count = 0;
  if (!r.read_be(count)) return make_error(Errc::corruption, "block body: truncated count");
  // Each transaction takes at least its 2-byte length: bound before reserving.
  if (size_t{count} * 2 > r.remaining()) {
    return make_error(Errc::corruption, "block body: count exceeds the data");
  }
  std::vector<Bytes> txs;
  txs.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint16_t len = 0;
    ByteSpan v;
    if (!r.read_be(len) || len > kMaxTxBytes || !r.view(len, v)) {
      return make_error(Errc::corruption,
                        "block body: transaction " + std::to_string(i) + " truncated or oversized");
    }
    txs.emplace_back(v.begin(), v.end());
  }
  if (!r.done()) return make_error(Errc::corruption, "block body: trailing bytes");
  return txs;
}

ChainStore::ChainStore(std::unique_ptr<rocksdb::DB> db, bool sync_writes)
    : db_(std::move(db)), sync_writes_(sync_writes) {}

ChainStore::~ChainStore() = default;

Result<std::unique_ptr<ChainStore>> ChainStore::open(const std::string& path, bool sync_writes) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return make_error(Errc::io_error,
                      "dev chain database: cannot create " + path + ": " + ec.message());
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  // Blocks are appended in key order and rarely read back: keep the write
  // path lean and the memtable large enough for a few big blocks.
  options.write_buffer_size = 64 << 20;
  options.max_background_jobs = 2;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) return db_error("open " + path, s);
  return std::unique_ptr<ChainStore>(
      new ChainStore(std::unique_ptr<rocksdb::DB>(raw), sync_writes));
}

Result<std::optional<std::string>> ChainStore::get(const std::string& key,
                                                   const std::string& what) {
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &v);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return db_error("read " + what, s);
  return std::optional<std::string>(std::move(v));
}

Result<std::optional<ChainInfo>> ChainStore::genesis() {
  auto v = get(kGenesisKey, "genesis");
  if (!v) return tl::unexpected(v.error());
  if (!*v) return std::optional<ChainInfo>();
  auto info = ChainInfo::decode(span_of(**v));
  if (!info) {
    return make_error(Errc::corruption,
                      "dev chain database: genesis record: " + info.error().message);
  }
  return std::optional<ChainInfo>(*info);
}

Status ChainStore::write_genesis(const ChainInfo& info, const BlockHeader& block0) {
  rocksdb::WriteBatch batch;
  const Bytes g = info.encode();
  const Bytes h = block0.encode();
  const Bytes body = encode_body({});
  Bytes head;
  append_be<uint64_t>(head, 0);
  batch.Put(kGenesisKey, slice(g));
  batch.Put(number_key('H', 0), slice(h));
  batch.Put(number_key('B', 0), slice(body));
  batch.Put(kHeadKey, slice(head));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = db_->Write(wo, &batch);
  if (!s.ok()) return db_error("write genesis", s);
  return {};
}

Result<uint64_t> ChainStore::head_number() {
  auto v = get(kHeadKey, "head number");
  if (!v) return tl::unexpected(v.error());
  if (!*v || (*v)->size() != 8) {
    return make_error(Errc::corruption, "dev chain database: head number missing or not 8 bytes");
  }
  return get_be<uint64_t>(reinterpret_cast<const uint8_t*>((*v)->data()));
}

Result<std::string> ChainStore::block_record(char prefix, uint64_t number) {
  auto v = get(number_key(prefix, number), "block " + std::to_string(number));
  if (!v) return tl::unexpected(v.error());
  if (!*v)
    return make_error(Errc::not_found, "block " + std::to_string(number) + " does not exist");
  return std::move(**v);
}

Result<BlockHeader> ChainStore::header(uint64_t number) {
  auto v = block_record('H', number);
  if (!v) return tl::unexpected(v.error());
  auto h = BlockHeader::decode(span_of(*v));
  if (!h) {
    return make_error(Errc::corruption, "dev chain database: header " + std::to_string(number) +
                                            ": " + h.error().message);
  }
  return *h;
}

Result<Bytes> ChainStore::body(uint64_t number) {
  auto v = block_record('B', number);
  if (!v) return tl::unexpected(v.error());
  return Bytes(v->begin(), v->end());
}

Result<std::optional<Receipt>> ChainStore::receipt(const Hash32& tx_hash) {
  auto v = get(hash_key('T', tx_hash), "receipt");
  if (!v) return tl::unexpected(v.error());
  if (!*v) return std::optional<Receipt>();
  auto r = Receipt::decode(span_of(**v));
  if (!r) {
    return make_error(Errc::corruption,
                      "dev chain database: receipt " + to_hex(tx_hash) + ": " + r.error().message);
  }
  return std::optional<Receipt>(std::move(*r));
}

Status ChainStore::commit_block(const BlockHeader& header, std::span<const ByteSpan> txs,
                                std::span<const Receipt> receipts) {
  rocksdb::WriteBatch batch;
  const Bytes h = header.encode();
  const Bytes body = encode_body(txs);
  Bytes head;
  append_be<uint64_t>(head, header.number.value);
  batch.Put(number_key('H', header.number.value), slice(h));
  batch.Put(number_key('B', header.number.value), slice(body));
  Bytes value;
  for (const Receipt& r : receipts) {
    value = r.encode();
    batch.Put(hash_key('T', r.tx_hash), slice(value));
  }
  batch.Put(kHeadKey, slice(head));
  rocksdb::WriteOptions wo;
  wo.sync = sync_writes_;
  rocksdb::Status s = db_->Write(wo, &batch);
  if (!s.ok()) return db_error("write block " + std::to_string(header.number.value), s);
  return {};
}

}  // namespace cairn::contracts
