#pragma once
// Request/response over a Host: request ids, per-request timeouts,
// cancellation, per-peer in-flight caps in both directions, one handler per
// request kind (MessageType 0x0110-0x01ff). Used for fragments, shard ranges
// and challenge responses; the frames are in docs/wire-protocol.md.
//
// Threading: as Host (same executor; callbacks never run synchronously inside
// the call that caused them).

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/p2p/host.hpp"

namespace cairn::p2p {

// Status byte of a response frame. Wire format: do not renumber.
enum class ResponseStatus : uint8_t {
  ok = 0,
  unknown_request = 1,  // no handler for this kind      -> Errc::unsupported
  busy = 2,             // responder's in-flight cap hit  -> Errc::busy
  not_found = 3,        // the thing asked for is absent  -> Errc::not_found
  invalid_request = 4,  // the request did not parse      -> Errc::invalid_argument
  internal_error = 5,   // the responder failed           -> Errc::internal
  cancelled = 6,        // the responder gave up (shutdown) -> Errc::cancelled
};

using RequestId = uint64_t;

namespace detail {
struct RequestImpl;
struct InboundRequest;
}  // namespace detail

// The right to answer one inbound request. Move-only; may be kept and
// answered later (e.g. after a store read on the worker pool, posted back to
// the executor). Destroying it unanswered answers internal_error.
class Responder {
 public:
  Responder() = default;
  Responder(Responder&&) noexcept;
  Responder& operator=(Responder&&) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  // Answers ok with `payload` (copied). Errc::busy when the peer's send
  // queue is full (the request then times out at the peer), not_found when
  // the peer is gone, invalid_argument when answered twice or too large.
  Status respond(ByteSpan payload);
  // Answers with a failure status and a short message (at most 255 bytes).
  Status fail(ResponseStatus status, std::string_view message);
  // True once the requester cancelled, timed out or disconnected: work for
  // this request may stop.
  bool cancelled() const noexcept;
  const NodeId& peer() const noexcept;
  RequestId id() const noexcept;

 private:
  friend struct detail::RequestImpl;
  explicit Responder(std::shared_ptr<detail::InboundRequest> r) : req_(std::move(r)) {}
  std::shared_ptr<detail::InboundRequest> req_;
};

using RequestHandler =
    std::function<void(const NodeId& from, ByteSpan payload, Responder responder)>;
// Exactly once per accepted request: the response body, or an Error:
// timeout, cancelled, io_error (peer disconnected), or the responder's
// status mapped as listed in ResponseStatus (message names peer and kind).
using ResponseCallback = std::function<void(Result<Bytes>)>;

struct RequestOptions {
  // Zero (default): P2pSettings::request_timeout.
  Duration timeout = Duration::zero();
};

class RequestResponse {
 public:
  // `host` must outlive this object. One RequestResponse per Host: it owns
  // the response, cancel and request-kind message types; a second one throws
  // std::logic_error (a wiring bug, not a runtime condition).
  explicit RequestResponse(Host& host);
  // Drops pending requests WITHOUT calling their callbacks (their owners are
  // usually being destroyed too), tells the peers to stop, marks inbound
  // requests cancelled and unregisters everything.
  ~RequestResponse();
  RequestResponse(const RequestResponse&) = delete;
  RequestResponse& operator=(const RequestResponse&) = delete;

  // Registers the handler of one request kind. invalid_argument when `kind`
  // is not in 0x0110-0x01ff; conflict when it already has one.
  Status handle(MessageType kind, RequestHandler handler);

  // Sends a request. Errors returned at once (no callback then): not_found
  // (peer not connected), busy (max_requests_in_flight reached or the send
  // queue is full), invalid_argument (bad kind, payload too large).
  Result<RequestId> request(const NodeId& peer, MessageType kind, ByteSpan payload,
                            ResponseCallback callback, RequestOptions options = {});

  // Cancels a pending request: its callback gets Errc::cancelled and the
  // peer is told to stop. Returns false when the id is not pending.
  bool cancel(RequestId id);

  size_t in_flight(const NodeId& peer) const;          // our requests pending at peer
  size_t inbound_in_flight(const NodeId& peer) const;  // peer's requests pending here

 private:
  std::shared_ptr<detail::RequestImpl> impl_;
};

}  // namespace cairn::p2p
