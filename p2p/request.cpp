#include "cairn/p2p/request.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <map>
#include <stdexcept>
#include <unordered_map>

#include "cairn/core/log.hpp"
#include "cairn/p2p/identity.hpp"

namespace cairn::p2p {
namespace {

constexpr const char* kRequestLog = "p2p.rr";
constexpr size_t kRequestIdBytes = 8;
constexpr size_t kResponseHeaderBytes = kRequestIdBytes + 1;
constexpr size_t kMaxFailureMessage = 255;
// Penalty for a malformed request/response frame.
constexpr double kMalformedPenalty = 10;

Errc errc_for(ResponseStatus s) {
  switch (s) {
    case ResponseStatus::ok:
      return Errc::ok;
    case ResponseStatus::unknown_request:
      return Errc::unsupported;
    case ResponseStatus::busy:
      return Errc::busy;
    case ResponseStatus::not_found:
      return Errc::not_found;
    case ResponseStatus::invalid_request:
      return Errc::invalid_argument;
    case ResponseStatus::cancelled:
      return Errc::cancelled;
    case ResponseStatus::internal_error:
      break;
  }
  return Errc::internal;
}

Bytes encode_response(RequestId id, ResponseStatus status, ByteSpan body) {
  Bytes out;
  out.reserve(kResponseHeaderBytes + body.size());
  append_be<uint64_t>(out, id);
  out.push_back(static_cast<uint8_t>(status));
  append(out, body);
  return out;
}

}  // namespace

namespace detail {

struct InboundRequest {
  std::weak_ptr<RequestImpl> owner;
  NodeId peer;
  RequestId id = 0;
  MessageType kind{};
  bool answered = false;
  bool cancelled = false;
};

struct RequestImpl : std::enable_shared_from_this<RequestImpl> {
  explicit RequestImpl(Host& h) : host(h) {}

  struct Pending {
    NodeId peer;
    MessageType kind{};
    ResponseCallback callback;
    std::unique_ptr<Timer> timer;
  };

  Host& host;
  RequestId next_id = 1;
  std::unordered_map<RequestId, Pending> pending;
  std::unordered_map<NodeId, size_t> out_count;
  std::map<std::pair<NodeId, RequestId>, std::shared_ptr<InboundRequest>> inbound;
  std::unordered_map<NodeId, size_t> in_count;
  std::unordered_map<uint16_t, RequestHandler> handlers;
  std::vector<Subscription> subs;

  void install() {
    auto weak = weak_from_this();
    auto own = [this](Result<Subscription> sub) {
      if (!sub) {
        subs.clear();
        throw std::logic_error("RequestResponse: " + sub.error().message +
                               " (only one RequestResponse per Host)");
      }
      subs.push_back(std::move(*sub));
    };
    own(host.on_message(MessageType::response, [weak](const NodeId& from, ByteSpan p) {
      if (auto self = weak.lock()) self->on_response(from, p);
    }));
    own(host.on_message(MessageType::cancel_request, [weak](const NodeId& from, ByteSpan p) {
      if (auto self = weak.lock()) self->on_cancel(from, p);
    }));
    // Every request kind, so that kinds without a handler get a clear
    // unknown_request answer instead of a timeout.
    for (uint32_t k = kRequestKindFirst; k <= kRequestLast; ++k) {
      const auto kind = static_cast<MessageType>(k);
      own(host.on_message(kind, [weak, kind](const NodeId& from, ByteSpan p) {
        if (auto self = weak.lock()) self->on_request(from, kind, p);
      }));
    }
    subs.push_back(host.on_disconnected([weak](const DisconnectInfo& d) {
      if (auto self = weak.lock()) self->on_disconnect(d.id);
    }));
  }

  Error peer_error(Errc code, const NodeId& peer, MessageType kind, std::string_view what) {
    return Error{code, std::string(message_type_name(kind)) + " to " + short_id(peer) + ": " +
                           std::string(what)};
  }

