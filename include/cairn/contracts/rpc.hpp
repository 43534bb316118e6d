#pragma once
// JSON-RPC 2.0 over HTTP (docs/chain.md "JSON-RPC"): the server that exposes
// a DevChain, the Chain client that talks to such a server, and the clock
// client that follows any Ethereum JSON-RPC node (or a dev chain, through
// its eth_* methods).

#include <memory>
#include <string>

#include "cairn/contracts/chain.hpp"
#include "cairn/contracts/settings.hpp"
#include "cairn/core/clock.hpp"

namespace cairn::contracts {

class DevChain;

// Serves `chain` (which must outlive the server) on settings.host:port.
// Threads: settings.threads connection threads and one accept thread, all
// owned by the server and joined by stop().
class RpcServer {
 public:
  // io_error when the address cannot be bound. `clock` (which must outlive
  // the server) bounds how long a refused body is drained.
  static Result<std::unique_ptr<RpcServer>> start(DevChain& chain, const Clock& clock,
                                                  const RpcServerSettings& settings);
  ~RpcServer();  // stop()
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  // Stops accepting, finishes requests in flight, joins the threads. Idempotent.
  void stop();
  const std::string& host() const;
  uint16_t port() const;    // the bound port (useful with port 0)
  std::string url() const;  // "http://host:port"

 private:
  struct Impl;
  explicit RpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A Chain backed by a `cairn devchain` at `url` ("http://host:port[/path]").
// It fetches the chain info once (Errc::timeout when unreachable) and checks
// every header it returns against the sequencer key and chain id: a server
// that forges headers is detected; registry answers are trusted. Head
// subscriptions poll from one thread owned by the client; callbacks run on it.
Result<std::unique_ptr<Chain>> connect_devchain(const std::string& url,
                                                const RpcClientSettings& settings = {});

// A ConsensusClock over eth_blockNumber / eth_getBlockByNumber of any
// Ethereum JSON-RPC node (or a dev chain). Randomness is the block's mixHash
// (prevrandao) when present and non-zero, else block_randomness(hash);
// timestamps are Ethereum's whole seconds times 1000. Subscriptions poll
// from one thread owned by the client; callbacks run on it.
Result<std::unique_ptr<ConsensusClock>> connect_ethereum_clock(
    const std::string& url, const RpcClientSettings& settings = {});

}  // namespace cairn::contracts
