// `cairn bench api`: the node's HTTP API moving file bytes over loopback
// against raw loopback TCP moving the same bytes, in the same run. The API
// serves a NodeService that holds one object in memory, so the figures are
// the HTTP layer's own cost (framing, httplib's socket I/O, spooling), which
// every `cairn put` / `cairn get` pays on top of the node's storage path:
//   - download: GET /v1/files/<id> of 32 MiB (the service streams it in
//     1 MiB pieces, as the node's reader hands over blobs); the client
//     discards what it reads. Baseline: a thread writes the same 32 MiB to
//     a fresh loopback connection in 1 MiB writes, the reader discards.
//   - upload: POST /v1/files of 32 MiB from memory; the server spools the
//     body to a file in the work dir and the service checks its size.
//     Baseline: 32 MiB over a fresh loopback connection to a thread that
//     writes what it reads to a file in the work dir (1 MiB writes), then
//     acknowledges with one byte.
// Each unit of work opens a new connection on both sides.

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "bench.hpp"
#include "cairn/core/log.hpp"
#include "node/api_server.hpp"
#include "raw_rocksdb.hpp"
#include "raw_tcp.hpp"

namespace cairn::bench {
namespace {

constexpr size_t kObjectBytes = size_t{32} << 20;
constexpr size_t kPiece = size_t{1} << 20;

// One object in memory behind the NodeService interface.
class BufferService final : public node::NodeService {
 public:
  explicit BufferService(const Bytes& object) : object_(object) { id_.bytes.fill(0x42); }
  const BlobId& id() const { return id_; }

  Result<node::PutFileResult> put_file(ByteSpan, const node::PutOptions&) override { return unsupported(); }
  Result<node::PutFileResult> put_file(const std::filesystem::path& path, const node::PutOptions&) override {
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) return make_error(Errc::io_error, "spooled upload: " + ec.message());
    node::PutFileResult r;
    r.id = id_;
    r.size = size;
    r.stored_size = size;
    return r;
  }
  Result<node::PutBlobResult> put_blob(ByteSpan, const node::PutOptions&) override { return unsupported(); }
  Result<node::ObjectInfo> stat(const BlobId& id) override {
    if (id != id_) return make_error(Errc::not_found, "unknown id");
    node::ObjectInfo info;
    info.id = id_;
    info.kind = node::ObjectKind::file;
    info.size = object_.size();
    return info;
  }
  Status read(const BlobId&, const node::ReadRange& range, const node::ByteSink& sink) override {
    const uint64_t end = range.offset + range.length.value_or(object_.size() - range.offset);
    for (uint64_t at = range.offset; at < end; at += kPiece) {
      CAIRN_TRY_STATUS(sink(ByteSpan(object_).subspan(at, std::min<uint64_t>(kPiece, end - at))));
    }
    return {};
  }
  Result<Bytes> read_blob(const BlobId&) override { return unsupported(); }
  Result<node::BlobStatus> blob_status(const BlobId&) override { return unsupported(); }
  Result<node::NodeStatus> status() override { return unsupported(); }
  std::string metrics_text() override { return {}; }

