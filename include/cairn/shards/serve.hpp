#pragma once
// The serving side of RemoteFragments: answer a peer's FragmentRequest from
// the local store. The node's fragments_request handler calls this on the
// worker pool and encodes the reply on the wire; the in-memory test network
// calls it directly.

#include "cairn/core/result.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/remote.hpp"
#include "cairn/shards/store.hpp"

namespace cairn::shards {

// Loads the requested fragments of the blob at request.index, unseals them
// (one mask computation) and keeps those matching their fragment roots; when
// request.at_least exceeds the good requested ones, tops up with other good
// fragments of the blob. The reply carries the blob's n roots.
//
// Errors: Errc::not_found when no blob is stored at the index or it holds
// another id than request.id; Errc::invalid_argument on a fragment index
// >= n, a repeated fragment, at_least > n, or nothing asked; Errc::corruption when the
// stored record is damaged or fewer than max(at_least, 1) good fragments
// could be served; Errc::invalid_argument when the blob is sealed and no
// matching transform is given. Blocks (RocksDB, sealing): worker pool only.
Result<FragmentReply> serve_fragments(const Store& store, const FragmentRequest& request,
                                      const ReplicaTransform* transform);

}  // namespace cairn::shards
