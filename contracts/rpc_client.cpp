// JSON-RPC clients: the dev chain Chain client and the Ethereum clock client,
// over cpp-httplib's blocking HTTP client (Chain methods are blocking calls
// by contract, made from worker threads).

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "cairn/contracts/http.hpp"
#include "cairn/contracts/rpc.hpp"
#include "json_codec.hpp"
#include "jsonrpc.hpp"
#include "subscribers.hpp"

namespace cairn::contracts {
namespace {

using nlohmann::json;
namespace jc = json_codec;

using Url = HttpUrl;

Result<Url> parse_url(const std::string& url) {
  return parse_http_url(url, "chain URL", "http://127.0.0.1:8645");
}

Errc errc_for_reason(const std::string& reason) {
  if (reason == "malformed") return Errc::invalid_argument;
  if (reason == "bad_signature") return Errc::verification_failed;
  if (reason == "mempool_full") return Errc::busy;
  if (reason == "stale_nonce" || reason == "duplicate_pending") return Errc::conflict;
  return Errc::internal;
}

// Turns a JSON-RPC error object into an Error with the matching Errc.
Error rpc_error(const json& err, const std::string& method) {
  const int code = err.value("code", 0);
  std::string message = err.value("message", std::string("(no message)"));
  const json data = err.value("data", json());
  Errc errc = Errc::internal;
  switch (code) {
    case jsonrpc::kTxRejected:
    case jsonrpc::kMempoolFull:
      errc = errc_for_reason(data.is_object() ? data.value("reason", std::string()) : "");
      // Server messages already start with the reason.
      return Error{errc, message};
    case jsonrpc::kNotFound:
      errc = Errc::not_found;
      break;
    case jsonrpc::kInvalidParams:
      errc = Errc::invalid_argument;
      break;
    case jsonrpc::kMethodNotFound:
      errc = Errc::unsupported;
      break;
    case jsonrpc::kChainError:
      errc = data.is_object() && data.value("errc", std::string()) == "corruption"
                 ? Errc::corruption
                 : Errc::io_error;
      break;
    default:
      break;
  }
  return Error{errc, method + ": " + message + " (JSON-RPC error " + std::to_string(code) + ")"};
}

// One HTTP connection (keep-alive) speaking JSON-RPC. Calls are serialised.
class JsonRpcHttp {
 public:
  JsonRpcHttp(Url url, const RpcClientSettings& s) : url_(std::move(url)), client_(url_.origin) {
    client_.set_connection_timeout(std::chrono::milliseconds(s.connect_timeout_ms));
    client_.set_read_timeout(std::chrono::milliseconds(s.read_timeout_ms));
    client_.set_write_timeout(std::chrono::milliseconds(s.read_timeout_ms));
    client_.set_keep_alive(true);
    client_.set_tcp_nodelay(true);  // see the server: avoids Nagle/delayed-ACK stalls
  }

  Result<json> call(const std::string& method, json params) {
    std::lock_guard lock(mu_);
    const json request{
        {"jsonrpc", "2.0"}, {"id", ++next_id_}, {"method", method}, {"params", std::move(params)}};
    auto res = client_.Post(url_.path, jsonrpc::Dispatcher::dump(request), "application/json");
    if (!res) {
      return make_error(Errc::timeout, "chain at " + url_.origin + " unreachable (" + method +
                                           "): " + httplib::to_string(res.error()));
    }
    if (res->status != 200) {
      return make_error(res->status == 413 ? Errc::invalid_argument : Errc::io_error,
                        "chain at " + url_.origin + " answered " + method + " with HTTP " +
                            std::to_string(res->status) + ": " + res->body.substr(0, 200));
    }
    try {
      json body = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
      if (body.is_discarded() || !body.is_object()) {
        return make_error(Errc::io_error, "chain at " + url_.origin + ": " + method +
                                              " returned a body that is not a JSON-RPC response");
      }
      if (auto err = body.find("error"); err != body.end() && err->is_object()) {
        return tl::unexpected(rpc_error(*err, method));
      }
      auto result = body.find("result");
      if (result == body.end()) {
        return make_error(Errc::io_error,
                          "chain at " + url_.origin + ": " + method + " returned no result");
      }
      return std::move(*result);
    } catch (const std::exception& e) {
      // A field of an unexpected JSON type (e.g. a string error code).
      return make_error(Errc::io_error, "chain at " + url_.origin + ": malformed answer to " +
                                            method + ": " + e.what());
    }
  }

  const std::string& origin() const { return url_.origin; }

