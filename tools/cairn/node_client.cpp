#include "node_client.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/stat.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <vector>

#include "cairn/contracts/http.hpp"
#include "node/settings.hpp"

namespace cairn::tools {
namespace {

// Connecting to a node is local or near: a node that does not accept within
// this long is down or firewalled.
constexpr auto kConnectTimeout = std::chrono::seconds(5);
// An upload is answered once its blobs are stored and replicated: up to the
// node's upload.ack_timeout (default 120 s) after the last byte; a download
// may wait for the node to gather fragments from peers. Generous, so that a
// slow network is not mistaken for a dead node.
constexpr auto kIoTimeout = std::chrono::seconds(300);
// Upload reads from disk and socket writes are this large.
constexpr size_t kUploadChunk = size_t{1} << 20;
// Error bodies kept for the message; the rest is dropped. Also the bound
// on one line of a streamed upload answer.
constexpr size_t kMaxErrorBody = 64 * 1024;
constexpr const char* kNdjson = "application/x-ndjson";

std::optional<Errc> errc_from_name(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(Errc::internal); ++i) {
    const auto c = static_cast<Errc>(i);
    if (errc_name(c) == name) return c;
  }
  return std::nullopt;
}

// An error answer of the API ({"error": code, "message": ...}) as an Error
// whose code gives the right exit code.
Error api_error(int status, const std::string& body, const std::string& url) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string code;
  std::string message;
  if (j.is_object()) {
    if (auto it = j.find("error"); it != j.end() && it->is_string()) code = it->get<std::string>();
    if (auto it = j.find("message"); it != j.end() && it->is_string()) message = it->get<std::string>();
  }
  if (message.empty()) message = body.substr(0, 200);
  if (message.empty()) message = "(no message)";
  Errc errc = Errc::internal;
  if (auto named = errc_from_name(code)) {
    errc = *named;
  } else if (status == 401 || status == 403) {
    errc = Errc::invalid_argument;
    message += " (pass --token, or set CAIRN_API_TOKEN)";
  } else if (status == 413 || status == 415 || status == 416) {
    errc = Errc::invalid_argument;
  } else if (status == 404) {
    errc = Errc::not_found;
  } else if (status == 503) {
    errc = Errc::busy;
  } else if (status == 504) {
    errc = Errc::timeout;
  }
  return Error{errc, message + " (HTTP " + std::to_string(status) + " from " + url + ")"};
}

// The host of an http://HOST:PORT/... URL ("" when there is none).
std::string url_host(const std::string& url) {
  size_t b = url.find("://");
  b = b == std::string::npos ? 0 : b + 3;
  if (b < url.size() && url[b] == '[') {
    const size_t e = url.find(']', b);
    return e == std::string::npos ? "" : url.substr(b + 1, e - b - 1);
  }
  return url.substr(b, url.find_first_of(":/", b) - b);
}

Error transport_error(httplib::Error e, const std::string& url) {
  if (e == httplib::Error::Connection) {
    // httplib reports a name that does not resolve as a failed connection:
    // resolve it here to tell the two apart.
    const std::string host = url_host(url);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = host.empty() ? EAI_NONAME : ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (found != nullptr) ::freeaddrinfo(found);
    if (rc != 0) {
      return Error{Errc::timeout, "cannot resolve host '" + host + "' of " + url + " (" + ::gai_strerror(rc) +
                                      "): check --node or CAIRN_NODE"};
    }
  }
  switch (e) {
    case httplib::Error::Connection:
    case httplib::Error::ConnectionTimeout:
      return Error{
          Errc::timeout,
          "cannot reach the node at " + url +
              (e == httplib::Error::Connection ? " (connection refused or no route)" : " (connect timed out)") +
              ": is `cairn node` running at " + url + "? (choose another with --node or CAIRN_NODE)"};
    case httplib::Error::Read:
      return Error{Errc::timeout, "the node at " + url + " did not answer, or closed the connection"};
    case httplib::Error::Write:
      return Error{Errc::timeout, "the node at " + url + " closed the connection while the request was sent"};
    default:
      return Error{Errc::io_error, "talking to the node at " + url + ": " + httplib::to_string(e)};
  }
}

}  // namespace

std::string default_node_url() { return "http://" + node::ApiSettings{}.listen; }

CLI::Option* add_node_option(CLI::App* cmd, std::string& url) {
  url = default_node_url();
  return cmd->add_option("--node", url, "HTTP API of the node to use")->envname("CAIRN_NODE")->capture_default_str();
}

