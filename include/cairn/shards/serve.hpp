#pragma once
// Both ends of a fragments exchange (RemoteFragments). The serving side
// answers a peer's FragmentRequest from the local store: the node's
// fragments_request handler calls serve_fragments on the worker pool and
// encodes the reply on the wire; the in-memory test network calls it
// directly. The receiving side turns a reply into a verified blob ready to
// seal and store (verify_fetched).

#include "cairn/core/result.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/registry.hpp"
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

// Rebuilds the blob `expected` from a peer's reply and verifies it: takes
// any k distinct fragments of the reply (the data fragments are used as they
// are when present, otherwise rebuilt), re-encodes the parity, checks that
// the padding after expected.length is zero and that the n fragments commit
// to expected.id. The result is ready for ingest_committed. Consumes
// `reply` (its buffer becomes the blob's when it carries the data
// fragments first). Errc::verification_failed when the reply is malformed
// (sizes, repeated or out-of-range fragments) or the bytes do not commit to
// the id: the peer sent bad data. Errc::too_many_losses when it carries
// fewer than k fragments (the peer could not serve more; not a lie).
// Errc::invalid_argument when expected.length exceeds blob_size. Blocks
// (ISA-L, SHA-256): worker pool.
Result<erasure::CommittedBlob> verify_fetched(const erasure::Codec& codec,
                                              const RegisteredBlob& expected, FragmentReply reply);

}  // namespace cairn::shards
