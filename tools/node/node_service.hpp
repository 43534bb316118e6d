#pragma once
// NodeService: what a running storage node offers to its front-ends (the
// HTTP API server, in-process tests, the benches). Every call BLOCKS until
// its answer is known: call it from the front-end's own threads, never from
// the node's network thread or a worker of its pool (calls made there fail
// with Errc::invalid_argument rather than deadlock).
//
// Thread-safety: every member may be called from many threads at once.
// Lifetime: a NodeService is owned by the Node (node.hpp); front-ends must
// stop calling it before Node::stop() returns (the Node stops its API server
// first for that reason). Calls in flight when the node begins to stop
// finish, or fail with Errc::cancelled; calls made after fail with
// Errc::cancelled.
//
// Ids are blob ids (docs/design.md section 3): a file's id is the id of its root
// manifest blob, so one id space covers both. Errors follow core/result.hpp:
//   invalid_argument  malformed input (oversize blob, bad range)
//   not_found         nobody (local store, chain registry, peers) knows the id
//   too_many_losses   the chain knows the blob but fewer than k verified
//                     fragments could be gathered
//   corruption        gathered data does not match the id
//   timeout           replicas did not confirm within the upload timeout
//                     (the data is kept as a pending upload and retried)
//   busy              a bounded queue is full; retry later
//   cancelled         the node is stopping

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/file.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/sampling/epoch_ports.hpp"
#include "cairn/shards/reader.hpp"
#include "cairn/shards/scrub.hpp"
#include "cairn/shards/sync.hpp"
#include "cairn/shards/upload.hpp"