Result<BlobId> parse_object_id(std::string_view text) {
  std::string_view hex = text;
  constexpr std::string_view kScheme = "cairn://";
  if (hex.substr(0, kScheme.size()) == kScheme) hex.remove_prefix(kScheme.size());
  if (!hex.empty() && hex.back() == '/') hex.remove_suffix(1);
  auto id = BlobId::from_hex(hex);
  if (!id) {
    return make_error(Errc::invalid_argument, "'" + std::string(text) +
                                                  "' is not an id: expected 64 hex digits or "
                                                  "cairn://<64 hex digits>");
  }
  return *id;
}

std::string str_field(const json& j, const char* key, std::string def) {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

uint64_t u64_field(const json& j, const char* key, uint64_t def) {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : def;
}

bool bool_field(const json& j, const char* key, bool def) {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : def;
}

const json& obj_field(const json& j, const char* key) {
  static const json empty = json::object();
  if (!j.is_object()) return empty;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

const json& list_field(const json& j, const char* key) {
  static const json empty = json::array();
  if (!j.is_object()) return empty;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : empty;
}

CLI::Option* add_id_argument(CLI::App* cmd, std::string& id) {
  return cmd->add_option("ID", id, "File or blob id: 64 hex digits or cairn://<id>")->required();
}

Result<ObjectTarget> stat_object(const std::string& node_url, const std::string& id_text) {
  auto id = parse_object_id(id_text);
  if (!id) return tl::unexpected(id.error());
  auto client = NodeClient::create(node_url);
  if (!client) return tl::unexpected(client.error());
  auto info = (*client)->get_json("/v1/stat/" + id->hex());
  if (!info) return tl::unexpected(info.error());
  return ObjectTarget{std::move(*client), *id, std::move(*info)};
}

struct NodeClient::Impl {
  std::string prefix;  // path prefix of the API root ("" or "/something")
  std::string token;
  httplib::Client http;

  explicit Impl(const std::string& origin) : http(origin) {
    http.set_connection_timeout(kConnectTimeout);
    http.set_read_timeout(kIoTimeout);
    http.set_write_timeout(kIoTimeout);
    http.set_keep_alive(true);
    http.set_tcp_nodelay(true);
  }
};

NodeClient::NodeClient(std::string url, std::unique_ptr<Impl> impl) : url_(std::move(url)), impl_(std::move(impl)) {}
NodeClient::~NodeClient() = default;

Result<std::unique_ptr<NodeClient>> NodeClient::create(const std::string& url, std::string token) {
  auto parsed = contracts::parse_http_url(url, "node URL", default_node_url());
  if (!parsed) return tl::unexpected(parsed.error());
  auto impl = std::make_unique<Impl>(parsed->origin);
  impl->prefix = parsed->path == "/" ? "" : parsed->path;
  while (!impl->prefix.empty() && impl->prefix.back() == '/') impl->prefix.pop_back();
  impl->token = std::move(token);
  return std::unique_ptr<NodeClient>(new NodeClient(url, std::move(impl)));
}

Result<json> NodeClient::get_json(const std::string& path) {
  auto res = impl_->http.Get(impl_->prefix + path);
  if (!res) return tl::unexpected(transport_error(res.error(), url_));
  if (res->status != 200) return tl::unexpected(api_error(res->status, res->body, url_));
  json j = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return make_error(Errc::internal, "the node at " + url_ + " answered " + path + " with invalid JSON");
  }
  return j;
}

Result<json> NodeClient::upload(const std::string& path, const std::filesystem::path& file,
                                const TransferProgress& sent, const std::function<void()>& all_sent,
                                const UploadEvent& event) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(errno == ENOENT ? Errc::invalid_argument : Errc::io_error,
                      "cannot open " + file.string() + ": " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return make_error(Errc::invalid_argument, file.string() + " is not a regular file");
  }
  const auto size = static_cast<uint64_t>(st.st_size);

  std::optional<Error> local;  // a read failure on our side
  std::vector<char> buffer(static_cast<size_t>(std::min<uint64_t>(kUploadChunk, std::max<uint64_t>(size, 1))));
  httplib::Request req;
  req.method = "POST";
  req.path = impl_->prefix + path;
  if (!impl_->token.empty()) req.headers.emplace("Authorization", "Bearer " + impl_->token);
  req.headers.emplace("Content-Type", "application/octet-stream");
  if (event) req.headers.emplace("Accept", std::string(kNdjson) + ", application/json");
  if (size == 0) {
    if (all_sent) all_sent();
  } else {
    req.content_length_ = static_cast<size_t>(size);
    req.content_provider_ = [&](size_t offset, size_t length, httplib::DataSink& sink) {
      const size_t want = std::min(length, buffer.size());
      const ssize_t n = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
      if (n <= 0) {
        local = Error{Errc::io_error, n == 0 ? file.string() + " shrank while it was uploaded"
                                             : "reading " + file.string() + ": " + std::strerror(errno)};
        return false;
      }
      if (!sink.write(buffer.data(), static_cast<size_t>(n))) return false;
      const uint64_t done = offset + static_cast<uint64_t>(n);
      if (sent) sent(done);
      if (done == size && all_sent) all_sent();
      return true;
    };
  }
  // The answer: a JSON document, or (streamed) JSON lines of which every
  // one but the last is an event.
  int status = 0;
  bool streamed = false;
  std::string body;  // the document, or the stream's incomplete last line
  std::optional<json> answer;
  std::optional<Error> bad;  // an answer this client cannot read
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    streamed = event && r.status == 200 && r.get_header_value("Content-Type").rfind(kNdjson, 0) == 0;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    body.append(data, n);
    if (!streamed) {
      if (body.size() > kMaxErrorBody) body.resize(kMaxErrorBody);
      return true;
    }
    size_t at = 0;
    for (size_t nl; (nl = body.find('\n', at)) != std::string::npos; at = nl + 1) {
      json line = json::parse(body.substr(at, nl - at), nullptr, /*allow_exceptions=*/false);
      if (!line.is_object()) {
        bad = Error{Errc::internal, "the node at " + url_ + " sent an upload progress line that is not a JSON object"};
        return false;
      }
      if (line.contains("event")) {
        event(line);
      } else {
        answer = std::move(line);
      }
    }
    body.erase(0, at);
    if (body.size() > kMaxErrorBody) {
      bad = Error{Errc::internal, "the node at " + url_ + " sent an upload progress line over " +
                                      std::to_string(kMaxErrorBody) + " bytes"};
      return false;
    }
    return true;
  };
  httplib::Result res = impl_->http.send(req);
  if (local) return tl::unexpected(*local);
  if (bad) return tl::unexpected(*bad);
  if (!res) return tl::unexpected(transport_error(res.error(), url_));
  if (streamed) {
    if (!answer) {
      return make_error(Errc::timeout, "the node at " + url_ +
                                           " ended the upload's progress stream without an answer; the upload "
                                           "may still complete there (check with cairn stat once its id is known)");
    }
    if (answer->contains("error")) {
      const int code = answer->value("status", 500);
      return tl::unexpected(api_error(code, answer->dump(), url_));
    }
    return *answer;
  }
  if (status != 201 && status != 200) return tl::unexpected(api_error(status, body, url_));
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return make_error(Errc::internal, "the node at " + url_ + " answered the upload with invalid JSON");
  }
  return j;
}

