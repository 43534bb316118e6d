#pragma once
// Node configuration sources, applied in this order onto NodeSettings'
// defaults (docs/config.md):
//   1. a TOML file (`cairn node --config FILE`),
//   2. CAIRN_* environment variables,
//   3. command-line flags (`--listen`, ..., and `--set KEY=VALUE` for any key).
// Every settings field has one dotted key, e.g. `upload.min_replicas`: the
// TOML table path (`[upload] min_replicas = 3`), the environment variable
// (CAIRN_UPLOAD_MIN_REPLICAS=3) and the --set key are all derived from it.
// Durations are integers in the unit their key ends with (_ms, _s).
//
// Errors are Errc::invalid_argument naming the source, the key and what
// was wrong (unknown key, wrong type, out of range); a bad log.level reads
// "invalid log level '...' in <source>: <why>".

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/result.hpp"
#include "node/settings.hpp"

namespace cairn::node {

// Applies a TOML document. Unknown keys are errors (they are usually typos).
Status apply_toml(NodeSettings& settings, std::string_view toml, std::string_view source = "config");
Status apply_toml_file(NodeSettings& settings, const std::filesystem::path& path);

// Applies every CAIRN_<KEY> variable that names a key (`getenv` is
// injectable for tests); log.level's variable is CAIRN_LOG. CAIRN_*
// variables that name no key are ignored: other tools share the prefix
// (CAIRN_TEST_SEED).
Status apply_env(NodeSettings& settings, const std::function<const char*(const char*)>& getenv = nullptr);

// Sets one key from text ("true", "3", "250", "0-3,7", "a:1,b:2").
Status set_key(NodeSettings& settings, std::string_view key, std::string_view value, std::string_view source = "--set");

// Every key, in documentation order, and its environment variable.
std::vector<std::string> config_keys();
std::string env_name(std::string_view key);

// The settings as a TOML document (every key; `cairn node --print-config`).
// Secrets (api.token) that are set read kRedacted; validate() refuses that
// value, so a printed file fed back fails loudly instead of using it.
inline constexpr std::string_view kRedacted = "<redacted>";
std::string to_toml(const NodeSettings& settings);

// Validates relations the types cannot express (e.g. empty data dir,
// min_replicas 0, a shard list that is empty). Errors name the key.
Status validate(const NodeSettings& settings);

}  // namespace cairn::node
