#pragma once
// Settings of the contracts module (dev chain, its JSON-RPC server, the
// JSON-RPC chain and clock clients). Every field: unit, default, trade-off.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "cairn/core/ids.hpp"

namespace cairn::contracts {

struct DevChainSettings {
  // RocksDB directory holding the chain (created when missing). The dev
  // chain keeps its own database; it shares nothing with the fragment store.
  std::string db_path;
  // Transactions admitted but not yet in a block. Default 131072 (about
  // 40 MB of PutBlobs). Larger absorbs longer bursts at the cost of memory
  // and of latency for the last admitted; a full mempool answers mempool_full.
  size_t max_mempool_txs = 131072;
  // Most transactions sealed into one block. Default 65536, i.e. 65k tx/s at
  // the default 1 s block time. Larger blocks mean longer apply/persist
  // pauses (registry reads wait for them).
  size_t max_block_txs = 65536;
  // Threads verifying signatures in submit_many(); 0 = one per hardware
  // thread. ed25519 verification costs ~40 us, so this bounds admission
  // throughput at about 25k tx/s per thread.
  unsigned verify_threads = 0;
  // fsync each block before announcing it (RocksDB WriteOptions::sync).
  // Default true: an announced block survives power loss. false is faster,
  // and still survives a process crash (the write-ahead log is in the page
  // cache) but may lose the last blocks on power loss.
  bool sync_writes = true;
};

struct RpcServerSettings {
  // Listen address. Default loopback only: the dev chain accepts writes from
  // anyone who can reach it.
  std::string host = "127.0.0.1";
  // TCP port; 0 picks a free one (reported by RpcServer::port()). Default 8645.
  uint16_t port = 8645;
  // Largest request body, bytes; larger bodies get HTTP 413. Default 4 MiB
  // (a batch of ~14k PutBlob transactions in hex).
  size_t max_body_bytes = 4u << 20;
  // Most calls in one JSON-RPC batch; more is refused with -32600. Default 1000.
  size_t max_batch = 1000;
  // Threads serving connections. Default 32. Each open keep-alive
  // connection holds one (a Chain client keeps two: calls and head polling),
  // so this caps the clients served at once; others wait, up to
  // max_pending_connections, until a connection closes or idles out.
  unsigned threads = 32;
  // Accepted connections waiting for a thread; when full, accepting pauses
  // (the kernel backlog takes the rest). Default 64.
  size_t max_pending_connections = 64;
  // A connection idle or stalled this long is closed, ms. Default 5000.
  uint32_t read_timeout_ms = 5000;
  // Most headers per cairn_getHeaders call. Default 1024 (263 KB of JSON).
  uint32_t max_headers_per_call = 1024;
};

struct RpcClientSettings {
  // TCP connect timeout, ms. Default 2000.
  uint32_t connect_timeout_ms = 2000;
  // Waiting for a response, ms. Default 10000.
  uint32_t read_timeout_ms = 10000;
  // Head polling period for subscriptions, ms; 0 = a quarter of the chain's
  // block time clamped to [25, 1000] (dev chain) or 1000 (Ethereum). Shorter
  // notices blocks sooner at the cost of one request per period.
  uint32_t poll_interval_ms = 0;
  // When a subscription falls further behind than this many blocks, older
  // blocks are skipped (their numbers are still increasing). Default 256.
  uint32_t max_catchup_blocks = 256;
  // Dev chain client: refuse a chain whose sequencer key differs (the trust
  // root). Default unset: trust the key the chain reports on first contact.
  std::optional<NodeId> expected_sequencer;
};

// The module's settings, nested into the node's settings.
struct ChainSettings {
  DevChainSettings devchain;
  RpcServerSettings rpc;
  RpcClientSettings client;
};

}  // namespace cairn::contracts