Status NodeClient::download(const std::string& path, const std::function<Status(ByteSpan)>& sink,
                            const TransferProgress& received) {
  int status = 0;
  std::optional<uint64_t> expected;
  std::string error_body;
  std::optional<Error> sink_error;
  uint64_t got = 0;
  auto res = impl_->http.Get(
      impl_->prefix + path,
      [&](const httplib::Response& r) {
        status = r.status;
        if (r.has_header("Content-Length")) expected = r.get_header_value<uint64_t>("Content-Length");
        return true;
      },
      [&](const char* data, size_t n) {
        if (status != 200) {
          if (error_body.size() < kMaxErrorBody)
            error_body.append(data, std::min(n, kMaxErrorBody - error_body.size()));
          return true;
        }
        auto st = sink(ByteSpan(reinterpret_cast<const uint8_t*>(data), n));
        if (!st) {
          sink_error = st.error();
          return false;
        }
        got += n;
        if (received) received(got);
        return true;
      });
  if (sink_error) return tl::unexpected(*sink_error);
  if (status != 0 && status != 200) return tl::unexpected(api_error(status, error_body, url_));
  if (!res) {
    if (status == 200 && expected) {
      return make_error(Errc::timeout, "the download from " + url_ + " stopped after " + std::to_string(got) + " of " +
                                           std::to_string(*expected) +
                                           " bytes: the node could not read the data (see its log) or "
                                           "the connection dropped");
    }
    return tl::unexpected(transport_error(res.error(), url_));
  }
  if (expected && got != *expected) {
    return make_error(Errc::corruption, "the node at " + url_ + " sent " + std::to_string(got) + " of " +
                                            std::to_string(*expected) + " announced bytes");
  }
  return {};
}

}  // namespace cairn::tools