  // Removes a pending request and returns its callback (empty when unknown).
  ResponseCallback take(RequestId id, NodeId* peer = nullptr, MessageType* kind = nullptr) {
    auto it = pending.find(id);
    if (it == pending.end()) return {};
    ResponseCallback cb = std::move(it->second.callback);
    if (peer) *peer = it->second.peer;
    if (kind) *kind = it->second.kind;
    if (auto c = out_count.find(it->second.peer); c != out_count.end() && --c->second == 0) {
      out_count.erase(c);
    }
    pending.erase(it);
    return cb;
  }

  void send_cancel(const NodeId& peer, RequestId id) {
    uint8_t b[kRequestIdBytes];
    put_be<uint64_t>(b, id);
    (void)host.send(peer, MessageType::cancel_request, ByteSpan(b, kRequestIdBytes));
  }

  Result<RequestId> request(const NodeId& peer, MessageType kind, ByteSpan payload,
                            ResponseCallback cb, RequestOptions opts) {
    if (!is_request_kind(kind)) {
      return make_error(Errc::invalid_argument,
                        "type " + std::to_string(to_wire(kind)) + " is not a request kind");
    }
    if (!host.is_connected(peer)) {
      return make_error(Errc::not_found, "peer " + short_id(peer) + " is not connected");
    }
    const size_t cap = host.settings().max_requests_in_flight;
    if (auto c = out_count.find(peer); c != out_count.end() && c->second >= cap) {
      return make_error(Errc::busy,
                        std::to_string(cap) + " requests already in flight to " + short_id(peer));
    }
    const RequestId id = next_id++;
    Bytes frame;
    frame.reserve(kRequestIdBytes + payload.size());
    append_be<uint64_t>(frame, id);
    append(frame, payload);
    if (auto s = host.send(peer, kind, frame); !s) return tl::unexpected(s.error());
    Pending p;
    p.peer = peer;
    p.kind = kind;
    p.callback = std::move(cb);
    p.timer = host.clock().make_timer(host.executor());
    const Duration timeout =
        opts.timeout > Duration::zero() ? opts.timeout : host.settings().request_timeout;
    p.timer->expires_after(timeout, [weak = weak_from_this(), id, timeout] {
      auto self = weak.lock();
      if (!self) return;
      NodeId peer_id;
      MessageType k{};
      auto callback = self->take(id, &peer_id, &k);
      if (!callback) return;
      self->send_cancel(peer_id, id);
      callback(tl::unexpected(self->peer_error(
          Errc::timeout, peer_id, k,
          "no response within " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) +
              " ms")));
    });
    pending.emplace(id, std::move(p));
    ++out_count[peer];
    return id;
  }

  bool cancel(RequestId id) {
    NodeId peer;
    MessageType kind{};
    auto cb = take(id, &peer, &kind);
    if (!cb) return false;
    send_cancel(peer, id);
    asio::post(host.executor(), [cb = std::move(cb), e = peer_error(Errc::cancelled, peer, kind,
                                                                    "cancelled")]() mutable {
      cb(tl::unexpected(std::move(e)));
    });
    return true;
  }

  void on_response(const NodeId& from, ByteSpan p) {
    ByteReader r(p);
    uint64_t id = 0;
    uint8_t status = 0;
    if (!r.read_be(id) || !r.read_be(status)) {
      host.adjust_score(from, -kMalformedPenalty, "response shorter than its header");
      return;
    }
    auto it = pending.find(id);
    if (it == pending.end() || it->second.peer != from) {
      // Late (after a timeout or cancel) or not ours to answer: ignore.
      CAIRN_LOG(log::Level::debug, kRequestLog,
                "ignoring response " << id << " from " << short_id(from));
      return;
    }
    MessageType kind{};
    auto cb = take(id, nullptr, &kind);
    ByteSpan body = p.subspan(kResponseHeaderBytes);
    if (status == static_cast<uint8_t>(ResponseStatus::ok)) {
      cb(Bytes(body.begin(), body.end()));
      return;
    }
    const auto st = static_cast<ResponseStatus>(status);
    std::string msg(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(
                                                     std::min(body.size(), kMaxFailureMessage)));
    cb(tl::unexpected(peer_error(errc_for(st), from, kind, "peer answered: " + msg)));
  }

