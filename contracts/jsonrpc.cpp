#include "jsonrpc.hpp"

#include "json_codec.hpp"

namespace cairn::contracts::jsonrpc {

json error_response(const json& id, int code, const std::string& message, const json& data) {
  json err{{"code", code}, {"message", message}};
  if (!data.is_null()) err["data"] = data;
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(err)}};
}

void Params::fail(size_t i, const char* name, const std::string& what) const {
  throw RpcError{
      kInvalidParams,
      std::string(method_) + ": parameter " + std::to_string(i) + " (" + name + "): " + what,
      nullptr};
}

void Params::expect(size_t min, size_t max) const {
  if (a_.size() < min || a_.size() > max) {
    const std::string range =
        min == max ? std::to_string(min) : std::to_string(min) + ".." + std::to_string(max);
    throw RpcError{kInvalidParams,
                   std::string(method_) + ": expected " + range + " parameters, got " +
                       std::to_string(a_.size()),
                   nullptr};
  }
}

uint64_t Params::quantity(size_t i, const char* name) const {
  auto v = json_codec::parse_quantity(a_.at(i));
  if (!v) fail(i, name, "expected a hex quantity such as \"0x1a\"");
  return *v;
}

uint32_t Params::quantity32(size_t i, const char* name) const {
  const uint64_t v = quantity(i, name);
  if (v > UINT32_MAX) fail(i, name, "exceeds 32 bits");
  return static_cast<uint32_t>(v);
}

Hash32 Params::hash(size_t i, const char* name) const {
  auto v = json_codec::parse_hash(a_.at(i));
  if (!v) fail(i, name, "expected 32 bytes as \"0x\" and 64 hex digits");
  return *v;
}

Bytes Params::data(size_t i, const char* name, size_t max_bytes) const {
  auto v = json_codec::parse_data(a_.at(i), max_bytes);
  if (!v) {
    fail(i, name,
         "expected \"0x\"-prefixed hex of at most " + std::to_string(max_bytes) + " bytes");
  }
  return std::move(*v);
}

bool Params::boolean(size_t i, const char* name) const {
  if (!a_.at(i).is_boolean()) fail(i, name, "expected true or false");
  return a_.at(i).get<bool>();
}

void Dispatcher::add(std::string name, Method method) {
  methods_[std::move(name)] = std::move(method);
}

std::string Dispatcher::dump(const json& j) {
  // Strings we send are ours or came through the parser (valid UTF-8);
  // replace rather than throw should anything slip through.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<json> Dispatcher::call(const json& request) const {
  if (!request.is_object()) {
    return error_response(nullptr, kInvalidRequest, "a request must be a JSON object");
  }
  json id = nullptr;
  const auto id_it = request.find("id");
  const bool notification = id_it == request.end();
  if (!notification) {
    if (!id_it->is_string() && !id_it->is_number() && !id_it->is_null()) {
      return error_response(nullptr, kInvalidRequest, "\"id\" must be a string, number or null");
    }
    id = *id_it;
  }
  const auto version = request.find("jsonrpc");
  if (version == request.end() || !version->is_string() ||
      version->get_ref<const std::string&>() != "2.0") {
    return error_response(id, kInvalidRequest, "\"jsonrpc\" must be \"2.0\"");
  }
  const auto method_it = request.find("method");
  if (method_it == request.end() || !method_it->is_string()) {
    return error_response(id, kInvalidRequest, "\"method\" must be a string");
  }
  const std::string& name = method_it->get_ref<const std::string&>();
  static const json kNoParams = json::array();
  const json* params = &kNoParams;
  if (const auto p = request.find("params"); p != request.end()) {
    if (!p->is_array() && !p->is_object()) {
      return error_response(id, kInvalidRequest, "\"params\" must be an array or an object");
    }
    params = &*p;
  }
  const auto method = methods_.find(name);
  if (method == methods_.end()) {
    if (notification) return std::nullopt;
    return error_response(id, kMethodNotFound, "method '" + name + "' does not exist");
  }
  json result;
  try {
    if (params->is_object()) {
      throw RpcError{kInvalidParams, name + ": pass parameters by position (an array)", nullptr};
    }
    result = method->second(Params(*params, name));
  } catch (const RpcError& e) {
    if (notification) return std::nullopt;
    return error_response(id, e.code, e.message, e.data);
  } catch (const std::exception& e) {
    if (notification) return std::nullopt;
    return error_response(id, kInternalError, name + ": " + e.what());
  }
  if (notification) return std::nullopt;
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

std::optional<std::string> Dispatcher::handle(std::string_view body) const {
  json request = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) {
    return dump(error_response(nullptr, kParseError, "request body is not valid JSON"));
  }
  if (!request.is_array()) {
    auto response = call(request);
    if (!response) return std::nullopt;
    return dump(*response);
  }
  if (request.empty()) {
    return dump(error_response(nullptr, kInvalidRequest, "empty batch"));
  }
  if (request.size() > max_batch_) {
    return dump(error_response(nullptr, kInvalidRequest,
                               "batch of " + std::to_string(request.size()) +
                                   " calls exceeds the limit of " + std::to_string(max_batch_)));
  }
  json responses = json::array();
  for (const json& r : request) {
    if (auto response = call(r)) responses.push_back(std::move(*response));
  }
  if (responses.empty()) return std::nullopt;
  return dump(responses);
}

}  // namespace cairn::contracts::jsonrpc
