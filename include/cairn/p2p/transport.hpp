#pragma once
// The byte-stream transport under the secure session. Two implementations:
// real TCP over Asio (make_tcp_transport) and an in-memory network with a link
// model for deterministic simulation (sim_transport.hpp). The handshake,
// encryption, framing and peer management above are identical for both, so a
// simulation exercises the same code as production.
//
// Threading: a Transport and every Stream it creates are bound to the executor
// given at construction; every handler runs on it, never synchronously inside
// the call that started the operation. Use them only from that executor.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>

#include "cairn/core/asio_fwd.hpp"
#include "cairn/core/bytes.hpp"
#include "cairn/core/result.hpp"

namespace cairn::p2p {

// Completion of a read or write: bytes transferred, or an error. Errors are
// Asio's: asio::error::eof at an orderly end of stream,
// asio::error::operation_aborted after close(), connection_reset etc.
using IoHandler = std::function<void(std::error_code, std::size_t)>;

// One reliable, ordered, bidirectional byte stream (a TCP connection or its
// simulated equivalent). Destruction closes it.
class Stream {
 public:
  virtual ~Stream() = default;

  // Reads between 1 and buffer.size() bytes into `buffer`. At most one read
  // may be outstanding; `buffer` must stay valid until the handler runs.
  virtual void async_read_some(MutableByteSpan buffer, IoHandler handler) = 0;

  // Writes every byte of `buffers`, in order, as one operation (gather
  // write). At most one write may be outstanding. The span of descriptors is
  // copied; the bytes they point to must stay valid until the handler runs.
  // The handler reports the total bytes written.
  virtual void async_write(std::span<const ByteSpan> buffers, IoHandler handler) = 0;

  // Closes both directions. Pending handlers complete with
  // operation_aborted; the peer sees end of stream. Idempotent.
  virtual void close() noexcept = 0;

  // Printable transport addresses ("127.0.0.1:4100", "sim:n17:1").
  virtual std::string remote_address() const = 0;
  virtual std::string local_address() const = 0;
};

using AcceptHandler = std::function<void(std::unique_ptr<Stream>)>;
using ConnectHandler = std::function<void(Result<std::unique_ptr<Stream>>)>;
using ConnectId = uint64_t;

class Transport {
 public:
  virtual ~Transport() = default;

  // Starts accepting on `address` and hands each new stream to `on_accept`.
  // Returns the bound address (TCP: port 0 picks a free port and the actual
  // one is returned). Errc::io_error when the address cannot be bound,
  // invalid_argument when it does not parse, conflict when already listening.
  virtual Result<std::string> listen(const std::string& address, AcceptHandler on_accept) = 0;

  // Opens a stream to `address`. `handler` runs exactly once: with the stream,
  // or with Errc::io_error (refused, unreachable, resolve failure),
  // invalid_argument (unparsable address) or cancelled (cancel_connect/close).
  // There is no built-in timeout: the caller arms one and cancels.
  virtual ConnectId connect(const std::string& address, ConnectHandler handler) = 0;

  // Aborts a pending connect (its handler gets Errc::cancelled); no-op when
  // it already completed.
  virtual void cancel_connect(ConnectId id) noexcept = 0;

  // Stops listening and aborts every pending connect. Streams already handed
  // out are unaffected.
  virtual void close() noexcept = 0;
};

// TCP options; defaults suit a storage node.
struct TcpOptions {
  // TCP_NODELAY. Default true: small gossip frames must not wait up to 40 ms
  // for Nagle; large transfers are unaffected because we write whole frames.
  bool no_delay = true;
  // SO_SNDBUF / SO_RCVBUF in bytes; 0 keeps the kernel's autotuning (default).
  int send_buffer_bytes = 0;
  int receive_buffer_bytes = 0;
  // listen() backlog. Default 128; inbound peer caps are enforced above this.
  int backlog = 128;
};

// Addresses are "host:port" with host an IPv4 literal, a bracketed IPv6
// literal ("[::1]:4100") or a DNS name (resolved at connect time).
std::unique_ptr<Transport> make_tcp_transport(const asio::any_io_executor& executor,
                                              TcpOptions options = {});

}  // namespace cairn::p2p
