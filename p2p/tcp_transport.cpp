// TCP transport over standalone Asio.

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <unordered_map>
#include <vector>

#include "cairn/p2p/tcp_address.hpp"
#include "cairn/p2p/transport.hpp"

namespace cairn::p2p {
namespace {

using asio::ip::tcp;

std::string endpoint_string(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  if (addr.is_v6()) return "[" + addr.to_string() + "]:" + std::to_string(ep.port());
  return addr.to_string() + ":" + std::to_string(ep.port());
}

class TcpStream final : public Stream {
 public:
  explicit TcpStream(tcp::socket socket) : socket_(std::move(socket)) {
    std::error_code ec;
    remote_ = endpoint_string(socket_.remote_endpoint(ec));
    local_ = endpoint_string(socket_.local_endpoint(ec));
  }
  ~TcpStream() override { close(); }

  void async_read_some(MutableByteSpan buffer, IoHandler handler) override {
    socket_.async_read_some(asio::buffer(buffer.data(), buffer.size()), std::move(handler));
  }

  void async_write(std::span<const ByteSpan> buffers, IoHandler handler) override {
    // One write at a time (the Stream contract), so one descriptor vector.
    write_buffers_.clear();
    for (const auto& b : buffers) write_buffers_.emplace_back(b.data(), b.size());
    asio::async_write(socket_, write_buffers_, std::move(handler));
  }

  void close() noexcept override {
    std::error_code ec;
    if (!socket_.is_open()) return;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  std::string remote_address() const override { return remote_; }
  std::string local_address() const override { return local_; }

 private:
  tcp::socket socket_;
  std::vector<asio::const_buffer> write_buffers_;
  std::string remote_, local_;
};

void apply_options(tcp::socket& s, const TcpOptions& o) {
  std::error_code ec;
  s.set_option(tcp::no_delay(o.no_delay), ec);
  if (o.send_buffer_bytes > 0)
    s.set_option(asio::socket_base::send_buffer_size(o.send_buffer_bytes), ec);
  if (o.receive_buffer_bytes > 0) {
    s.set_option(asio::socket_base::receive_buffer_size(o.receive_buffer_bytes), ec);
  }
}

class TcpTransport final : public Transport {
 public:
  TcpTransport(const asio::any_io_executor& ex, TcpOptions options) : ex_(ex), options_(options) {}
  ~TcpTransport() override { close(); }

  Result<std::string> listen(const std::string& address, AcceptHandler on_accept) override {
    auto parsed = parse_tcp_address(address);
    if (!parsed) return tl::unexpected(parsed.error());
    std::error_code ec;
    auto ip = asio::ip::make_address(parsed->host, ec);
    if (ec) {
      return make_error(Errc::invalid_argument,
                        "listen address must be an IP literal, got '" + parsed->host + "'");
    }
    auto l = std::make_shared<Listener>(ex_);
    const tcp::endpoint ep(ip, parsed->port);
    l->acceptor.open(ep.protocol(), ec);
    if (!ec) l->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) l->acceptor.bind(ep, ec);
    if (!ec) l->acceptor.listen(options_.backlog, ec);
    if (ec) return make_error(Errc::io_error, "cannot listen on " + address + ": " + ec.message());
    l->on_accept = std::move(on_accept);
    l->options = options_;
    const std::string bound = endpoint_string(l->acceptor.local_endpoint(ec));
    listeners_.push_back(l);
    accept_next(l);
    return bound;
  }

  ConnectId connect(const std::string& address, ConnectHandler handler) override {
    const ConnectId id = next_id_++;
    auto op = std::make_shared<ConnectOp>(ex_);
    op->handler = std::move(handler);
    pending_[id] = op;
    auto parsed = parse_tcp_address(address);
    if (!parsed) {
      finish(id, tl::unexpected(parsed.error()));
      return id;
    }
    std::error_code ec;
    auto ip = asio::ip::make_address(parsed->host, ec);
    if (!ec) {
      start_connect(id, op, {tcp::endpoint(ip, parsed->port)}, address);
      return id;
    }
    op->resolver.async_resolve(
        parsed->host, std::to_string(parsed->port),
        [this, id, op, address, alive = std::weak_ptr<int>(alive_)](
            std::error_code rec, tcp::resolver::results_type results) {
          if (alive.expired() || op->done) return;
          if (rec) {
            finish(id,
                   make_error(Errc::io_error, "cannot resolve " + address + ": " + rec.message()));
            return;
          }
          std::vector<tcp::endpoint> eps;
          for (const auto& r : results) eps.push_back(r.endpoint());
          start_connect(id, op, std::move(eps), address);
        });
    return id;
  }

  void cancel_connect(ConnectId id) noexcept override {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    auto op = it->second;
    std::error_code ec;
    op->resolver.cancel();
    op->socket.close(ec);
    finish(id, make_error(Errc::cancelled, "connect cancelled"));
  }

  void close() noexcept override {
    for (auto& l : listeners_) {
      std::error_code ec;
      l->acceptor.close(ec);
    }
    listeners_.clear();
    std::vector<ConnectId> ids;
    for (auto& [id, op] : pending_) ids.push_back(id);
    for (auto id : ids) cancel_connect(id);
  }

 private:
  struct Listener {
    explicit Listener(const asio::any_io_executor& ex) : acceptor(ex) {}
    tcp::acceptor acceptor;
    AcceptHandler on_accept;
    TcpOptions options;
  };
  struct ConnectOp {
    explicit ConnectOp(const asio::any_io_executor& ex) : resolver(ex), socket(ex) {}
    tcp::resolver resolver;
    tcp::socket socket;
    ConnectHandler handler;
    bool done = false;
  };

  static void accept_next(const std::shared_ptr<Listener>& l) {
    l->acceptor.async_accept([l](std::error_code ec, tcp::socket socket) {
      if (!l->acceptor.is_open()) return;
      if (!ec) {
        apply_options(socket, l->options);
        l->on_accept(std::make_unique<TcpStream>(std::move(socket)));
      }
      // Transient accept errors (EMFILE, ECONNABORTED) must not stop the
      // listener; the next accept retries.
      accept_next(l);
    });
  }

  void start_connect(ConnectId id, const std::shared_ptr<ConnectOp>& op,
                     std::vector<tcp::endpoint> eps, const std::string& address) {
    asio::async_connect(op->socket, eps,
                        [this, id, op, address, alive = std::weak_ptr<int>(alive_)](
                            std::error_code ec, const tcp::endpoint&) {
                          if (alive.expired() || op->done) return;
                          if (ec) {
                            finish(id, make_error(Errc::io_error, "cannot connect to " + address +
                                                                      ": " + ec.message()));
                            return;
                          }
                          apply_options(op->socket, options_);
                          finish(id, std::make_unique<TcpStream>(std::move(op->socket)));
                        });
  }

  // Completes a connect exactly once, always through the executor.
  void finish(ConnectId id, Result<std::unique_ptr<Stream>> r) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    auto op = it->second;
    pending_.erase(it);
    op->done = true;
    asio::post(ex_, [h = std::move(op->handler), r = std::move(r)]() mutable { h(std::move(r)); });
  }

  asio::any_io_executor ex_;
  TcpOptions options_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::unordered_map<ConnectId, std::shared_ptr<ConnectOp>> pending_;
  ConnectId next_id_ = 1;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace

std::unique_ptr<Transport> make_tcp_transport(const asio::any_io_executor& executor,
                                              TcpOptions options) {
  return std::make_unique<TcpTransport>(executor, options);
}

}  // namespace cairn::p2p
