#pragma once
// JSON-RPC 2.0 envelope handling, independent of HTTP: parse a request body,
// validate each call, dispatch it, and build the response body, with the
// standard error codes (-32700 parse, -32600 invalid request, -32601 method
// not found, -32602 invalid params, -32603 internal). Batches are handled
// per the specification up to a bound; more calls than that are refused
// with one -32600.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "cairn/core/bytes.hpp"

namespace cairn::contracts::jsonrpc {

using nlohmann::json;

inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
// Server-defined (-32000..-32099), documented in docs/chain.md.
inline constexpr int kChainError = -32000;   // storage failure, corruption, chain halted
inline constexpr int kNotFound = -32001;     // the named block, blob or response does not exist
inline constexpr int kTxRejected = -32010;   // admission refused; data.reason = TxStatus name
inline constexpr int kMempoolFull = -32011;  // retry after the next block

// Thrown by methods (and caught by the dispatcher, on the same thread) to
// answer with an error object.
struct RpcError {
  int code = kInternalError;
  std::string message;
  json data;  // null: omitted
};

// {"jsonrpc":"2.0","id":id,"error":{"code","message"[,"data"]}}
json error_response(const json& id, int code, const std::string& message,
                    const json& data = nullptr);

// Positional parameters of one call. Accessors throw RpcError{kInvalidParams}
// naming the method and the parameter.
class Params {
 public:
  Params(const json& array, std::string_view method) : a_(array), method_(method) {}
  void expect(size_t min, size_t max) const;
  size_t size() const { return a_.size(); }
  const json& at(size_t i) const { return a_.at(i); }
  bool has(size_t i) const { return i < a_.size() && !a_[i].is_null(); }
  uint64_t quantity(size_t i, const char* name) const;
  uint32_t quantity32(size_t i, const char* name) const;
  Hash32 hash(size_t i, const char* name) const;
  Bytes data(size_t i, const char* name, size_t max_bytes) const;
  bool boolean(size_t i, const char* name) const;
  [[noreturn]] void fail(size_t i, const char* name, const std::string& what) const;

 private:
  const json& a_;
  std::string_view method_;
};

class Dispatcher {
 public:
  using Method = std::function<json(const Params&)>;

  explicit Dispatcher(size_t max_batch) : max_batch_(max_batch) {}
  void add(std::string name, Method method);

  // The response body for a request body, or nullopt when nothing is due
  // (a notification, or a batch of only notifications).
  std::optional<std::string> handle(std::string_view body) const;
  static std::string dump(const json& j);

 private:
  // The response to one call, or nullopt for a notification.
  std::optional<json> call(const json& request) const;

  size_t max_batch_;
  std::unordered_map<std::string, Method> methods_;
};

}  // namespace cairn::contracts::jsonrpc
