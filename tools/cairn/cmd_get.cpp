#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "cairn/contracts/params_json.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/erasure/params.hpp"
#include "cairn/erasure/sha256.hpp"
#include "commands.hpp"
#include "node_client.hpp"
#include "progress.hpp"

namespace cairn::tools {
namespace {

// Where downloaded bytes go: stdout, or a temporary file beside the target
// that is renamed over it only once every byte arrived and checked out, so
// a failed download never leaves a plausible-looking partial file.
class Output {
 public:
  static Result<Output> open(const std::string& target) {
    Output out;
    if (target.empty() || target == "-") {
      out.fd_ = STDOUT_FILENO;
      return out;
    }
    const std::filesystem::path t(target);
    const auto dir = t.has_parent_path() ? t.parent_path() : std::filesystem::path(".");
    std::string tmp = (dir / ("." + t.filename().string() + ".cairn-XXXXXX")).string();
    const int fd = ::mkstemp(tmp.data());
    if (fd < 0) {
      return make_error(Errc::io_error, "cannot create a file in " + dir.string() + ": " + std::strerror(errno));
    }
    out.fd_ = fd;
    out.tmp_ = tmp;
    out.target_ = target;
    return out;
  }
  Output(Output&& o) noexcept : fd_(std::exchange(o.fd_, -1)), tmp_(std::move(o.tmp_)), target_(std::move(o.target_)) {
    o.tmp_.clear();
  }
  Output& operator=(Output&&) = delete;
  ~Output() {
    if (!tmp_.empty()) {
      if (fd_ >= 0) ::close(fd_);
      ::unlink(tmp_.c_str());
    }
  }

  Status write(ByteSpan data) {
    while (!data.empty()) {
      const ssize_t w = ::write(fd_, data.data(), data.size());
      if (w < 0) {
        if (errno == EINTR) continue;
        return make_error(Errc::io_error, "writing " + name() + ": " + std::strerror(errno));
      }
      data = data.subspan(static_cast<size_t>(w));
    }
    return {};
  }

  // Makes the output final: fsync + rename for a file (mode 0644 less the
  // umask, as a freshly created file would have).
  Status commit() {
    if (tmp_.empty()) return {};
    const mode_t mask = ::umask(0);
    ::umask(mask);
    if (::fchmod(fd_, 0666 & ~mask) != 0 || ::fsync(fd_) != 0 || ::close(std::exchange(fd_, -1)) != 0) {
      return make_error(Errc::io_error, "writing " + target_ + ": " + std::strerror(errno));
    }
    if (::rename(tmp_.c_str(), target_.c_str()) != 0) {
      return make_error(Errc::io_error, "renaming onto " + target_ + ": " + std::strerror(errno));
    }
    tmp_.clear();
    return {};
  }

 private:
  Output() = default;
  std::string name() const { return target_.empty() ? "stdout" : target_; }
  int fd_ = -1;
  std::string tmp_;
  std::string target_;
};

// The codec of the node's network (its genesis parameters, from /v1/status).
Result<std::shared_ptr<const erasure::Codec>> network_codec(NodeClient& client) {
  auto status = client.get_json("/v1/status");
  if (!status) return tl::unexpected(status.error());
  auto params = contracts::params_from_json(obj_field(obj_field(*status, "chain"), "params"));
  if (!params) return make_error(params.error().code, "node status: " + params.error().message);
  return erasure::Codec::create(*params);
}

}  // namespace

void register_get(CLI::App& app, int& exit_code) {
  struct Settings {
    std::string id;
    std::string output;
    std::string node;
    bool quiet = false;
    bool force = false;
  };
  auto settings = std::make_shared<Settings>();
  auto* cmd = app.add_subcommand(
      "get", "Download a file or blob by id and check it end to end (SHA-256 of a file, commitment of a blob)");
  add_id_argument(cmd, settings->id);
  cmd->add_option("-o,--output", settings->output,
                  "Write to FILE (replaced only once the download is complete and checked), or to DIR/<id> "
                  "for a directory; - or none: stdout (not a terminal unless -o -)");
  cmd->add_flag("-f,--force", settings->force, "Replace DIR/<id> when -o names a directory where it exists");
  add_node_option(cmd, settings->node);
  cmd->add_flag("-q,--quiet", settings->quiet, "No progress bar");
  cmd->callback([settings, &exit_code] {
    auto fail = [&](const Error& e) { exit_code = report_error("get", e); };
    if (auto allowed = binary_output_allowed(settings->output, "the download"); !allowed) {
      return fail(allowed.error());
    }
    auto target = stat_object(settings->node, settings->id);
    if (!target) return fail(target.error());
    NodeClient& client = *target->client;
    const BlobId& id = target->id;
    const json& info = target->info;
    const bool is_file = str_field(info, "kind") == "file";
    const uint64_t size = u64_field(info, "size");
    // -o DIR: the object goes to DIR/<id> (neither the manifest nor the
    // node's stat knows a file name), refused before downloading when it
    // exists and --force is not given.
    std::error_code ec;
    if (settings->output != "-" && std::filesystem::is_directory(settings->output, ec)) {
      settings->output = (std::filesystem::path(settings->output) / id.hex()).string();
      if (std::filesystem::exists(settings->output, ec) && !settings->force) {
        return fail(Error{Errc::invalid_argument,
                          settings->output + " exists; give --force to replace it, or -o another path"});
      }
    }
    auto out = Output::open(settings->output);
    if (!out) return fail(out.error());

    const std::string discarded = settings->output.empty() || settings->output == "-"
                                      ? "discard what was written to stdout"
                                      : "nothing was written to " + settings->output;
    erasure::Sha256 sha;
    Bytes blob;  // a blob is at most blob_size: kept to recompute its commitment
    ProgressBar bar(settings->output.empty() ? id.hex().substr(0, 16) : settings->output, size,
                    !settings->quiet && stderr_is_terminal());
    auto got = client.download((is_file ? "/v1/files/" : "/v1/blobs/") + id.hex(),
                               [&](ByteSpan bytes) -> Status {
                                 if (is_file) {
                                   sha.update(bytes);
                                 } else {
                                   blob.insert(blob.end(), bytes.begin(), bytes.end());
                                 }
                                 return out->write(bytes);
                               },
                               [&](uint64_t n) { bar.update(n); });
    if (!got) {
      bar.clear();
      return fail(got.error());
    }
    if (is_file) {
      const std::string digest = to_hex(sha.finish());
      if (digest != str_field(info, "sha256")) {
        bar.clear();
        return fail(Error{Errc::corruption, "the bytes received for " + id.hex() + " have SHA-256 " + digest +
                                                ", not the file's " + str_field(info, "sha256") + "; " + discarded});
      }
    } else {
      // A blob's id is its commitment under the network's parameters.
      auto codec = network_codec(client);
      if (!codec) return fail(codec.error());
      auto committed = erasure::encode_and_commit(**codec, blob);
      if (!committed || committed->commitment.id != id) {
        bar.clear();
        return fail(Error{Errc::corruption,
                          "the bytes received for blob " + id.hex() + " do not match its commitment; " + discarded});
      }
    }
    if (auto done = out->commit(); !done) return fail(done.error());
    bar.finish();
    exit_code = kExitOk;
  });
}

}  // namespace cairn::tools
