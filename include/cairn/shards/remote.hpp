#pragma once
// What the storage engines (shard sync, scrub and repair, remote reads) need
// from the network: ask a peer for fragments of a blob. shards/ knows nothing
// of Asio or p2p; the node implements RemoteFragments over p2p
// request/response (MessageType::fragments_request) and its peer set, and
// tests implement it over other Stores in memory.
//
// Stable interface: changes are additive only.

#include <cstdint>
#include <functional>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"

namespace cairn::shards {

// A question to one peer: fragments of the blob `id` registered at `index`.
struct FragmentRequest {
  BlobId id;
  BlobIndex index;
  // The fragments wanted, by fragment index (0..n-1), distinct, in order of
  // preference (data fragments first makes decoding a copy).
  std::vector<FragmentIndex> fragments;
  // When non-zero, the peer may substitute other fragments it holds for
  // requested ones it cannot serve (damaged or missing), so that the reply
  // carries at least this many distinct fragments. A sync asks for the k
  // data fragments with at_least = k: any k good fragments rebuild a blob.
  uint32_t at_least = 0;
};

// A peer's answer. Nothing in it is trusted: the receiver checks each
// fragment against its root and the roots against the blob id (or the whole
// blob with erasure::verify_blob) before using any byte.
struct FragmentReply {
  // Which fragment each slice of `data` is, in order; distinct.
  std::vector<FragmentIndex> fragments;
  // The fragments, UNSEALED (as committed), fragments.size() * fragment_size
  // bytes, contiguous: slice i is fragment fragments[i]. One buffer so a
  // receiver can move it into an erasure::EncodedBlob without copying.
  Bytes data;
  // The blob's n fragment roots as the peer has them (its blob record), so
  // each fragment can be checked on its own: fragment_root(slice i) ==
  // fragment_roots[fragments[i]] and commitment_from_roots(fragment_roots)
  // == id. Empty when the peer does not send them; the receiver must then
  // verify the whole blob (erasure::verify_blob).
  std::vector<Hash32> fragment_roots;
};

// What a fetch taught the caller about a peer, for the node's peer scoring.
// Not persisted.
enum class PeerVerdict : uint8_t {
  good,          // served valid data
  slow,          // timed out or was overtaken by a faster peer
  unavailable,   // did not have the data, or refused (busy, not_found)
  invalid_data,  // sent bytes that fail verification: score down, may ban
};

// Handle of one fetch, for cancel(). 0 is never a valid handle.
using FetchHandle = uint64_t;

// Exactly-once completion of a fetch (see RemoteFragments::fetch).
using FetchCallback = std::function<void(Result<FragmentReply>)>;

class RemoteFragments {
 public:
  virtual ~RemoteFragments() = default;

  // Peers believed to serve `shard` and reachable now (connected, or known
  // from the chain registry and dialable), excluding this node. Order is
  // the implementation's preference; callers apply their own scoring.
  // Non-blocking, any thread.
  virtual std::vector<NodeId> peers(ShardId shard) = 0;

  // Asks `peer` for fragments. Non-blocking, any thread.
  //
  // Either fails at once — Errc::not_found (peer unknown / not connected),
  // Errc::busy (the implementation's per-peer or global in-flight cap is
  // reached), Errc::invalid_argument (malformed request), Errc::cancelled
  // (shutting down) — and never calls `done`; or returns a handle and calls
  // `done` exactly once, on any thread (never inside this call), with the
  // reply or an error: Errc::timeout (the implementation enforces a
  // deadline, so `done` always comes), Errc::not_found (the peer does not
  // hold the blob), Errc::busy, Errc::io_error (disconnected),
  // Errc::corruption / invalid_argument (the reply did not parse),
  // Errc::cancelled (cancel() or shutdown).
  //
  // `done` must be cheap and non-blocking (post heavy work elsewhere).
  virtual Result<FetchHandle> fetch(const NodeId& peer, const FragmentRequest& request,
                                    FetchCallback done) = 0;

  // Cancels a pending fetch; its `done` still runs exactly once (with
  // Errc::cancelled, or with the result if it was already on its way).
  // Unknown or finished handles are ignored. Non-blocking, any thread.
  virtual void cancel(FetchHandle handle) = 0;

  // Feedback about a peer after a fetch was judged (for scoring and banning
  // in the p2p layer). Optional; the default ignores it. Non-blocking.
  virtual void report(const NodeId& peer, PeerVerdict verdict) {
    (void)peer;
    (void)verdict;
  }
};

}  // namespace cairn::shards
