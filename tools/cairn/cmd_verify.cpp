// `cairn verify FILE`: checks a replica-count proof offline against a trust
// root and prints the replica count and the blobs it covers
// (docs/proof-format.md, docs/cli.md).

#include <CLI/CLI.hpp>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cairn/erasure/mapped_file.hpp"
#include "cairn/sampling/proof.hpp"
#include "commands.hpp"

namespace cairn::tools {
namespace {

struct VerifySettings {
  std::string file;
  std::string trust;
  uint32_t min_replicas = 1;
  bool json = false;
};

// Hex text without whitespace and an optional 0x prefix.
std::string strip_hex(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)) == 0) out.push_back(c);
  }
  if (out.size() >= 2 && out[0] == '0' && (out[1] == 'x' || out[1] == 'X')) out.erase(0, 2);
  return out;
}

// --trust: the sequencer key (64 hex digits), or a genesis record as a file
// (binary or hex text, e.g. the "raw" of cairn_chainInfo) or inline hex.
Result<sampling::TrustRoot> parse_trust(const std::string& arg) {
  const std::string hex = strip_hex(arg);
  if (hex.size() == 64) {
    if (auto key = NodeId::from_hex(hex)) return sampling::TrustRoot::key(*key);
  }
  std::optional<Bytes> record;
  std::error_code ec;
  if (std::filesystem::is_regular_file(arg, ec)) {
    std::ifstream in(arg, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in.good() && !in.eof()) return make_error(Errc::io_error, "cannot read --trust file " + arg);
    const std::string content = ss.str();
    record = from_hex(strip_hex(content));                        // hex text
    if (!record) record = Bytes(content.begin(), content.end());  // binary
  } else {
    record = from_hex(hex);
  }
  if (record) {
    if (auto info = contracts::ChainInfo::decode(*record)) return sampling::TrustRoot::chain(*info);
  }
  return make_error(Errc::invalid_argument, "--trust '" + arg +
                                                "' is neither a sequencer public key (64 hex digits) nor a genesis "
                                                "record (a file or hex of the chain info record, docs/chain.md)");
}

std::string trust_text(const sampling::TrustRoot& t) {
  switch (t.kind) {
    case sampling::TrustRoot::Kind::sequencer_key:
      return "pinned by --trust: sequencer key";
    case sampling::TrustRoot::Kind::genesis:
      return "pinned by --trust: genesis record";
    case sampling::TrustRoot::Kind::embedded:
      break;
  }
  return "taken from the proof, NOT pinned: pass --trust with the chain's sequencer key";
}

const char* trust_kind(const sampling::TrustRoot& t) {
  switch (t.kind) {
    case sampling::TrustRoot::Kind::sequencer_key:
      return "sequencer_key";
    case sampling::TrustRoot::Kind::genesis:
      return "genesis";
    case sampling::TrustRoot::Kind::embedded:
      break;
  }
  return "unpinned";
}

int run_verify(const VerifySettings& s) {
  sampling::TrustRoot trust;
  if (!s.trust.empty()) {
    auto t = parse_trust(s.trust);
    if (!t) return report_error("verify", t.error());
    trust = *t;
  }
  auto file = erasure::MappedFile::open(s.file);
  if (!file) return report_error("verify", file.error());

  auto report = sampling::verify_replica_proof((*file)->bytes(), trust);
  if (!report) {
    if (s.json) {
      std::cout
          << nlohmann::json{{"file", s.file}, {"valid", false}, {"ok", false}, {"error", report.error().message}}.dump()
          << "\n";
    }
    std::cerr << "cairn verify: invalid proof " << s.file << ": " << report.error().message << "\n";
    return kExitFailed;
  }
  const sampling::ProofReport& r = *report;
  const bool enough = r.replicas() >= s.min_replicas;
  const uint64_t last_blob = r.first_blob.value + r.blob_count - 1;
  if (s.json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const NodeId& n : r.nodes) nodes.push_back(n.hex());
    std::cout << nlohmann::json{{"file", s.file},
                                {"valid", true},
                                {"ok", enough},
                                {"replicas", r.replicas()},
                                {"min_replicas", s.min_replicas},
                                {"shard", r.shard.value},
                                {"epoch", r.epoch.value},
                                {"start_block", r.start_block.value},
                                {"first_blob", r.first_blob.value},
                                {"last_blob", last_blob},
                                {"blob_count", r.blob_count},
                                {"responses", r.responses},
                                {"chain_id", to_hex(r.chain_id)},
                                {"sequencer", r.sequencer.hex()},
                                {"trust", trust_kind(trust)},
                                {"nodes", nodes}}
                     .dump()
              << "\n";
  } else {
    // "valid:" only when the command succeeds: a script that greps for it
    // must not read a proof below --min-replicas as a pass.
    std::cout << (enough ? "valid: " : "too few replicas: ") << r.replicas() << " replica"
              << (r.replicas() == 1 ? "" : "s") << " of shard " << r.shard.value << " at epoch " << r.epoch.value
              << (enough ? "" : ", fewer than --min-replicas " + std::to_string(s.min_replicas)) << "\n"
              << "  blobs      " << r.first_blob.value << ".." << last_blob << " (" << r.blob_count
              << " challenged at block " << r.start_block.value << ")\n"
              << "  responses  " << r.responses << " in the proof, " << r.replicas() << " distinct nodes\n"
              << "  chain      " << to_hex(r.chain_id) << "\n"
              << "  sequencer  " << r.sequencer.hex() << " (" << trust_text(trust) << ")\n";
    for (size_t i = 0; i < r.nodes.size(); ++i) {
      std::cout << (i == 0 ? "  nodes      " : "             ") << r.nodes[i].hex() << "\n";
    }
  }
  if (trust.kind == sampling::TrustRoot::Kind::embedded) {
    std::cerr << "cairn verify: warning: no --trust given; the proof was checked against its own sequencer key\n";
  }
  if (!enough) {
    std::cerr << "cairn verify: " << r.replicas() << " replica" << (r.replicas() == 1 ? "" : "s")
              << ", fewer than --min-replicas " << s.min_replicas << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

void register_verify(CLI::App& app, int& exit_code) {
  auto s = std::make_shared<VerifySettings>();
  auto* cmd = app.add_subcommand(
      "verify", "Check a replica-count proof offline; print the replica count and the blobs it covers");
  cmd->add_option("FILE", s->file, "Replica-count proof file (docs/proof-format.md)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--trust", s->trust,
                  "Trust root: the chain's sequencer public key (hex), or its genesis record (file or hex)");
  cmd->add_option("--min-replicas", s->min_replicas, "Fail (exit 1) below this many distinct replicas")
      ->capture_default_str();
  cmd->add_flag("--json", s->json, "Print one JSON object");
  cmd->callback([s, &exit_code] { exit_code = run_verify(*s); });
}

}  // namespace cairn::tools
