// cpp-httplib serves the dev chain's JSON-RPC: a dev chain answers a handful
// of small request/response calls per node per block, for which blocking
// connection threads are simple and ample; the node's high-rate paths
// (gossip, fragment transfer) use Asio in p2p/, not this.

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "cairn/contracts/devchain.hpp"
#include "cairn/contracts/http.hpp"
#include "cairn/contracts/rpc.hpp"
#include "json_codec.hpp"
#include "jsonrpc.hpp"

namespace cairn::contracts {
namespace {

using jsonrpc::json;
using jsonrpc::Params;
using jsonrpc::RpcError;
namespace jc = json_codec;

// How long the rest of a refused (oversize) body is read and discarded
// before the connection closes.
constexpr auto kRefusedBodyDrain = std::chrono::seconds(2);

// Maps a chain error to a JSON-RPC error (thrown to the dispatcher).
[[noreturn]] void throw_chain_error(const Error& e) {
  switch (e.code) {
    case Errc::not_found:
      throw RpcError{jsonrpc::kNotFound, e.message, nullptr};
    case Errc::invalid_argument:
      throw RpcError{jsonrpc::kInvalidParams, e.message, nullptr};
    default:
      throw RpcError{jsonrpc::kChainError, e.message,
                     json{{"errc", std::string(errc_name(e.code))}}};
  }
}

template <class T>
T value_or_throw(Result<T> r) {
  if (!r) throw_chain_error(r.error());
  return std::move(*r);
}

// A submission failure: message starts with the TxStatus name ("bad_signature: ...").
json submit_error_json(const Error& e) {
  const std::string reason = e.message.substr(0, e.message.find(':'));
  return json{{"reason", tx_status_from_name(reason) ? reason : "internal"},
              {"message", e.message}};
}

int submit_error_code(const Error& e) {
  return e.code == Errc::busy ? jsonrpc::kMempoolFull : jsonrpc::kTxRejected;
}

}  // namespace

struct RpcServer::Impl {
  DevChain& chain;
  const Clock& clock;
  RpcServerSettings settings;
  jsonrpc::Dispatcher dispatcher;
  httplib::Server http;
  std::unique_ptr<HttpListener> listener;

  Impl(DevChain& c, const Clock& cl, const RpcServerSettings& s)
      : chain(c), clock(cl), settings(s), dispatcher(s.max_batch) {}

  // Resolves "latest" / "pending" / "safe" / "finalized" (all the head: one
  // sequencer, instant finality), "earliest" (0) or a quantity.
  BlockNumber block_tag(const Params& p, size_t i) {
    const json& tag = p.at(i);
    if (tag.is_string()) {
      const auto& s = tag.get_ref<const std::string&>();
      if (s == "latest" || s == "pending" || s == "safe" || s == "finalized") {
        return value_or_throw(chain.head()).number;
      }
      if (s == "earliest") return BlockNumber{0};
    }
    return BlockNumber{p.quantity(i, "block")};
  }

  std::optional<BlockHeader> header_or_null(BlockNumber n) {
    auto h = chain.header(n);
    if (!h && h.error().code == Errc::not_found) return std::nullopt;
    return value_or_throw(std::move(h));
  }

  json eth_block(const BlockHeader& h, bool full) {
    const Hash32 hash = h.hash();
    auto txs = value_or_throw(chain.block_transactions(h.number));
    json list = json::array();
    for (const Bytes& raw : txs) {
      const std::string tx_hash_hex = jc::hex_data(tx_hash(raw));
      if (full) {
        list.push_back(json{{"hash", tx_hash_hex}, {"input", jc::hex_data(raw)}});
      } else {
        list.push_back(tx_hash_hex);
      }
    }
    return json{{"number", jc::quantity(h.number.value)},
                {"hash", jc::hex_data(hash)},
                {"parentHash", jc::hex_data(h.parent_hash)},
                {"timestamp", jc::quantity(h.timestamp_ms / 1000)},
                {"mixHash", jc::hex_data(block_randomness(hash))},
                {"transactionsRoot", jc::hex_data(h.tx_root)},
                {"transactions", std::move(list)},
                {"uncles", json::array()},
                {"cairn", jc::header_to_json(h)}};
  }

