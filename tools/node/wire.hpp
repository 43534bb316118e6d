#pragma once
// The storage node's own messages (docs/node-protocol.md): the signed
// notices gossiped on a shard's subnet (an uploader announcing blobs it can
// serve; a serving node confirming blobs it stored) and the fragments
// request/response that moves fragment bytes.
//
// Decoders take untrusted bytes: they are noexcept, bound every length
// before allocating, and accept exactly one encoding.
//
// Wire format: do not change version 1; bump kNodeWireVersion (fragments
// requests carry their own version, kFragmentsRequestV1/V2).

#include <cstdint>
#include <span>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/params.hpp"
#include "cairn/sampling/response.hpp"
#include "cairn/shards/remote.hpp"

namespace cairn::node::wire {

inline constexpr uint8_t kNodeWireVersion = 1;

// Kinds of notice. Wire format: do not renumber.
enum class NoticeKind : uint8_t {
  announce = 1,  // `node` uploaded these blobs and serves their fragments until replicated
  stored = 2,    // `node` holds a verified, sealed replica of these blobs
};

// Entries per notice. 1024 x 44 bytes = 45 KiB: well inside the gossip
// message limit (256 KiB) while batching a second of uploads at 100 MB/s.
inline constexpr size_t kMaxNoticeEntries = 1024;

struct NoticeEntry {
  BlobId id;
  BlobIndex index;
  uint32_t size = 0;  // payload bytes (announce); 0 in stored notices
  bool operator==(const NoticeEntry&) const = default;
};

struct Notice {
  NoticeKind kind = NoticeKind::announce;
  NodeId node;
  // Sender's clock, unix ms. Makes a re-announcement a new gossip message
  // (gossip ids hash the content, and the seen cache drops repeats).
  uint64_t timestamp_ms = 0;
  std::vector<NoticeEntry> entries;
  bool operator==(const Notice&) const = default;
};

// Encodes and signs `notice` for `topic` with `key` (notice.node must be its
// public key). invalid_argument when entries are empty or too many, or when
// an entry's index lies outside `topic` under `params`.
Result<Bytes> encode_notice(const Notice& notice, ShardId topic, const erasure::NetworkParams& params,
                            const SigningKey& key);
// Parses a gossiped notice and checks it: version, kind, entry count, exact
// length, every index inside `topic`, blob sizes <= blob_size, and the
// signature of `node` over the topic and content. invalid_argument for
// malformed bytes, verification_failed for a bad signature, unsupported for
// another version. `check_signature` false skips only the signature (for a
// message the gossip validator already checked).
Result<Notice> decode_notice(ByteSpan data, ShardId topic, const erasure::NetworkParams& params,
                             bool check_signature = true) noexcept;

// ---- storage-challenge responses (gossip, the shard's topic) ----

// Second byte of a gossiped response, beside the notice kinds (the first is
// kNodeWireVersion). Wire format: do not renumber.
inline constexpr uint8_t kResponseMessageKind = 3;

// True when `data` is a response message (version and kind bytes); the
// gossip validator routes on it.
bool is_response_message(ByteSpan data) noexcept;
// version || kResponseMessageKind || sampling::Response::encode().
Bytes encode_response_message(const sampling::Response& response);
// Parses one (structure only) and checks that it answers `topic` and that
// its node's signature verifies. invalid_argument for malformed bytes or
// another shard, verification_failed for a bad signature, unsupported for
// another version. The walk and its openings are checked by
// sampling::verify_response, which needs the chain. The gossip validator
// decodes each message once and hands the result to its handler.
Result<sampling::Response> decode_response_message(ByteSpan data, ShardId topic) noexcept;

// ---- fragments request / response (p2p kind fragments_request) ----

// Versions of the fragments request (its first byte). Version 1 has no
// at_least; version 2 adds it and is sent only when at_least > 0, so probes
// and plain requests stay readable by nodes that speak only version 1.
// Wire format: do not renumber.
inline constexpr uint8_t kFragmentsRequestV1 = 1;
inline constexpr uint8_t kFragmentsRequestV2 = 2;

// Ask for fragments of `id`. An empty list with at_least 0 asks only whether
// the peer holds the blob (answered with the roots and no fragment).
struct FragmentsRequest {
  BlobId id;
  std::vector<uint8_t> fragments;  // distinct, < n, in order of preference
  // When non-zero, the responder substitutes other good fragments of the
  // blob for requested ones it cannot serve, so that the answer carries at
  // least this many (shards::FragmentRequest::at_least); <= n.
  uint8_t at_least = 0;
  bool operator==(const FragmentsRequest&) const = default;
};

// Version 1 when at_least is 0, version 2 otherwise (one encoding per value).
Bytes encode_fragments_request(const FragmentsRequest& request);
// invalid_argument unless the bytes are exactly one request with distinct
// fragment numbers below `total_fragments` and, in version 2, 1 <= at_least
// <= `total_fragments` (version 1 decodes with at_least 0); unsupported for
// another version.
Result<FragmentsRequest> decode_fragments_request(ByteSpan data, uint32_t total_fragments) noexcept;

// One fragment in a response: a view into the response buffer.
struct FragmentView {
  uint8_t index = 0;
  ByteSpan bytes;
};

struct FragmentsResponse {
  uint32_t length = 0;        // payload bytes the responder holds for the blob
  std::vector<Hash32> roots;  // all n fragment roots
  std::vector<FragmentView> fragments;
};

// Appends the response: version, length, fragment size, the n roots, then
// each fragment as (index, fragment_size bytes).
void encode_fragments_response(Bytes& out, uint32_t length, uint32_t fragment_size, std::span<const Hash32> roots,
                               std::span<const FragmentView> fragments);
// Bytes of a response carrying `count` fragments (to stay under the frame limit).
size_t fragments_response_size(const erasure::NetworkParams& params, size_t count) noexcept;
// Parses a response against the network geometry: fragment size and root
// count must match, fragment numbers distinct and < n, length <= blob_size,
// no trailing bytes. The views point into `data`. It does NOT check roots
// against an id or fragments against roots: see verify_response.
Result<FragmentsResponse> decode_fragments_response(ByteSpan data, const erasure::NetworkParams& params) noexcept;

// The response as the storage engines take it (shards::verify_fetched):
// fragments copied into one contiguous buffer, in response order.
shards::FragmentReply to_reply(const FragmentsResponse& response, uint32_t fragment_size);
// The views of a reply's fragments, for encode_fragments_response.
std::vector<FragmentView> views_of(const shards::FragmentReply& reply, uint32_t fragment_size);

// The roots commit to `id` (verification_failed otherwise).
Status verify_roots(const BlobId& id, std::span<const Hash32> roots);

}  // namespace cairn::node::wire