  void on_cancel(const NodeId& from, ByteSpan p) {
    if (p.size() != kRequestIdBytes) {
      host.adjust_score(from, -kMalformedPenalty, "cancel_request of wrong size");
      return;
    }
    const RequestId id = get_be<uint64_t>(p.data());
    auto it = inbound.find({from, id});
    if (it == inbound.end()) return;
    // The handler may still be working: its slot stays taken (the peer's
    // in-flight cap keeps counting it) until it answers or drops its
    // Responder.
    it->second->cancelled = true;
  }

  void release_inbound(decltype(inbound)::iterator it) {
    const NodeId peer = it->first.first;
    inbound.erase(it);
    if (auto c = in_count.find(peer); c != in_count.end() && --c->second == 0) in_count.erase(c);
  }

  Status answer(InboundRequest& req, ResponseStatus status, ByteSpan body) {
    if (req.answered) return make_error(Errc::invalid_argument, "request already answered");
    req.answered = true;
    if (auto it = inbound.find({req.peer, req.id}); it != inbound.end()) release_inbound(it);
    if (req.cancelled) {
      return make_error(Errc::cancelled, "request " + std::to_string(req.id) + " from " +
                                             short_id(req.peer) + " was cancelled");
    }
    if (body.size() + kResponseHeaderBytes > host.settings().max_frame_payload) {
      // Tell the requester rather than leave it waiting for a timeout.
      (void)host.send(
          req.peer, MessageType::response,
          encode_response(req.id, ResponseStatus::internal_error, as_bytes("response too large")));
      return make_error(Errc::invalid_argument, "response exceeds max_frame_payload");
    }
    return host.send(req.peer, MessageType::response, encode_response(req.id, status, body));
  }

  void on_request(const NodeId& from, MessageType kind, ByteSpan p) {
    if (p.size() < kRequestIdBytes) {
      host.adjust_score(from, -kMalformedPenalty, "request shorter than its id");
      return;
    }
    const RequestId id = get_be<uint64_t>(p.data());
    auto reply = [&](ResponseStatus st, std::string_view msg) {
      (void)host.send(from, MessageType::response, encode_response(id, st, as_bytes(msg)));
    };
    auto h = handlers.find(to_wire(kind));
    if (h == handlers.end()) {
      reply(ResponseStatus::unknown_request, "no handler for " +
                                                 std::string(message_type_name(kind)) + " (" +
                                                 std::to_string(to_wire(kind)) + ")");
      return;
    }
    if (inbound.count({from, id}) != 0) {
      host.adjust_score(from, -kMalformedPenalty, "reused a pending request id");
      reply(ResponseStatus::invalid_request, "request id already pending");
      return;
    }
    const size_t cap = host.settings().max_inbound_requests;
    if (auto c = in_count.find(from); c != in_count.end() && c->second >= cap) {
      reply(ResponseStatus::busy, std::to_string(cap) + " requests already in flight");
      return;
    }
    auto req = std::make_shared<InboundRequest>();
    req->owner = weak_from_this();
    req->peer = from;
    req->id = id;
    req->kind = kind;
    inbound.emplace(std::make_pair(from, id), req);
    ++in_count[from];
    RequestHandler fn = h->second;
    fn(from, p.subspan(kRequestIdBytes), Responder(req));
  }

  void on_disconnect(const NodeId& peer) {
    std::vector<RequestId> ids;
    for (auto& [id, p] : pending) {
      if (p.peer == peer) ids.push_back(id);
    }
    for (auto id : ids) {
      MessageType kind{};
      auto cb = take(id, nullptr, &kind);
      if (cb) cb(tl::unexpected(peer_error(Errc::io_error, peer, kind, "peer disconnected")));
    }
    for (auto it = inbound.begin(); it != inbound.end();) {
      if (it->first.first == peer) {
        it->second->cancelled = true;
        it = inbound.erase(it);
      } else {
        ++it;
      }
    }
    in_count.erase(peer);
  }

