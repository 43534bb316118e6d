#pragma once
// The one JSON form of erasure::NetworkParams, used wherever parameters
// travel as JSON: the node's /v1/status ("chain.params", docs/http-api.md),
// the dev chain's cairn_chainInfo ("params", docs/chain.md) and the tools
// and benches that read them back.
//
// An object with one member per NetworkParams field, named as the field
// (docs/design.md section 2), each a JSON unsigned integer:
//   {"blob_size": 131072, "data_fragments": 8, "parity_fragments": 4,
//    "chunk_size": 1024, "blobs_per_shard": 4096, "block_time_ms": 1000,
//    "epoch_blocks": 8, "deadline_blocks": 2, "walk_steps": 12288,
//    "openings": 32, "seal_cost": 2, "mask_checks": 8}

#include <nlohmann/json.hpp>

#include "cairn/core/result.hpp"
#include "cairn/erasure/params.hpp"

namespace cairn::contracts {

// Every field of `p`, under the names above.
nlohmann::json params_to_json(const erasure::NetworkParams& p);

// Parses untrusted JSON; never throws. Errc::invalid_argument naming the
// field when `j` is not an object, a field is missing, is not an unsigned
// integer (a negative, fractional, string or boolean value) or does not fit
// the field's type, or when the whole fails NetworkParams::validate().
// Members that are not fields are ignored (a newer peer may add some).
Result<erasure::NetworkParams> params_from_json(const nlohmann::json& j) noexcept;

}  // namespace cairn::contracts
