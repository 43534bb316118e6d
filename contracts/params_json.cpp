#include "cairn/contracts/params_json.hpp"

#include <limits>
#include <optional>
#include <string>
#include <type_traits>

namespace cairn::contracts {
namespace {

// f(name, field) for every field of NetworkParams, in declaration order (the
// order of the binary encoding, docs/chain.md): the one list both directions
// of the codec walk, so a field cannot be written and not read.
template <class Params, class F>
void for_each_field(Params& p, F&& f) {
  f("blob_size", p.blob_size);
  f("data_fragments", p.data_fragments);
  f("parity_fragments", p.parity_fragments);
  f("chunk_size", p.chunk_size);
  f("blobs_per_shard", p.blobs_per_shard);
  f("block_time_ms", p.block_time_ms);
  f("epoch_blocks", p.epoch_blocks);
  f("deadline_blocks", p.deadline_blocks);
  f("walk_steps", p.walk_steps);
  f("openings", p.openings);
  f("seal_cost", p.seal_cost);
  f("mask_checks", p.mask_checks);
}

Error bad(const std::string& what) {
  return Error{Errc::invalid_argument, "network parameters JSON: " + what};
}

}  // namespace

nlohmann::json params_to_json(const erasure::NetworkParams& p) {
  nlohmann::json j = nlohmann::json::object();
  for_each_field(p, [&](const char* name, const auto& value) { j[name] = value; });
  return j;
}

Result<erasure::NetworkParams> params_from_json(const nlohmann::json& j) noexcept {
  if (!j.is_object())
    return tl::unexpected(bad(std::string("expected an object, got ") + j.type_name()));
  erasure::NetworkParams p;
  std::optional<Error> error;
  for_each_field(p, [&](const char* name, auto& value) {
    if (error) return;
    using Field = std::remove_reference_t<decltype(value)>;
    const auto it = j.find(name);
    if (it == j.end()) {
      error = bad(std::string("field \"") + name + "\" is missing");
    } else if (!it->is_number_integer() ||
               (!it->is_number_unsigned() && it->template get<int64_t>() < 0)) {
      // Numbers print short and safely; anything else is named by its type.
      const std::string got = it->is_number() ? it->dump() : std::string(it->type_name());
      error =
          bad(std::string("field \"") + name + "\" is not an unsigned integer (got " + got + ")");
    } else if (it->template get<uint64_t>() > std::numeric_limits<Field>::max()) {
      error = bad(std::string("field \"") + name + "\" is " + it->dump() + ", above its maximum " +
                  std::to_string(std::numeric_limits<Field>::max()));
    } else {
      value = static_cast<Field>(it->template get<uint64_t>());
    }
  });
  if (error) return tl::unexpected(std::move(*error));
  if (auto s = p.validate(); !s) return tl::unexpected(s.error());
  return p;
}

}  // namespace cairn::contracts