  void register_methods();
  void handle_post(const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& reader);
};

void RpcServer::Impl::register_methods() {
  auto& d = dispatcher;
  const erasure::NetworkParams params = chain.info().params;

  d.add("eth_blockNumber", [this](const Params& p) -> json {
    p.expect(0, 0);
    return jc::quantity(value_or_throw(chain.head()).number.value);
  });
  d.add("eth_getBlockByNumber", [this](const Params& p) -> json {
    p.expect(1, 2);
    const BlockNumber n = block_tag(p, 0);
    const bool full = p.has(1) && p.boolean(1, "full transactions");
    auto h = header_or_null(n);
    if (!h) return nullptr;
    return eth_block(*h, full);
  });
  d.add("cairn_chainInfo", [this](const Params& p) -> json {
    p.expect(0, 0);
    return jc::chain_info_to_json(chain.info());
  });
  d.add("cairn_getHeader", [this](const Params& p) -> json {
    p.expect(1, 1);
    auto h = header_or_null(block_tag(p, 0));
    if (!h) return nullptr;
    return jc::header_to_json(*h);
  });
  d.add("cairn_getHeaders", [this](const Params& p) -> json {
    p.expect(2, 2);
    const BlockNumber from = block_tag(p, 0);
    const uint64_t count = p.quantity(1, "count");
    if (count > settings.max_headers_per_call) {
      p.fail(1, "count", "at most " + std::to_string(settings.max_headers_per_call));
    }
    json out = json::array();
    for (const BlockHeader& h : value_or_throw(chain.headers(from, static_cast<uint32_t>(count)))) {
      out.push_back(jc::header_to_json(h));
    }
    return out;
  });
  d.add("cairn_randomness", [this](const Params& p) -> json {
    p.expect(1, 1);
    auto h = header_or_null(block_tag(p, 0));
    if (!h) return nullptr;
    return jc::hex_data(block_randomness(h->hash()));
  });
  d.add("cairn_sendTransaction", [this](const Params& p) -> json {
    p.expect(1, 1);
    const Bytes tx = p.data(0, "transaction", kMaxTxBytes);
    auto hash = chain.submit(tx);
    if (!hash) {
      throw RpcError{submit_error_code(hash.error()), hash.error().message,
                     submit_error_json(hash.error())};
    }
    return jc::hex_data(*hash);
  });
  d.add("cairn_sendTransactions", [this](const Params& p) -> json {
    p.expect(1, 1);
    const json& list = p.at(0);
    if (!list.is_array()) p.fail(0, "transactions", "expected an array of hex transactions");
    std::vector<Bytes> txs;
    txs.reserve(list.size());
    for (const json& t : list) {
      auto b = jc::parse_data(t, kMaxTxBytes);
      if (!b) p.fail(0, "transactions", "every element must be \"0x\"-prefixed hex");
      txs.push_back(std::move(*b));
    }
    json out = json::array();
    for (auto& r : chain.submit_many(txs)) {
      if (r) {
        out.push_back(json{{"txHash", jc::hex_data(*r)}});
      } else {
        out.push_back(
            json{{"error", submit_error_json(r.error())}, {"code", submit_error_code(r.error())}});
      }
    }
    return out;
  });
  d.add("cairn_getReceipt", [this](const Params& p) -> json {
    p.expect(1, 1);
    auto r = value_or_throw(chain.receipt(p.hash(0, "transaction hash")));
    if (!r) return nullptr;
    return jc::receipt_to_json(*r);
  });
  d.add("cairn_nextNonce", [this](const Params& p) -> json {
    p.expect(1, 1);
    return jc::quantity(value_or_throw(chain.next_nonce(NodeId{p.hash(0, "sender")})));
  });
  d.add("cairn_getBlobById", [this, params](const Params& p) -> json {
    p.expect(1, 1);
    auto b = value_or_throw(chain.blob_by_id(BlobId{p.hash(0, "commitment")}));
    if (!b) return nullptr;
    return jc::blob_to_json(*b, params);
  });
  d.add("cairn_getBlobByIndex", [this, params](const Params& p) -> json {
    p.expect(1, 1);
    auto b = value_or_throw(chain.blob_by_index(BlobIndex{p.quantity(0, "index")}));
    if (!b) return nullptr;
    return jc::blob_to_json(*b, params);
  });
  d.add("cairn_getBlobs", [this, params](const Params& p) -> json {
    p.expect(2, 2);
    // Beyond kMaxBlobRange the chain answers invalid_argument (invalid params).
    const auto count =
        static_cast<uint32_t>(std::min<uint64_t>(p.quantity(1, "count"), UINT32_MAX));
    json out = json::array();
    for (const BlobRecord& b :
         value_or_throw(chain.blobs(BlobIndex{p.quantity(0, "from")}, count))) {
      out.push_back(jc::blob_to_json(b, params));
    }
    return out;
  });
  d.add("cairn_blobCount", [this](const Params& p) -> json {
    p.expect(0, 1);
    if (p.has(0))
      return jc::quantity(value_or_throw(chain.blob_count(ShardId{p.quantity32(0, "shard")})));
    return jc::quantity(value_or_throw(chain.blob_count()));
  });
  d.add("cairn_getNodes", [this](const Params& p) -> json {
    p.expect(1, 1);
    json out = json::array();
    for (const NodeRecord& n : value_or_throw(chain.nodes(ShardId{p.quantity32(0, "shard")}))) {
      out.push_back(jc::node_to_json(n));
    }
    return out;
  });
  d.add("cairn_getResponses", [this](const Params& p) -> json {
    p.expect(2, 2);
    json out = json::array();
    const ShardId shard{p.quantity32(0, "shard")};
    const Epoch epoch{p.quantity(1, "epoch")};
    for (const ResponseRecord& r : value_or_throw(chain.responses(shard, epoch))) {
      out.push_back(jc::response_to_json(r));
    }
    return out;
  });
  d.add("cairn_getEvents", [this](const Params& p) -> json {
    p.expect(1, 1);
    const BlockNumber n = block_tag(p, 0);
    if (!header_or_null(n)) return nullptr;
    return jc::events_to_json(n, value_or_throw(chain.events(n)));
  });
  d.add("cairn_getBlobProof", [this, params](const Params& p) -> json {
    p.expect(2, 2);
    const BlobIndex index{p.quantity(0, "index")};
    const BlockNumber block = block_tag(p, 1);
    auto inc = value_or_throw(chain.blob_inclusion(index, block));
    return json{{"blob", jc::blob_to_json(inc.blob, params)},
                {"blockNumber", jc::quantity(inc.block.value)},
                {"proof", jc::proof_to_json(inc.proof)}};
  });
  d.add("cairn_getResponseProof", [this](const Params& p) -> json {
    p.expect(3, 3);
    const NodeId node{p.hash(0, "node id")};
    const ShardId shard{p.quantity32(1, "shard")};
    const Epoch epoch{p.quantity(2, "epoch")};
    auto inc = value_or_throw(chain.response_inclusion(node, shard, epoch));
    return json{{"response", jc::response_to_json(inc.record)},
                {"proof", jc::proof_to_json(inc.proof)}};
  });
}

void RpcServer::Impl::handle_post(const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& reader) {
  const size_t limit = settings.max_body_bytes;
  std::string body;
  // httplib refuses a declared Content-Length above the limit itself (413,
  // the body skipped); chunked or unframed bodies are counted here, and the
  // rest of an oversize one is discarded so the client reads the answer.
  const auto received = receive_body(
      clock, req, reader, limit,
      [&](const char* data, size_t n) {
        body.append(data, n);
        return true;
      },
      kRefusedBodyDrain);
  if (!received.complete) {
    if (received.too_large || res.status == 413) {
      res.status = 413;
      res.set_content(jsonrpc::Dispatcher::dump(jsonrpc::error_response(
                          nullptr, jsonrpc::kInvalidRequest,
                          "request body exceeds the limit of " + std::to_string(limit) + " bytes")),
                      "application/json");
    } else {
      res.status = 400;
      res.set_content("malformed HTTP request body\n", "text/plain");
    }
    close_after(res);
    return;
  }
  try {
    auto out = dispatcher.handle(body);
    if (!out) {
      res.status = 204;
      return;
    }
    res.status = 200;
    res.set_content(std::move(*out), "application/json");
  } catch (const std::exception& e) {
    res.status = 500;
    res.set_content(
        jsonrpc::Dispatcher::dump(jsonrpc::error_response(
            nullptr, jsonrpc::kInternalError, std::string("internal error: ") + e.what())),
        "application/json");
  }
}

RpcServer::RpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RpcServer::~RpcServer() { stop(); }

Result<std::unique_ptr<RpcServer>> RpcServer::start(DevChain& chain, const Clock& clock,
                                                    const RpcServerSettings& settings) {
  if (settings.threads == 0 || settings.max_pending_connections == 0 || settings.max_batch == 0) {
    return make_error(
        Errc::invalid_argument,
        "JSON-RPC server: threads, max_pending_connections and max_batch must be > 0");
  }
  auto impl = std::make_unique<Impl>(chain, clock, settings);
  impl->register_methods();
  auto& http = impl->http;
  Impl* raw = impl.get();
  http.Post("/",
            [raw](const httplib::Request& req, httplib::Response& res,
                  const httplib::ContentReader& reader) { raw->handle_post(req, res, reader); });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "POST");
    res.set_content("cairn dev chain: send JSON-RPC 2.0 requests with POST /\n", "text/plain");
  });
  HttpListenerSettings listen;
  listen.host = settings.host;
  listen.port = settings.port;
  listen.threads = settings.threads;
  listen.max_pending_connections = settings.max_pending_connections;
  listen.io_timeout_ms = settings.read_timeout_ms;
  listen.keep_alive_timeout_ms = settings.read_timeout_ms;
  listen.max_body_bytes = settings.max_body_bytes;
  auto listener = HttpListener::start(http, listen, "JSON-RPC server");
  if (!listener) return tl::unexpected(listener.error());
  impl->listener = std::move(*listener);
  return std::unique_ptr<RpcServer>(new RpcServer(std::move(impl)));
}

void RpcServer::stop() { impl_->listener->stop(); }

const std::string& RpcServer::host() const { return impl_->settings.host; }
uint16_t RpcServer::port() const { return impl_->listener->port(); }
std::string RpcServer::url() const { return impl_->listener->url(); }

}  // namespace cairn::contracts
