#include "node/api_json.hpp"

#include "cairn/contracts/params_json.hpp"

namespace cairn::node::api_json {
namespace {

json shard_list(const std::vector<ShardId>& shards) {
  json out = json::array();
  for (const ShardId& s : shards) out.push_back(s.value);
  return out;
}

// The status JSON's "active": a sync pass is running now.
bool sync_active(shards::SyncState s) { return s == shards::SyncState::fetching || s == shards::SyncState::starting; }

}  // namespace

std::string uri(const BlobId& id) { return "cairn://" + id.hex(); }

const char* compression_name(erasure::Compression c) { return c == erasure::Compression::zstd ? "zstd" : "none"; }

json put_file(const PutFileResult& r) {
  return json{{"id", r.id.hex()},
              {"uri", uri(r.id)},
              {"kind", "file"},
              {"size", r.size},
              {"stored_size", r.stored_size},
              {"compression", compression_name(r.compression)},
              {"sha256", to_hex(r.sha256)},
              {"data_blobs", r.data_blobs},
              {"manifest_blobs", r.manifest_blobs},
              {"blobs", r.data_blobs + r.manifest_blobs},
              {"replicas", r.replicas}};
}

json put_blob(const PutBlobResult& r) {
  return json{{"id", r.id.hex()},       {"uri", uri(r.id)},       {"kind", "blob"},        {"size", r.size},
              {"index", r.index.value}, {"shard", r.shard.value}, {"replicas", r.replicas}};
}

json upload_phase(const UploadPhase& p) {
  const bool all_registered = p.encoded && p.registered == p.blobs;
  const char* event = !all_registered ? "registering" : p.acknowledged < p.blobs ? "replicating" : "acknowledged";
  return json{{"event", event},
              {"blobs", p.blobs},
              {"encoded", p.encoded},
              {"registered", p.registered},
              {"acknowledged", p.acknowledged},
              {"confirmed", p.confirmed},
              {"need", p.need}};
}

json object_info(const ObjectInfo& info) {
  json out{
      {"id", info.id.hex()}, {"uri", uri(info.id)},       {"kind", info.kind == ObjectKind::file ? "file" : "blob"},
      {"size", info.size},   {"index", info.index.value}, {"shard", info.shard.value}};
  if (info.kind == ObjectKind::file) {
    out["stored_size"] = info.stored_size;
    out["compression"] = compression_name(info.compression);
    out["sha256"] = to_hex(info.sha256);
    out["data_blobs"] = info.blob_count;
  }
  return out;
}

json blob_status(const BlobStatus& s) {
  json holders = json::array();
  for (const HolderInfo& h : s.holders) {
    holders.push_back(json{{"node", h.node.hex()}, {"endpoint", h.endpoint}, {"local", h.local}});
  }
  return json{{"id", s.id.hex()},
              {"size", s.size},
              {"index", s.index.value},
              {"shard", s.shard.value},
              {"registered_in", s.registered_in.value},
              {"stored_locally", s.stored_locally},
              {"pending", s.pending},
              {"replicas", s.holders.size()},
              {"holders", std::move(holders)}};
}

namespace {

json peer_results(const std::vector<PeerChallengeResult>& list) {
  json out = json::array();
  for (const auto& p : list)
    out.push_back(json{{"node", p.node.hex()}, {"endpoint", p.endpoint}, {"reason", p.reason}});
  return out;
}

json challenges(const std::vector<EpochChallengeStatus>& list) {
  json out = json::array();
  for (const auto& c : list) {
    out.push_back(json{{"shard", c.shard.value},
                       {"epoch", c.epoch.value},
                       {"start_block", c.start_block.value},
                       {"blob_count", c.blob_count},
                       {"own", c.own},
                       {"own_detail", c.own_detail},
                       {"walk_seconds", c.walk_seconds},
                       {"anchored_in", c.anchored_in.value},
                       {"valid", c.valid},
                       {"invalid", peer_results(c.invalid)},
                       {"missing", peer_results(c.missing)}});
  }
  return out;
}

}  // namespace

json node_status(const NodeStatus& s) {
  json peers = json::array();
  for (const PeerStatus& p : s.peers) {
    peers.push_back(json{{"id", p.id.hex()},
                         {"address", p.address},
                         {"outbound", p.outbound},
                         {"score", p.score},
                         {"rtt_us", p.rtt_us},
                         {"shards", shard_list(p.shards)}});
  }
  json sync = json::array();
  for (const shards::SyncProgress& y : s.sync) {
    sync.push_back(json{{"shard", y.shard.value},
                        {"registered", y.known},
                        {"held", y.held},
                        {"next_index", y.cursor.value},
                        {"fetched", y.fetched_blobs},
                        {"failed", y.fetches_failed},
                        {"active", sync_active(y.state)},
                        {"state", std::string(shards::sync_state_name(y.state))},
                        {"remaining", y.remaining},
                        {"conflicts", y.conflicts},
                        {"fetched_bytes", y.fetched_bytes},
                        {"bytes_per_second", y.bytes_per_second},
                        {"last_error", y.last_error}});
  }
  json uploads = json::array();
  for (const RecentUpload& u : s.recent_uploads) {
    uploads.push_back(json{{"id", u.id.hex()},
                           {"kind", u.kind == ObjectKind::file ? "file" : "blob"},
                           {"size", u.size},
                           {"unix_ms", u.unix_ms},
                           {"replicas", u.replicas}});
  }
  const ChainStatus& c = s.chain;
  return json{{"id", s.id.hex()},
              {"version", s.version},
              {"p2p_address", s.p2p_address},
              {"advertised_address", s.advertised_address},
              {"api_address", s.api_address},
              {"uptime_ms", s.uptime_ms},
              {"chain", json{{"backend", c.backend},
                             {"chain_id", to_hex(c.chain_id)},
                             {"sequencer", c.sequencer.hex()},
                             {"head", c.head},
                             {"head_hash", to_hex(c.head_hash)},
                             {"head_timestamp_ms", c.head_timestamp_ms},
                             {"blob_count", c.blob_count},
                             {"registered", c.registered},
                             {"params", contracts::params_to_json(c.params)}}},
              {"shards", shard_list(s.shards)},
              {"peers", std::move(peers)},
              {"blobs_stored", s.blobs_stored},
              {"bytes_stored", s.bytes_stored},
              {"pending_uploads", s.pending_uploads},
              {"sync", std::move(sync)},
              {"scrub", json{{"passes", s.scrub.passes},
                             {"fragments_checked", s.scrub.fragments_checked},
                             {"fragments_bad", s.scrub.fragments_bad},
                             {"repaired_local", s.scrub.fragments_repaired_local},
                             {"repaired_remote", s.scrub.fragments_repaired_remote},
                             {"unrepairable", s.scrub.fragments_unrepairable},
                             {"unreadable", s.scrub.fragments_unreadable},
                             {"last_pass_unix_ms", s.scrub.last_pass_unix_ms},
                             {"bytes_checked", s.scrub.bytes_scrubbed},
                             {"records_corrupt", s.scrub.records_corrupt}}},
              {"challenges", challenges(s.challenges)},
              {"challenge_history", challenges(s.challenge_history)},
              {"recent_uploads", std::move(uploads)},
              {"stopping", s.stopping}};
}

}  // namespace cairn::node::api_json