 private:
  Url url_;
  httplib::Client client_;
  std::mutex mu_;
  uint64_t next_id_ = 0;
};

// Follows a chain head by polling on its own thread and publishes every new
// block (up to max_catchup behind the head) in increasing number order.
template <class T>
class HeadPoller {
 public:
  struct Source {
    std::function<Result<uint64_t>()> latest;
    std::function<Result<T>(uint64_t)> fetch;
  };

  HeadPoller(Source source, std::chrono::milliseconds interval, uint32_t max_catchup)
      : source_(std::move(source)), interval_(interval), max_catchup_(std::max(1u, max_catchup)) {}

  ~HeadPoller() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  Subscription subscribe(std::function<void(const T&)> fn) {
    Subscription sub = subscribers_.add(std::move(fn));
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) {
      // Learn the current head now, so blocks sealed right after this call
      // are delivered; if the chain is unreachable the thread retries.
      if (auto l = source_.latest()) {
        last_ = *l;
        initialised_ = true;
      }
      thread_ = std::thread([this] { run(); });
    }
    return sub;
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (cv_.wait_for(lock, interval_, [&] { return stopping_; })) return;
      lock.unlock();
      try {
        poll();
      } catch (const std::exception&) {
        // Out of memory or a bug in a fetch: skip this period, keep following.
      }
      lock.lock();
    }
  }

  bool stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  void poll() {
    auto latest = source_.latest();
    if (!latest) return;  // unreachable for now: try again next period
    if (!initialised_ || *latest < last_) {
      // First contact, or the chain went back (restarted from older data):
      // follow from its current head.
      last_ = *latest;
      initialised_ = true;
      return;
    }
    uint64_t from = last_ + 1;
    if (*latest - last_ > max_catchup_) from = *latest - max_catchup_ + 1;
    for (uint64_t n = from; n <= *latest && !stopping(); ++n) {
      auto block = source_.fetch(n);
      if (!block) return;
      subscribers_.publish(*block);
      last_ = n;
    }
  }

  Source source_;
  const std::chrono::milliseconds interval_;
  const uint64_t max_catchup_;
  Subscribers<T> subscribers_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  // Touched by the poller thread only, once it runs.
  bool initialised_ = false;
  uint64_t last_ = 0;
};

Result<uint64_t> quantity_result(const Result<json>& r, const char* what) {
  if (!r) return tl::unexpected(r.error());
  auto v = jc::parse_quantity(*r);
  if (!v) return make_error(Errc::io_error, std::string(what) + ": not a hex quantity");
  return *v;
}

json block_param(BlockNumber n) { return jc::quantity(n.value); }

class DevChainClient final : public Chain {
 public:
  DevChainClient(const Url& url, const RpcClientSettings& settings, ChainInfo info)
      : info_(std::move(info)),
        calls_(url, settings),
        poll_http_(url, settings),
        poller_(HeadPoller<BlockHeader>::Source{
                    [this] {
                      return quantity_result(poll_http_.call("eth_blockNumber", json::array()),
                                             "eth_blockNumber");
                    },
                    [this](uint64_t n) { return fetch_header(poll_http_, BlockNumber{n}); }},
                poll_interval(settings, info_), settings.max_catchup_blocks) {}

  static std::chrono::milliseconds poll_interval(const RpcClientSettings& s,
                                                 const ChainInfo& info) {
    if (s.poll_interval_ms != 0) return std::chrono::milliseconds(s.poll_interval_ms);
    return std::chrono::milliseconds(std::clamp<uint32_t>(info.params.block_time_ms / 4, 25, 1000));
  }

  const ChainInfo& info() const override { return info_; }

  Result<BlockHeader> head() override { return fetch_header(calls_, std::nullopt); }
  Result<BlockHeader> header(BlockNumber number) override { return fetch_header(calls_, number); }

  Result<std::vector<BlockHeader>> headers(BlockNumber from, uint32_t count) override {
    std::vector<BlockHeader> out;
    while (out.size() < count) {
      const uint64_t want = std::min<uint64_t>(count - out.size(), 1024);
      const uint64_t start = from.value + out.size();
      auto r =
          calls_.call("cairn_getHeaders", json::array({jc::quantity(start), jc::quantity(want)}));
      if (!r) return tl::unexpected(r.error());
      if (!r->is_array()) return bad_answer("cairn_getHeaders");
      if (r->empty()) break;
      for (const json& j : *r) {
        auto h = checked_header(j);
        if (!h) return tl::unexpected(h.error());
        out.push_back(*h);
      }
      if (r->size() < want) break;
    }
    if (!out.empty()) {
      if (auto s = verify_header_chain(out, info_.sequencer, info_.chain_id); !s) {
        return tl::unexpected(s.error());
      }
      if (out.front().number != from) return bad_answer("cairn_getHeaders");
    }
    return out;
  }

