#pragma once
// The dev chain's RocksDB database (docs/chain.md "Persistence"). One
// database per chain; every block is one atomic write batch holding its
// header, its transactions, their receipts and the new head number, so a
// crash leaves either the whole block or none of it.
//
// Keys (single column family):
//   "G"                 genesis record (ChainInfo::encode)
//   "N"                 head block number, u64 BE
//   "H" || u64 BE n     header of block n (257 bytes)
//   "B" || u64 BE n     transactions of block n (encode_body)
//   "T" || tx_hash      receipt (Receipt::encode)
//
// Thread-safe (RocksDB is); the dev chain serialises writers.

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cairn/contracts/header.hpp"
#include "cairn/contracts/tx.hpp"
#include "cairn/core/result.hpp"

namespace rocksdb {
class DB;
}

namespace cairn::contracts {

// Block body: u32 count, then per transaction u16 length and its wire bytes.
Bytes encode_body(std::span<const ByteSpan> txs);
Result<std::vector<Bytes>> decode_body(ByteSpan data) noexcept;

class ChainStore {
 public:
  // Creates the directory and database when missing.
  static Result<std::unique_ptr<ChainStore>> open(const std::string& path, bool sync_writes);
  ~ChainStore();
  ChainStore(const ChainStore&) = delete;
  ChainStore& operator=(const ChainStore&) = delete;

  Result<std::optional<ChainInfo>> genesis();
  // Writes the genesis record and block 0 in one batch.
  Status write_genesis(const ChainInfo& info, const BlockHeader& block0);

  Result<uint64_t> head_number();
  Result<BlockHeader> header(uint64_t number);
  Result<Bytes> body(uint64_t number);
  Result<std::optional<Receipt>> receipt(const Hash32& tx_hash);

  // One atomic (and, with sync_writes, durable) batch for the whole block.
  Status commit_block(const BlockHeader& header, std::span<const ByteSpan> txs,
                      std::span<const Receipt> receipts);

 private:
  ChainStore(std::unique_ptr<rocksdb::DB> db, bool sync_writes);
  // The value at `key`, nullopt when absent; io_error/corruption from RocksDB.
  Result<std::optional<std::string>> get(const std::string& key, const std::string& what);
  // The 'H' or 'B' record of a block; not_found when absent.
  Result<std::string> block_record(char prefix, uint64_t number);
  std::unique_ptr<rocksdb::DB> db_;
  bool sync_writes_;
};

}  // namespace cairn::contracts