  void drop_all() {
    for (auto& [id, p] : pending) send_cancel(p.peer, id);
    pending.clear();
    out_count.clear();
    for (auto& [key, req] : inbound) req->cancelled = true;
    inbound.clear();
    in_count.clear();
    subs.clear();
  }
};

}  // namespace detail

// -------------------------------------------------------------- Responder --

Responder::Responder(Responder&&) noexcept = default;

Responder& Responder::operator=(Responder&& o) noexcept {
  if (this != &o) {
    if (req_ && !req_->answered) (void)fail(ResponseStatus::internal_error, "request dropped");
    req_ = std::move(o.req_);
  }
  return *this;
}

Responder::~Responder() {
  // Also when cancelled: answering frees the request's slot (nothing is
  // sent for a cancelled one).
  if (req_ && !req_->answered) {
    (void)fail(ResponseStatus::internal_error, "request dropped by its handler");
  }
}

Status Responder::respond(ByteSpan payload) {
  if (!req_) return make_error(Errc::invalid_argument, "empty responder");
  auto owner = req_->owner.lock();
  if (!owner) {
    req_->answered = true;
    return make_error(Errc::cancelled, "request/response layer is gone");
  }
  return owner->answer(*req_, ResponseStatus::ok, payload);
}

Status Responder::fail(ResponseStatus status, std::string_view message) {
  if (!req_) return make_error(Errc::invalid_argument, "empty responder");
  if (status == ResponseStatus::ok) {
    return make_error(Errc::invalid_argument, "fail() needs a failure status");
  }
  auto owner = req_->owner.lock();
  if (!owner) {
    req_->answered = true;
    return make_error(Errc::cancelled, "request/response layer is gone");
  }
  return owner->answer(*req_, status, as_bytes(message.substr(0, kMaxFailureMessage)));
}

bool Responder::cancelled() const noexcept { return !req_ || req_->cancelled; }

const NodeId& Responder::peer() const noexcept {
  static const NodeId kNone{};
  return req_ ? req_->peer : kNone;
}

RequestId Responder::id() const noexcept { return req_ ? req_->id : 0; }

// -------------------------------------------------------- RequestResponse --

RequestResponse::RequestResponse(Host& host) : impl_(std::make_shared<detail::RequestImpl>(host)) {
  impl_->install();
}

RequestResponse::~RequestResponse() { impl_->drop_all(); }

Status RequestResponse::handle(MessageType kind, RequestHandler handler) {
  if (!is_request_kind(kind)) {
    return make_error(Errc::invalid_argument,
                      "type " + std::to_string(to_wire(kind)) + " is not a request kind");
  }
  if (impl_->handlers.count(to_wire(kind)) != 0) {
    return make_error(Errc::conflict,
                      std::string(message_type_name(kind)) + " already has a handler");
  }
  impl_->handlers[to_wire(kind)] = std::move(handler);
  return {};
}

Result<RequestId> RequestResponse::request(const NodeId& peer, MessageType kind, ByteSpan payload,
                                           ResponseCallback callback, RequestOptions options) {
  return impl_->request(peer, kind, payload, std::move(callback), options);
}

bool RequestResponse::cancel(RequestId id) { return impl_->cancel(id); }

size_t RequestResponse::in_flight(const NodeId& peer) const {
  auto it = impl_->out_count.find(peer);
  return it == impl_->out_count.end() ? 0 : it->second;
}

size_t RequestResponse::inbound_in_flight(const NodeId& peer) const {
  auto it = impl_->in_count.find(peer);
  return it == impl_->in_count.end() ? 0 : it->second;
}

}  // namespace cairn::p2p