namespace cairn::node {

// ---- uploads ----

// Where an upload stands once its bytes are in (PutOptions::phases).
using UploadPhase = shards::UploadPhase;
using PhaseFn = std::function<void(const UploadPhase&)>;

struct PutOptions {
  // Whether a file is zstd-compressed before it is cut into blobs
  // (automatic: when a sample shrinks; the rule is part of the file id,
  // docs/blob-format.md). Ignored by put_blob.
  erasure::FileOptions::Compress compress = erasure::FileOptions::Compress::automatic;
  // Serving nodes that must confirm a stored, sealed replica of every blob
  // before the call returns. nullopt: UploadSettings::min_replicas. Capped
  // at the number of nodes the chain registry lists for the blob's shard
  // (so a lone node acknowledges with its own replica); at least 1.
  std::optional<uint32_t> min_replicas;
  // Bound on the whole call. nullopt: UploadSettings::ack_timeout. On
  // timeout the blobs not yet confirmed stay in the pending store and keep
  // being replicated in the background; the call fails with Errc::timeout.
  std::optional<std::chrono::milliseconds> timeout;
  // Called on the CALLING thread while the call works and waits: when the
  // phase changed, at most every shards::kPhaseInterval, and once more with every
  // blob acknowledged just before a successful return. It may block (an
  // HTTP client reading slowly): the upload goes on meanwhile, only the
  // call's return waits for it. Empty: no phases.
  PhaseFn phases;
};

struct PutFileResult {
  BlobId id;                 // the file id (root manifest blob); URI cairn://<id hex>
  uint64_t size = 0;         // original bytes
  uint64_t stored_size = 0;  // bytes after compression
  erasure::Compression compression = erasure::Compression::none;
  Hash32 sha256{};  // of the original bytes
  uint64_t data_blobs = 0;
  uint64_t manifest_blobs = 0;
  // Fewest confirmed replicas over the file's blobs when the call returned
  // (>= the min_replicas asked for).
  uint32_t replicas = 0;
};

// The answer to a file upload: what encode_file produced and the replicas
// confirmed.
inline PutFileResult put_file_result(const erasure::FileSummary& s, uint32_t replicas) {
  PutFileResult r;
  r.id = s.id;
  r.size = s.size;
  r.stored_size = s.stored_size;
  r.compression = s.compression;
  r.sha256 = s.sha256;
  r.data_blobs = s.data_blobs;
  r.manifest_blobs = s.manifest_blobs;
  r.replicas = replicas;
  return r;
}

struct PutBlobResult {
  BlobId id;
  uint32_t size = 0;  // payload bytes
  BlobIndex index;    // assigned by the chain
  ShardId shard;
  uint32_t replicas = 0;  // confirmed replicas when the call returned
};

// ---- reads ----

// Objects as the reader in shards/ serves them (cairn/shards/reader.hpp).
using ObjectKind = shards::ObjectKind;
using ObjectInfo = shards::ObjectInfo;
using ByteSink = shards::ByteSink;
using ReadRange = shards::ReadRange;

// ---- status ----

struct HolderInfo {
  NodeId node;
  std::string endpoint;  // as registered on the chain; may be empty
  bool local = false;    // this node
};

struct BlobStatus {
  BlobId id;
  uint32_t size = 0;
  BlobIndex index;
  ShardId shard;
  BlockNumber registered_in;
  bool stored_locally = false;
  // Nodes known to hold a verified, sealed replica: this node when it does,
  // and every node whose storage confirmation this node has seen (gossip on
  // the shard's subnet, or an answer to a probe of the shard's registered
  // nodes). Sorted by node id.
  std::vector<HolderInfo> holders;
  // Still in this node's pending-upload store (not yet min_replicas).
  bool pending = false;
};

struct PeerStatus {
  NodeId id;
  std::string address;  // advertised (dialable) address, may be empty
  bool outbound = false;
  double score = 0;
  uint64_t rtt_us = 0;          // zero until measured
  std::vector<ShardId> shards;  // as the peer announced them
};

struct ChainStatus {
  std::string backend;  // "embedded" or the JSON-RPC URL
  Hash32 chain_id{};
  NodeId sequencer;
  uint64_t head = 0;  // block number
  Hash32 head_hash{};
  uint64_t head_timestamp_ms = 0;
  uint64_t blob_count = 0;        // blobs registered network-wide
  bool registered = false;        // our RegisterNode is included
  erasure::NetworkParams params;  // the network's parameters (genesis)
};

// ---- storage challenges (docs/design.md section 7) ----

// The epoch driver's records (cairn/sampling/epoch_ports.hpp): a
// registered node that did not count in an epoch, the latest finished epoch
// of a served shard as this node saw it (own is "anchored", "failed" or
// "disabled"), and a replica-count proof file as the node serves it.
using PeerChallengeResult = sampling::PeerEpochResult;
using EpochChallengeStatus = sampling::EpochResult;
using ProofFile = sampling::EpochProof;
// Finished epochs kept per shard in NodeStatus::challenge_history.
inline constexpr size_t kChallengeHistoryEpochs = sampling::kEpochHistory;

// One successful upload through this node's API (NodeStatus::recent_uploads).
struct RecentUpload {
  BlobId id;  // the file id (root manifest) or the blob id
  ObjectKind kind = ObjectKind::file;
  uint64_t size = 0;      // original bytes (files) or payload bytes (blobs)
  uint64_t unix_ms = 0;   // when the upload returned
  uint32_t replicas = 0;  // confirmed replicas when it returned
};

// Uploads kept in NodeStatus::recent_uploads (the newest; older ones drop).
inline constexpr size_t kRecentUploads = 20;

struct NodeStatus {
  NodeId id;
  std::string version;
  std::string p2p_address;  // bound listen address
  std::string advertised_address;
  std::string api_address;  // "" when no API server runs
  uint64_t uptime_ms = 0;
  ChainStatus chain;
  std::vector<ShardId> shards;  // served
  std::vector<PeerStatus> peers;
  uint64_t blobs_stored = 0;
  uint64_t bytes_stored = 0;     // sealed fragment bytes held (n * fragment_size per blob)
  uint64_t pending_uploads = 0;  // blobs waiting for replicas
  // The modules' own reports, as they give them (docs/http-api.md maps
  // them to the status JSON): the sync engine's progress of every shard it
  // syncs, and the scrubber's counters since start.
  std::vector<shards::SyncProgress> sync;
  shards::ScrubStats scrub;
  // The latest finished epoch of every served shard with blobs (empty before
  // the first one ends).
  std::vector<EpochChallengeStatus> challenges;
  // The last kChallengeHistoryEpochs finished epochs of every served shard
  // with blobs, by shard, oldest first within a shard (the latest of each is
  // also in `challenges`).
  std::vector<EpochChallengeStatus> challenge_history;
  // The last kRecentUploads successful uploads through this node, newest
  // first (kept in memory: empty after a restart).
  std::vector<RecentUpload> recent_uploads;
  bool stopping = false;
};

class NodeService {
 public:
  virtual ~NodeService() = default;

