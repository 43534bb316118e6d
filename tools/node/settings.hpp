#pragma once
// NodeSettings: everything `cairn node` can be told, one struct nesting each
// module's settings (STYLE.md, "Settings structs"). Filled from defaults, then
// a TOML file (--config), then CAIRN_* environment variables, then flags
// (config.hpp); every field is documented with unit and default in
// docs/config.md, whose key names match the TOML keys.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cairn/contracts/settings.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/p2p/discovery.hpp"
#include "cairn/p2p/gossip.hpp"
#include "cairn/p2p/settings.hpp"
#include "cairn/sampling/epoch_ports.hpp"
#include "cairn/shards/settings.hpp"

namespace cairn::node {

using namespace std::chrono_literals;

// The HTTP API (server in tools/node, docs/design.md section 8).
struct ApiSettings {
  // "HOST:PORT" the API listens on; port 0 picks a free one. Empty: no API.
  // Default 127.0.0.1:8641 (loopback only: writes need no token there).
  std::string listen = "127.0.0.1:8641";
  // Bearer token required for writes (uploads) when `listen` is not a
  // loopback address; the server refuses to start beyond loopback without
  // one. Default empty.
  std::string token;
  // Threads serving HTTP connections. Default 8: each upload or download
  // holds one for its duration; more allow more concurrent transfers at the
  // cost of memory (each may buffer up to a blob per stream).
  uint32_t threads = 8;
  // Largest upload body, bytes. Default 4 GiB. Bodies are spooled to a
  // temporary file in the data dir, so this bounds disk, not memory.
  uint64_t max_upload_bytes = uint64_t{4} << 30;
  // A connection idle or stalled this long is closed. Default 30 s.
  std::chrono::milliseconds read_timeout = 30s;
  // File holding the token (first line; surrounding whitespace ignored),
  // read at start when `token` is empty. Must not be readable by group or
  // others (chmod 600). Default empty.
  std::string token_file;
  // Accepted connections waiting for a free thread; when full, accepting
  // pauses and the kernel backlog holds the rest. Default 64.
  uint32_t max_pending_connections = 64;
};

// Accepting uploads and replicating them to the shard's serving nodes.
struct UploadSettings {
  // Serving nodes that must confirm a stored, sealed replica of a blob
  // before an upload is acknowledged; capped at the nodes the registry lists
  // for the shard (a lone node acknowledges with its own replica). Default 2:
  // an acknowledged blob survives the loss of any one node. Higher: safer,
  // slower acknowledgements.
  uint32_t min_replicas = 2;
  // How long an upload call waits for every blob's confirmations. Default
  // 120 s. The data stays pending (persisted) and keeps replicating after a
  // timeout; only the caller stops waiting.
  std::chrono::milliseconds ack_timeout = 120s;
  // Blobs of all uploads in flight at once (encoded, registered, awaiting
  // confirmations). Default 1024 (x 128 KiB payload = 128 MiB held). A full
  // window makes upload calls wait (they never fail for it).
  uint32_t max_blobs_in_flight = 1024;
  // PutBlob transactions submitted per chain call. Default 256.
  uint32_t register_batch = 256;
  // A pending blob that has not reached min_replicas is re-announced to its
  // shard after this long without a new confirmation. Default 5 s.
  std::chrono::milliseconds reannounce_interval = 5s;
  // Unused: announced blobs are sync hints, whose fetches each have
  // fetch.request_timeout and are hedged after storage.sync.hedge_after_ms.
  // Still read, so configuration files that set it load. Default 10 s.
  std::chrono::milliseconds pull_timeout = 10s;
  // Announced blobs a serving node is pulling at once (the sync engine's
  // max_hint_fetches). Default 64; more are held up to `max_pull_queue`
  // (max_hints), beyond which announcements are dropped (the uploader
  // re-announces; sync catches up otherwise).
  uint32_t max_concurrent_pulls = 64;
  uint32_t max_pull_queue = 65536;
};

// Reading blobs from local storage and from peers.
struct FetchSettings {
  // Holders asked at once for the fragments of one blob (disjoint sets, data
  // fragments first). Default 1: every holder unseals a whole blob to serve
  // any part of it (one mask computation per blob and holder), so spreading
  // one blob over P holders costs the network P masks; a stream of reads
  // still runs on every holder at once (successive blobs start at successive
  // holders, readahead_blobs in flight), and a holder that is slow or fails
  // is replaced (hedge_after). More lowers a lone blob's latency on a fast
  // network at that CPU cost.
  uint32_t parallel_peers = 1;
  // A peer that has not answered within this long is replaced by another
  // holder (the slow request is left to finish or time out). Default 2 s.
  std::chrono::milliseconds hedge_after = 2s;
  // A fragments request (reads, pulls, sync, scrub repair) is abandoned
  // after this long. Default 10 s.
  std::chrono::milliseconds request_timeout = 10s;
  // Whole-blob deadline for gathering k verified fragments. Default 30 s.
  std::chrono::milliseconds blob_timeout = 30s;
  // Blobs a file read fetches ahead of the one being streamed. Default 16
  // (x 128 KiB = 2 MiB buffered per stream).
  uint32_t readahead_blobs = 16;
};

// Storage challenges and replica-count proofs: the epoch driver's settings
// (cairn/sampling/epoch_ports.hpp), under [challenge].
using ChallengeSettings = sampling::ChallengeSettings;

// The consensus backend.
struct NodeChainSettings {
  // "embedded": run a dev chain inside the node (data in DATA_DIR/devchain,
  // sequencer key DATA_DIR/devchain/sequencer.key). Otherwise a dev chain's
  // JSON-RPC URL, e.g. "http://127.0.0.1:8645" (a `cairn devchain` shared by
  // several nodes). Default "embedded".
  std::string backend = "embedded";
  // Genesis of a NEW embedded chain: "default" (docs/design.md section 2) or
  // "localnet" (256 blobs per shard). An existing chain keeps its genesis.
  std::string network = "default";
  // Block interval of a new embedded chain, ms. Default 0: the network
  // preset's (1000 ms). Shorter blocks register uploads sooner.
  uint32_t block_time_ms = 0;
  // Also serve the embedded chain's JSON-RPC (chain.rpc.host:port) so other
  // nodes can use it as their backend. Default false.
  bool serve_rpc = false;
  // How often the node re-reads the registry (nodes per shard) that feeds
  // discovery and blob status. Default 10 s.
  std::chrono::milliseconds registry_refresh = 10s;
  // Dev chain, JSON-RPC server and client settings (contracts/settings.hpp).
  contracts::ChainSettings chain;
};

struct MetricsSettings {
  // "HOST:PORT" of a listener serving only GET /metrics, besides the API's
  // /metrics; port 0 picks a free one. Default empty: no separate listener.
  // Read-only, so it needs no token on any address.
  std::string listen;
};

// The node's log (include/cairn/core/log.hpp; docs/config.md, "Logs").
// SIGHUP re-reads `level` and reopens `file`.
struct LogSettings {
  // "LEVEL[,MODULE=LEVEL...]" with LEVEL debug, info, warn, error or off,
  // e.g. "info,p2p=debug,challenge=warn": the default level, then
  // per-module overrides. Environment: CAIRN_LOG. Default "info". debug is
  // verbose (every challenge response, gossip and sync step).
  std::string level = "info";
  // "text" (one "TIME LEVEL MODULE: MESSAGE" line per record) or "json"
  // (one {"ts","level","module","msg"} object per line, for log shippers).
  // Default "text".
  std::string format = "text";
  // File the log is appended to (created mode 0640). Default empty: stderr
  // (the journal under systemd). SIGHUP reopens it after logrotate.
  std::string file;
};

struct NodeSettings {
  // Identity key (identity.key), store (store/), embedded chain (devchain/),
  // pending uploads. Default: $CAIRN_DATA_DIR, else $XDG_DATA_HOME/cairn,
  // else ~/.local/share/cairn.
  std::string data_dir;
  // Peer-to-peer listen address "HOST:PORT". Default 127.0.0.1:8640 (no
  // exposure by default; use 0.0.0.0:8640 with `advertise` on a network).
  std::string listen = "127.0.0.1:8640";
  // Address other nodes dial, registered on the chain. Default empty: the
  // bound listen address.
  std::string advertise;
  // Peers dialled at start ("HOST:PORT"), besides the chain registry.
  std::vector<std::string> bootstrap;
  // Shards served. nullopt ("auto", default): every shard the chain has
  // opened, following new ones as they open.
  std::optional<std::vector<ShardId>> shards;

  NodeChainSettings chain;
  ApiSettings api;
  MetricsSettings metrics;
  UploadSettings upload;
  FetchSettings fetch;
  ChallengeSettings challenge;
  // Store, worker pool (and the sync / scrub engines' settings as they land).
  shards::ShardsSettings storage;
  p2p::P2pSettings p2p;
  p2p::GossipSettings gossip;
  p2p::DiscoverySettings discovery;
  LogSettings log;

  // Graceful stop: how long in-flight writes may take to finish after
  // SIGINT/SIGTERM before the node gives up on them (they stay pending and
  // resume at the next start). Default 20 s.
  std::chrono::milliseconds stop_timeout = 20s;
};

}  // namespace cairn::node
