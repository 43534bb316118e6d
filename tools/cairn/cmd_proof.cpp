// `cairn proof`: fetch a replica-count proof file from a node's HTTP API
// (GET /v1/proofs/latest?blob=ID or /v1/proofs/SHARD/EPOCH, docs/http-api.md)
// and write it where `cairn verify` reads it. The bytes are decoded (not
// verified: that is `cairn verify`'s job, against a trust root this command
// does not have) to report what they claim.

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>

#include "cairn/sampling/proof.hpp"
#include "commands.hpp"
#include "node_client.hpp"

namespace cairn::tools {

void register_proof(CLI::App& app, int& exit_code) {
  struct Settings {
    std::string id;
    std::string node;
    std::optional<uint32_t> shard;
    std::optional<uint64_t> epoch;
    std::string output;
  };
  auto settings = std::make_shared<Settings>();
  auto* cmd = app.add_subcommand(
      "proof", "Fetch a replica-count proof: for a blob's shard at the latest finished epoch, or for --shard/--epoch");
  cmd->add_option("id", settings->id, "File or blob id (64 hex digits or cairn://ID)");
  auto* shard = cmd->add_option("--shard", settings->shard, "Shard of the proof (with --epoch, instead of an id)");
  auto* epoch = cmd->add_option("--epoch", settings->epoch, "Epoch of the proof (with --shard)");
  shard->needs(epoch);
  epoch->needs(shard);
  add_node_option(cmd, settings->node);
  cmd->add_option("-o,--output", settings->output,
                  "Write the proof here; - or none: stdout (not a terminal unless -o -)");
  cmd->callback([settings, &exit_code] {
    auto fail = [&](const Error& e) { exit_code = report_error("proof", e); };
    std::string path;
    if (settings->shard) {
      if (!settings->id.empty()) {
        std::cerr << "cairn proof: give an id or --shard/--epoch, not both\n";
        exit_code = kExitUsage;
        return;
      }
      path = "/v1/proofs/" + std::to_string(*settings->shard) + "/" + std::to_string(*settings->epoch);
    } else {
      if (settings->id.empty()) {
        std::cerr << "cairn proof: give a file or blob id, or --shard S --epoch E\n";
        exit_code = kExitUsage;
        return;
      }
      auto id = parse_object_id(settings->id);
      if (!id) return fail(id.error());
      path = "/v1/proofs/latest?blob=" + id->hex();
    }
    if (auto allowed = binary_output_allowed(settings->output, "the proof"); !allowed) return fail(allowed.error());
    auto client = NodeClient::create(settings->node);
    if (!client) return fail(client.error());
    Bytes proof;
    auto st = (*client)->download(path,
                                  [&proof](ByteSpan chunk) -> Status {
                                    append(proof, chunk);
                                    return {};
                                  },
                                  {});
    if (!st) return fail(st.error());
    auto decoded = sampling::ReplicaProof::decode(proof);
    if (!decoded) {
      return fail(Error{Errc::corruption, "the node sent a proof that does not decode: " + decoded.error().message});
    }
    if (settings->output.empty() || settings->output == "-") {
      std::cout.write(reinterpret_cast<const char*>(proof.data()), static_cast<std::streamsize>(proof.size()));
      std::cout.flush();
    } else {
      std::ofstream out(settings->output, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(proof.data()), static_cast<std::streamsize>(proof.size()));
      out.close();
      if (!out) return fail(Error{Errc::io_error, "cannot write " + settings->output});
    }
    std::set<NodeId> nodes;
    for (const auto& e : decoded->entries) nodes.insert(e.response.node);
    std::cerr << "proof of shard " << decoded->shard.value << " epoch " << decoded->epoch.value << ": " << nodes.size()
              << " replica(s) claimed, " << proof.size() << " bytes"
              << (settings->output.empty() || settings->output == "-" ? "" : " -> " + settings->output)
              << " (check it with cairn verify --trust <sequencer key>)\n";
    exit_code = kExitOk;
  });
}

}  // namespace cairn::tools