  Subscription subscribe_heads(std::function<void(const BlockHeader&)> on_head) override {
    return poller_.subscribe(std::move(on_head));
  }

  Result<Hash32> submit(ByteSpan signed_tx) override {
    auto r = calls_.call("cairn_sendTransaction", json::array({jc::hex_data(signed_tx)}));
    if (!r) return tl::unexpected(r.error());
    auto h = jc::parse_hash(*r);
    if (!h) return bad_answer("cairn_sendTransaction");
    return *h;
  }

  std::vector<Result<Hash32>> submit_many(std::span<const Bytes> signed_txs) override {
    std::vector<Result<Hash32>> out;
    out.reserve(signed_txs.size());
    constexpr size_t kPerCall = 1000;  // ~300 KB of hex per request
    for (size_t start = 0; start < signed_txs.size(); start += kPerCall) {
      const size_t end = std::min(signed_txs.size(), start + kPerCall);
      json list = json::array();
      for (size_t i = start; i < end; ++i) list.push_back(jc::hex_data(signed_txs[i]));
      auto r = calls_.call("cairn_sendTransactions", json::array({std::move(list)}));
      for (size_t i = start; i < end; ++i) {
        if (!r) {
          out.push_back(tl::unexpected(r.error()));
          continue;
        }
        out.push_back(submit_result(*r, i - start, end - start));
      }
    }
    return out;
  }

  Result<std::optional<Receipt>> receipt(const Hash32& tx_hash) override {
    auto r = calls_.call("cairn_getReceipt", json::array({jc::hex_data(tx_hash)}));
    if (!r) return tl::unexpected(r.error());
    if (r->is_null()) return std::optional<Receipt>();
    auto rc = jc::receipt_from_json(*r);
    if (!rc) return tl::unexpected(rc.error());
    if (rc->tx_hash != tx_hash) return bad_answer("cairn_getReceipt");
    return std::optional<Receipt>(std::move(*rc));
  }

  Result<uint64_t> next_nonce(const NodeId& sender) override {
    return quantity_result(
        calls_.call("cairn_nextNonce", json::array({jc::hex_data(sender.bytes)})),
        "cairn_nextNonce");
  }

  Result<std::optional<BlobRecord>> blob_by_id(const BlobId& commitment) override {
    return optional_blob(
        calls_.call("cairn_getBlobById", json::array({jc::hex_data(commitment.bytes)})));
  }
  Result<std::optional<BlobRecord>> blob_by_index(BlobIndex index) override {
    return optional_blob(
        calls_.call("cairn_getBlobByIndex", json::array({jc::quantity(index.value)})));
  }
  Result<std::vector<BlobRecord>> blobs(BlobIndex from, uint32_t count) override {
    if (count > kMaxBlobRange) {
      return make_error(Errc::invalid_argument, "a blob range holds at most " +
                                                    std::to_string(kMaxBlobRange) +
                                                    " blobs; asked for " + std::to_string(count));
    }
    auto list = list_of(
        calls_.call("cairn_getBlobs", json::array({jc::quantity(from.value), jc::quantity(count)})),
        jc::blob_from_json);
    if (!list) return list;
    // The answer must be the range asked for: consecutive from `from`.
    if (list->size() > count) return bad_answer("cairn_getBlobs");
    for (size_t i = 0; i < list->size(); ++i) {
      if ((*list)[i].index.value != from.value + i) return bad_answer("cairn_getBlobs");
    }
    return list;
  }
  Result<uint64_t> blob_count() override {
    return quantity_result(calls_.call("cairn_blobCount", json::array()), "cairn_blobCount");
  }
  Result<uint64_t> blob_count(ShardId shard) override {
    return quantity_result(calls_.call("cairn_blobCount", json::array({jc::quantity(shard.value)})),
                           "cairn_blobCount");
  }

  Result<std::vector<NodeRecord>> nodes(ShardId shard) override {
    return list_of(calls_.call("cairn_getNodes", json::array({jc::quantity(shard.value)})),
                   jc::node_from_json);
  }
  Result<std::vector<ResponseRecord>> responses(ShardId shard, Epoch epoch) override {
    return list_of(calls_.call("cairn_getResponses",
                               json::array({jc::quantity(shard.value), jc::quantity(epoch.value)})),
                   jc::response_from_json);
  }

