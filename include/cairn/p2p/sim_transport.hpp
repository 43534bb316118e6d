#pragma once
// An in-memory network for deterministic simulation of many nodes on one
// io_context with a ManualClock (libtorrent's simulator, seastar's
// loopback_socket). Streams behave like TCP connections over a link model:
// one-way latency with optional jitter, per-link bandwidth (serialisation
// delay), segment loss repaired by retransmission after a timeout (order is
// preserved, as in TCP), a per-direction window that blocks writers when the
// reader falls behind, and partitions. All randomness comes from one seeded
// RNG, so a run is reproducible from its seed.
//
// Addresses are "<node name>:<port>"; make_transport(name) gives the node its
// Transport, which listens on "<name>:<port>" (port 0 picks the next free one).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cairn/core/asio_fwd.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/p2p/transport.hpp"

namespace cairn::p2p {

struct LinkModel {
  // One-way propagation delay per segment. Default 5 ms (same-region peers).
  Duration latency = std::chrono::milliseconds(5);
  // Extra delay drawn uniformly from [0, jitter] per segment; delivery order
  // within a stream is still preserved. Default 0 (exact virtual times).
  Duration jitter = Duration::zero();
  // Serialisation rate of the directed link in bytes per second; segments on
  // one link queue behind each other. 0 = unlimited (default).
  double bandwidth_bytes_per_second = 0;
  // Probability that a segment is lost on the wire; each loss delays it by
  // retransmit_timeout (TCP repairs losses, so bytes are never lost, only
  // late). Default 0.
  double drop_probability = 0;
  Duration retransmit_timeout = std::chrono::milliseconds(200);
  // Bytes in flight plus unread at the receiver, per stream direction, before
  // a write waits (the TCP window). Default 4 MiB.
  size_t window_bytes = 4u << 20;
};

struct SimNetworkStats {
  uint64_t streams_open = 0;  // stream ends currently alive (two per connection)
  uint64_t segments_delivered = 0;
  uint64_t segments_dropped = 0;  // losses repaired by retransmission
  uint64_t bytes_delivered = 0;
  uint64_t connects_refused = 0;  // nobody listening at the address
};

class SimNetwork {
 public:
  // `executor` runs every handler (normally the io_context's executor that
  // `clock` polls). `seed` drives jitter and loss.
  SimNetwork(const asio::any_io_executor& executor, Clock& clock, uint64_t seed,
             LinkModel default_link = {});
  ~SimNetwork();
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // The transport of node `name` (unique, no ':'). The network must outlive it.
  std::unique_ptr<Transport> make_transport(const std::string& name);

  void set_default_link(const LinkModel& link);
  // Overrides the model of the directed link from -> to (node names).
  void set_link(const std::string& from, const std::string& to, const LinkModel& link);

  // Splits the nodes into groups that cannot reach each other; nodes not
  // named form one more group together. Segments sent across the split wait
  // (as in TCP retransmission) and are delivered by heal() unless their
  // stream closed first; connects across it stay pending until cancelled.
  void partition(const std::vector<std::vector<std::string>>& groups);
  void heal();

  // Crashes node `name`: its listener disappears and its streams stop. With
  // `reset`, the other ends see connection_reset after one link latency (the
  // host is up, the process died); without, they see nothing at all (the
  // machine vanished) and only timeouts notice. Connects to it are refused
  // (reset) or hang (silent). A crashed node's Transport must not be used
  // again except to destroy it.
  void crash(const std::string& name, bool reset);

  SimNetworkStats stats() const;

  struct Impl;  // implementation detail (defined in the .cpp)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::p2p
