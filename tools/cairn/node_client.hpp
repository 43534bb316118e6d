#pragma once
// The client side of the node's HTTP API (docs/http-api.md) for `cairn put`,
// `get`, `stat` and `status`: streams uploads from a file and downloads to a
// sink, so memory stays bounded whatever the size; turns transport failures
// and the API's JSON errors into Errors whose codes give the documented
// exit codes (docs/cli.md).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace cairn::tools {

using json = nlohmann::json;

// The node a client command talks to when neither --node nor CAIRN_NODE is
// given: the default API address of `cairn node` (node::ApiSettings).
std::string default_node_url();

// Adds `--node URL` (env CAIRN_NODE, default default_node_url()) to `cmd`.
CLI::Option* add_node_option(CLI::App* cmd, std::string& url);

// A file or blob id as users write it: 64 hex digits, or "cairn://<64 hex>"
// (a trailing '/' is accepted). invalid_argument saying what was expected.
Result<BlobId> parse_object_id(std::string_view text);

// Fields of a node's JSON answer, read without throwing: `def` when the
// field is missing or of another type.
std::string str_field(const json& j, const char* key, std::string def = "");
uint64_t u64_field(const json& j, const char* key, uint64_t def = 0);
bool bool_field(const json& j, const char* key, bool def = false);
// The object or array at `key`, or an empty one.
const json& obj_field(const json& j, const char* key);
const json& list_field(const json& j, const char* key);

// Called with the bytes moved so far.
using TransferProgress = std::function<void(uint64_t done)>;

class NodeClient {
 public:
  // Parses `url` ("http://host:port[/prefix]"); nothing is sent yet.
  // invalid_argument for a malformed URL. `token` goes into
  // `Authorization: Bearer` on uploads when not empty.
  static Result<std::unique_ptr<NodeClient>> create(const std::string& url, std::string token = "");
  ~NodeClient();
  NodeClient(const NodeClient&) = delete;
  NodeClient& operator=(const NodeClient&) = delete;

  const std::string& url() const { return url_; }

  // GET of a JSON document (`path` is relative to the API root, e.g.
  // "/v1/status").
  Result<json> get_json(const std::string& path);

  // POSTs the file at `file` to `path` ("/v1/files?..."), streamed from
  // disk; `sent` reports bytes written to the socket, `all_sent` runs once
  // the whole body is out (the node then stores and replicates before it
  // answers). Returns the node's JSON answer.
  //
  // With `event`, the node is asked to stream its progress
  // (Accept: application/x-ndjson, docs/http-api.md "Upload progress"):
  // each event object ("event": "received", "registering", ...) is handed
  // to `event` as it arrives and the answer is the stream's last line. A
  // node that does not stream answers as without `event`; a stream that
  // ends without an answer is Errc::timeout (the upload may still complete
  // on the node).
  using UploadEvent = std::function<void(const json&)>;
  Result<json> upload(const std::string& path, const std::filesystem::path& file, const TransferProgress& sent,
                      const std::function<void()>& all_sent, const UploadEvent& event = {});

  // GETs `path` and hands the body to `sink` as it arrives. Checks that the
  // node answered 200 and that exactly Content-Length bytes arrived
  // (corruption otherwise: the node cuts a stream it cannot finish).
  Status download(const std::string& path, const std::function<Status(ByteSpan)>& sink,
                  const TransferProgress& received);

 private:
  struct Impl;
  NodeClient(std::string url, std::unique_ptr<Impl> impl);
  std::string url_;
  std::unique_ptr<Impl> impl_;
};

// What `get` and `stat` start from: the node, the id and the id's
// /v1/stat answer.
struct ObjectTarget {
  std::unique_ptr<NodeClient> client;
  BlobId id;
  json info;
};
// Adds the ID positional ("64 hex digits or cairn://<id>") to `cmd`.
CLI::Option* add_id_argument(CLI::App* cmd, std::string& id);
// Parses `id_text`, connects to `node_url` and stats the id.
Result<ObjectTarget> stat_object(const std::string& node_url, const std::string& id_text);

}  // namespace cairn::tools