  // The node's clock: the HTTP front-end times requests and bounds body
  // drains with it. Real time unless the node was given another.
  virtual Clock& clock() const { return p2p::real_clock(); }

  // Splits, (maybe) compresses, encodes and commits `content` as a file,
  // registers every blob on the chain, and returns once every blob has
  // min_replicas confirmed replicas. `content` must stay valid during the
  // call. An empty file is valid (one manifest blob).
  virtual Result<PutFileResult> put_file(ByteSpan content, const PutOptions& options) = 0;
  // Same, for a file on disk (the HTTP server's spooled upload); it is
  // memory-mapped, not copied. io_error when it cannot be read.
  virtual Result<PutFileResult> put_file(const std::filesystem::path& path, const PutOptions& options) = 0;
  // Stores one raw blob (at most blob_size bytes; invalid_argument above).
  virtual Result<PutBlobResult> put_blob(ByteSpan payload, const PutOptions& options) = 0;

  // What `id` is and how many bytes read() yields for it. not_found when
  // neither the store nor the chain registry knows it.
  virtual Result<ObjectInfo> stat(const BlobId& id) = 0;
  // Streams `range` of the object to `sink`: a file's original bytes or a
  // blob's payload. Every blob is checked against its id before its bytes
  // reach the sink; a whole-file read also checks the file's SHA-256 at the
  // end (Errc::corruption then, after the bytes were streamed: a caller
  // must treat the output as valid only when read() succeeds).
  virtual Status read(const BlobId& id, const ReadRange& range, const ByteSink& sink) = 0;
  // The whole blob payload (convenience for small reads and tests).
  virtual Result<Bytes> read_blob(const BlobId& id) = 0;

  // Registry entry and known holders of one blob. not_found when the chain
  // has no such blob.
  virtual Result<BlobStatus> blob_status(const BlobId& id) = 0;
  virtual Result<NodeStatus> status() = 0;
  // Prometheus text exposition (version 0.0.4) of every node metric.
  virtual std::string metrics_text() = 0;

  // The replica-count proof of (shard, epoch), assembled from the chain's
  // headers e*E .. e*E+D and the valid anchored responses this node holds.
  // conflict while the epoch has not finished (its results settle
  // challenge.settle_blocks after the deadline); not_found when the shard
  // held no blob at e*E or the epoch's responses were pruned
  // (challenge.retain_epochs) or never seen. Services without storage
  // challenges answer unsupported.
  virtual Result<ProofFile> replica_proof(ShardId shard, Epoch epoch) {
    (void)shard;
    (void)epoch;
    return make_error(Errc::unsupported, "this service keeps no storage-challenge responses");
  }
  // The proof for the shard of blob (or file root) `id` at the latest
  // finished epoch that covers it (registered at or before its start).
  // not_found for an unknown id; conflict when no covering epoch has
  // finished yet.
  virtual Result<ProofFile> latest_proof(const BlobId& id) {
    (void)id;
    return make_error(Errc::unsupported, "this service keeps no storage-challenge responses");
  }
};

}  // namespace cairn::node