 private:
  static tl::unexpected<Error> unsupported() { return make_error(Errc::unsupported, "not part of the api bench"); }
  const Bytes& object_;
  BlobId id_;
};
Result<nlohmann::json> run_api(const Options& opts) {
  Bytes object(kObjectBytes);
  std::mt19937_64 rng(opts.seed);
  for (size_t i = 0; i < object.size(); i += 8) put_be<uint64_t>(object.data() + i, rng());
  const auto quiet = log::threshold();
  log::set_threshold(log::Level::warn);
  struct Restore {
    log::Level l;
    ~Restore() { log::set_threshold(l); }
  } restore{quiet};

  return run_guarded([&]() -> Result<nlohmann::json> {
    WorkDir work(opts.work_dir, "api");
    node::metrics::Registry registry;
    BufferService service(object);
    node::ApiSettings settings;
    settings.listen = "127.0.0.1:0";
    auto server = node::start_api_server(service, settings, registry, work.path() / "spool");
    if (!server) return tl::unexpected(server.error());
    const std::string address = (*server)->address();
    const int port = std::stoi(address.substr(address.rfind(':') + 1));
    const std::string path = "/v1/files/" + service.id().hex();

    // ---- download ----
    Side ours_get{"GET /v1/files/<id> through the API server and an httplib client", [&]() -> uint64_t {
                    httplib::Client c("127.0.0.1", port);
                    uint64_t got = 0;
                    auto r = c.Get(path, [&](const char*, size_t n) {
                      got += n;
                      return true;
                    });
                    if (!r || r->status != 200 || got != object.size()) {
                      throw SideFailed(Error{Errc::io_error, "api download failed"});
                    }
                    return got;
                  }};
    RawServer raw_sender([&](int fd) {
      for (size_t at = 0; at < object.size(); at += kPiece) {
        if (!write_all(fd, object.data() + at, std::min(kPiece, object.size() - at))) return;
      }
    });
    std::vector<uint8_t> read_buf(64 * 1024);
    Side raw_get{"raw loopback TCP: 1 MiB writes, reader discards", [&]() -> uint64_t {
                   const int fd = raw_sender.connect();
                   const uint64_t got = read_all(fd, read_buf, [](const uint8_t*, size_t) {});
                   ::close(fd);
                   if (got != object.size()) throw SideFailed(Error{Errc::io_error, "raw download short"});
                   return got;
                 }};
    auto [get_ours, get_raw] = measure_pair(opts, ours_get, raw_get);

    // ---- upload ----
    Side ours_put{"POST /v1/files through the API server (body spooled to a file)", [&]() -> uint64_t {
                    httplib::Client c("127.0.0.1", port);
                    auto r = c.Post("/v1/files", reinterpret_cast<const char*>(object.data()), object.size(),
                                    "application/octet-stream");
                    if (!r || r->status != 201) throw SideFailed(Error{Errc::io_error, "api upload failed"});
                    return object.size();
                  }};
    const auto sink_path = work.path() / "raw-upload";
    RawServer raw_receiver([&](int fd) {
      std::vector<uint8_t> buf(kPiece);
      std::ofstream out(sink_path, std::ios::binary | std::ios::trunc);
      read_all(fd, buf, [&](const uint8_t* d, size_t n) {
        out.write(reinterpret_cast<const char*>(d), static_cast<std::streamsize>(n));
      });
      out.close();
      const uint8_t ack = 1;
      write_all(fd, &ack, 1);
    });
    Side raw_put{"raw loopback TCP: receiver writes to a file, acknowledges", [&]() -> uint64_t {
                   const int fd = raw_receiver.connect();
                   const bool sent = write_all(fd, object.data(), object.size());
                   ::shutdown(fd, SHUT_WR);
                   uint8_t ack = 0;
                   const bool acked = ::recv(fd, &ack, 1, 0) == 1;
                   ::close(fd);
                   if (!sent || !acked) throw SideFailed(Error{Errc::io_error, "raw upload failed"});
                   return object.size();
                 }};
    auto [put_ours, put_raw] = measure_pair(opts, ours_put, raw_put);
    (*server)->stop();

    for (auto* st : {&get_ours, &get_raw, &put_ours, &put_raw}) scale(*st, 1e-6);
    auto report = pair_report("api", "MB/s", ours_get, get_ours, raw_get, get_raw, opts);
    report["direction"] = "download";
    auto upload = pair_report("api", "MB/s", ours_put, put_ours, raw_put, put_raw, opts);
    upload.erase("workload");
    upload.erase("rounds");
    upload.erase("round_seconds");
    report["upload"] = upload;
    report["object_bytes"] = kObjectBytes;
    return report;
  });
}

}  // namespace

Workload api_workload() {
  return Workload{"api",
                  "the HTTP API moving 32 MiB per request (download and upload, spooled) vs raw loopback "
                  "TCP moving the same bytes",
                  run_api};
}

}  // namespace cairn::bench