  Result<std::vector<Event>> events(BlockNumber number) override {
    auto r = calls_.call("cairn_getEvents", json::array({block_param(number)}));
    if (!r) return tl::unexpected(r.error());
    if (r->is_null()) {
      return make_error(Errc::not_found,
                        "block " + std::to_string(number.value) + " does not exist");
    }
    return jc::events_from_json(*r);
  }

  Result<BlobInclusion> blob_inclusion(BlobIndex index, BlockNumber block) override {
    auto r = calls_.call("cairn_getBlobProof",
                         json::array({jc::quantity(index.value), block_param(block)}));
    if (!r) return tl::unexpected(r.error());
    if (!r->is_object() || !r->contains("blob") || !r->contains("proof")) {
      return bad_answer("cairn_getBlobProof");
    }
    auto blob = jc::blob_from_json((*r)["blob"]);
    auto proof = jc::proof_from_json((*r)["proof"]);
    auto at = jc::parse_quantity(r->value("blockNumber", json()));
    if (!blob || !proof || !at) return bad_answer("cairn_getBlobProof");
    return BlobInclusion{*blob, BlockNumber{*at}, std::move(*proof)};
  }

  Result<ResponseInclusion> response_inclusion(const NodeId& node, ShardId shard,
                                               Epoch epoch) override {
    auto r = calls_.call("cairn_getResponseProof",
                         json::array({jc::hex_data(node.bytes), jc::quantity(shard.value),
                                      jc::quantity(epoch.value)}));
    if (!r) return tl::unexpected(r.error());
    if (!r->is_object() || !r->contains("response") || !r->contains("proof")) {
      return bad_answer("cairn_getResponseProof");
    }
    auto record = jc::response_from_json((*r)["response"]);
    auto proof = jc::proof_from_json((*r)["proof"]);
    if (!record || !proof) return bad_answer("cairn_getResponseProof");
    return ResponseInclusion{*record, std::move(*proof)};
  }

 private:
  tl::unexpected<Error> bad_answer(const std::string& method) const {
    return make_error(Errc::io_error,
                      "chain at " + calls_.origin() + ": malformed answer to " + method);
  }

  // One element of a cairn_sendTransactions answer.
  Result<Hash32> submit_result(const json& list, size_t i, size_t n) const {
    try {
      const json* item = list.is_array() && list.size() == n ? &list[i] : nullptr;
      if (item == nullptr || !item->is_object()) return bad_answer("cairn_sendTransactions");
      if (auto e = item->find("error"); e != item->end()) {
        const json err{{"code", item->value("code", jsonrpc::kTxRejected)},
                       {"message", e->value("message", std::string())},
                       {"data", *e}};
        return tl::unexpected(rpc_error(err, "cairn_sendTransactions"));
      }
      if (auto h = jc::parse_hash(item->value("txHash", json()))) return *h;
    } catch (const std::exception&) {
    }
    return bad_answer("cairn_sendTransactions");
  }

  // A header from the server, accepted only with the sequencer's signature
  // and this chain's id.
  Result<BlockHeader> checked_header(const json& j) const {
    auto h = jc::header_from_json(j);
    if (!h) return tl::unexpected(h.error());
    if (h->chain_id != info_.chain_id) {
      return make_error(Errc::verification_failed,
                        "chain at " + calls_.origin() + " sent a header of another chain");
    }
    if (auto s = verify_header(*h, info_.sequencer); !s) return tl::unexpected(s.error());
    return *h;
  }

  Result<BlockHeader> fetch_header(JsonRpcHttp& http, std::optional<BlockNumber> n) const {
    auto r = http.call("cairn_getHeader", json::array({n ? block_param(*n) : json("latest")}));
    if (!r) return tl::unexpected(r.error());
    if (r->is_null()) {
      return make_error(Errc::not_found,
                        "block " + std::to_string(n ? n->value : 0) + " does not exist");
    }
    auto h = checked_header(*r);
    if (h && n && h->number != *n) return bad_answer("cairn_getHeader");
    return h;
  }

  Result<std::optional<BlobRecord>> optional_blob(Result<json> r) const {
    if (!r) return tl::unexpected(r.error());
    if (r->is_null()) return std::optional<BlobRecord>();
    auto b = jc::blob_from_json(*r);
    if (!b) return tl::unexpected(b.error());
    return std::optional<BlobRecord>(*b);
  }

  template <class Record>
  static Result<std::vector<Record>> list_of(Result<json> r,
                                             Result<Record> (*parse)(const json&) noexcept) {
    if (!r) return tl::unexpected(r.error());
    if (!r->is_array()) return make_error(Errc::io_error, "chain: expected a list");
    std::vector<Record> out;
    for (const json& j : *r) {
      auto rec = parse(j);
      if (!rec) return tl::unexpected(rec.error());
      out.push_back(std::move(*rec));
    }
    return out;
  }

