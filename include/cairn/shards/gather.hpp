#pragma once
// The one way the node gets fragments of a blob from peers (reads, the
// replication pull, holder probes), over the RemoteFragments port.
//
// A gather asks up to GatherSettings::parallel_peers candidates at once for
// disjoint shares of the wanted fragments (in the caller's order: data
// fragments first makes decoding a copy), each request carrying at_least so
// a peer may substitute fragments it holds for damaged ones. Every reply is
// checked on the worker pool before any byte is used: its roots must commit
// to the blob id and each fragment must match its root. A request
// unanswered after hedge_after is hedged (its share is asked of another
// candidate; the slow one may still finish), and a peer that fails is
// replaced by the next candidate. Verdicts go to RemoteFragments::report:
// good (contributed verified fragments), slow (timed out, or overtaken
// after a hedge), unavailable (not_found, busy, unreachable), invalid_data
// (a reply failing verification: the peer is not asked again by this
// gather).
//
// Threading: no threads of its own. gather(), probe(), cancel(), peers()
// and stats() may be called from any thread (the work is posted to the
// executor given to the constructor, the node's network thread; a cancel()
// that happens after its gather() returned is seen); stop() and active()
// only on the executor. Callbacks (`done`) run on the executor, exactly
// once. RemoteFragments completions may arrive on any thread: they are
// posted to the executor. Time comes from
// the injected cairn::Clock; verification runs on the WorkerPool (a full
// pool is offered the job again after busy_retry, within the deadline).
//
// Bounded: at most max_gathers gathers and probes at once (beyond that the
// new one completes with Errc::busy); per gather, requests are bounded by
// the candidates times max_retries_per_peer.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cairn/core/asio_fwd.hpp"
#include "cairn/core/clock.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/core/worker_pool.hpp"
#include "cairn/erasure/params.hpp"
#include "cairn/shards/remote.hpp"

namespace cairn::shards {

struct GatherSettings {
  // Candidates asked at once for disjoint shares of one blob. Default 1:
  // a holder unseals the whole blob to serve any part of it, so spreading
  // one blob over P holders costs P mask computations; a stream of blobs
  // still spreads over holders when callers rotate the candidates. More
  // lowers a lone blob's latency at that CPU cost.
  uint32_t parallel_peers = 1;
  // A request unanswered this long has its share asked of another
  // candidate as well (the first may still answer). Default 2 s.
  Duration hedge_after = std::chrono::seconds(2);
  // The whole gather's deadline; Errc::timeout after it. Default 30 s.
  Duration deadline = std::chrono::seconds(30);
  // A peer that answered busy or io_error (a dropped connection) is asked
  // again at most this many times by one gather. Default 3.
  uint32_t max_retries_per_peer = 3;
  // Pause before offering again what a full worker pool or a busy port
  // refused. Default 20 ms.
  Duration busy_retry = std::chrono::milliseconds(20);
  // Gathers and probes under way at once. Default 4096 (each holds at most
  // one blob's fragments: 4096 x ~200 KiB = 800 MiB in the worst case; the
  // node's callers bound themselves far below: readahead per stream,
  // max_concurrent_pulls).
  uint32_t max_gathers = 4096;
};

struct GatherRequest {
  BlobId id;
  BlobIndex index;
  // Fragments that are of use, in order of preference, distinct (a read:
  // all n, data first; a repair: the damaged ones).
  std::vector<FragmentIndex> wanted;
  // Distinct verified fragments of `wanted` that complete the gather,
  // 1..wanted.size() (k for a read or a pull).
  uint32_t at_least = 0;
  // Deadline of this gather; zero: GatherSettings::deadline.
  Duration deadline = Duration::zero();
  // Candidates in order of preference, distinct, this node excluded.
  std::vector<NodeId> peers;
};

struct Gathered {
  // The verified fragments (at least request.at_least of `wanted`), in
  // ascending fragment order, contiguous in `data` (with room reserved for
  // all n, so verify_fetched can append parity without copying), and the
  // blob's n roots, which commit to the id.
  FragmentReply reply;
  // Peers whose fragments are in `reply`, in the order they answered.
  std::vector<NodeId> served;
};

// Cumulative counters since the gatherer was built (metrics). Readable
// from any thread.
struct GatherStats {
  uint64_t gathers = 0;          // gathers started (probes not counted)
  uint64_t failed = 0;           // gathers that ended without enough fragments
  uint64_t requests = 0;         // requests sent (hedges and probes included)
  uint64_t hedged = 0;           // requests overtaken by a hedge to another peer
  uint64_t fragments = 0;        // verified fragments received
  uint64_t invalid_replies = 0;  // replies failing verification
};

using GatherHandle = uint64_t;  // 0 is never a valid handle
using GatherCallback = std::function<void(Result<Gathered>)>;
using ProbeCallback = std::function<void(std::vector<NodeId>)>;

class FragmentGather {
 public:
  // Runs `fn` on the executor later, never inline (the node posts to its
  // network thread). Callable from any thread.
  using Post = std::function<void(std::function<void()>)>;

  // Everything passed by reference must outlive the gatherer. `executor`
  // is where every call, timer and callback runs; `params` are the
  // network's (fragment size and count, chunk size of the roots).
  FragmentGather(RemoteFragments& remote, WorkerPool& pool, Clock& clock,
                 const asio::any_io_executor& executor, Post post,
                 const erasure::NetworkParams& params, GatherSettings settings);
  // stop().
  ~FragmentGather();
  FragmentGather(const FragmentGather&) = delete;
  FragmentGather& operator=(const FragmentGather&) = delete;

  // Gathers fragments of one blob; `done` runs exactly once, never inside
  // this call: the fragments, or Errc::invalid_argument (a malformed
  // request), Errc::not_found (no candidate), Errc::too_many_losses (every
  // candidate failed or lacked fragments; the message says how many were
  // verified), Errc::timeout (the deadline), Errc::busy (max_gathers under
  // way), Errc::cancelled (cancel() or stop()).
  GatherHandle gather(GatherRequest request, GatherCallback done);

  // Asks every candidate at once whether it holds the blob (a request for
  // no fragment: the answer carries the roots, which must commit to `id`).
  // `done` runs exactly once with those that do, after every candidate
  // answered or `timeout` passed (empty after stop()).
  GatherHandle probe(const BlobId& id, BlobIndex index, std::vector<NodeId> peers, Duration timeout,
                     ProbeCallback done);

  // Ends a gather or probe (Errc::cancelled / the holders so far) once the
  // executor runs the cancel; unknown or finished handles are ignored.
  void cancel(GatherHandle handle);

  // The port's candidates for `shard` (RemoteFragments::peers).
  std::vector<NodeId> peers(ShardId shard);

  // Ends every gather and probe as cancel() does; later calls complete with
  // Errc::cancelled. Idempotent.
  void stop();

  // Gathers and probes under way (executor only).
  size_t active() const;
  GatherStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::shards