  const ChainInfo info_;
  mutable JsonRpcHttp calls_;
  JsonRpcHttp poll_http_;
  HeadPoller<BlockHeader> poller_;
};

// An Ethereum block as a ClockTick.
Result<ClockTick> tick_from_eth_block(const json& b) {
  if (!b.is_object()) return make_error(Errc::io_error, "eth_getBlockByNumber: not a block object");
  auto number = jc::parse_quantity(b.value("number", json()));
  auto hash = jc::parse_hash(b.value("hash", json()));
  auto parent = jc::parse_hash(b.value("parentHash", json()));
  auto timestamp = jc::parse_quantity(b.value("timestamp", json()));
  if (!number || !hash || !parent || !timestamp || *timestamp > UINT64_MAX / 1000) {
    return make_error(Errc::io_error,
                      "eth_getBlockByNumber: block lacks number, hash, parentHash or timestamp");
  }
  ClockTick t;
  t.number = BlockNumber{*number};
  t.hash = *hash;
  t.parent_hash = *parent;
  t.timestamp_ms = *timestamp * 1000;
  auto mix = b.contains("mixHash") ? jc::parse_hash(b["mixHash"]) : std::nullopt;
  t.randomness = mix && *mix != Hash32{} ? *mix : block_randomness(*hash);
  return t;
}

class EthereumClock final : public ConsensusClock {
 public:
  EthereumClock(const Url& url, const RpcClientSettings& settings)
      : calls_(url, settings),
        poll_http_(url, settings),
        poller_(HeadPoller<ClockTick>::Source{
                    [this] {
                      return quantity_result(poll_http_.call("eth_blockNumber", json::array()),
                                             "eth_blockNumber");
                    },
                    [this](uint64_t n) { return fetch(poll_http_, jc::quantity(n)); }},
                std::chrono::milliseconds(settings.poll_interval_ms != 0 ? settings.poll_interval_ms
                                                                         : 1000),
                settings.max_catchup_blocks) {}

  Result<ClockTick> latest_tick() override { return fetch(calls_, "latest"); }
  Result<ClockTick> tick(BlockNumber number) override { return fetch(calls_, block_param(number)); }
  Subscription subscribe_ticks(std::function<void(const ClockTick&)> on_tick) override {
    return poller_.subscribe(std::move(on_tick));
  }

 private:
  static Result<ClockTick> fetch(JsonRpcHttp& http, const json& tag) {
    auto r = http.call("eth_getBlockByNumber", json::array({tag, false}));
    if (!r) return tl::unexpected(r.error());
    if (r->is_null()) return make_error(Errc::not_found, "block " + tag.dump() + " does not exist");
    return tick_from_eth_block(*r);
  }

  JsonRpcHttp calls_;
  JsonRpcHttp poll_http_;
  HeadPoller<ClockTick> poller_;
};

}  // namespace

Result<std::unique_ptr<Chain>> connect_devchain(const std::string& url,
                                                const RpcClientSettings& settings) {
  auto u = parse_url(url);
  if (!u) return tl::unexpected(u.error());
  JsonRpcHttp http(*u, settings);
  auto r = http.call("cairn_chainInfo", json::array());
  if (!r) return tl::unexpected(r.error());
  auto info = jc::chain_info_from_json(*r);
  if (!info) return tl::unexpected(with_context(info.error(), "cairn_chainInfo from " + url));
  if (settings.expected_sequencer && *settings.expected_sequencer != info->sequencer) {
    return make_error(Errc::verification_failed, "chain at " + url + " is run by sequencer " +
                                                     info->sequencer.hex() + ", not the expected " +
                                                     settings.expected_sequencer->hex());
  }
  return std::unique_ptr<Chain>(new DevChainClient(*u, settings, std::move(*info)));
}

Result<std::unique_ptr<ConsensusClock>> connect_ethereum_clock(const std::string& url,
                                                               const RpcClientSettings& settings) {
  auto u = parse_url(url);
  if (!u) return tl::unexpected(u.error());
  auto clock = std::make_unique<EthereumClock>(*u, settings);
  // Fail early on an unreachable or non-Ethereum endpoint.
  if (auto t = clock->latest_tick(); !t) return tl::unexpected(t.error());
  return std::unique_ptr<ConsensusClock>(std::move(clock));
}

}  // namespace cairn::contracts
