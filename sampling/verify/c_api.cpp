// The C interface of the proof verifier (include/cairn/verify.h): a thin,
// exception-free wrapper over verify_replica_proof().

#include "cairn/verify.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <string>

#include "cairn/sampling/proof.hpp"

namespace {

void set_error(cairn_replica_report* report, const std::string& message) {
  const size_t n = std::min(message.size(), sizeof report->error - 1);
  std::memcpy(report->error, message.data(), n);
  report->error[n] = '\0';
}

cairn_verify_status status_for(cairn::Errc code) {
  switch (code) {
    case cairn::Errc::invalid_argument:
      return CAIRN_VERIFY_MALFORMED;
    case cairn::Errc::unsupported:
      return CAIRN_VERIFY_UNSUPPORTED;
    default:
      return CAIRN_VERIFY_INVALID;
  }
}

cairn_verify_status verify(const uint8_t* proof, size_t len, const uint8_t* sequencer_key,
                           const uint8_t* genesis, size_t genesis_len,
                           cairn_replica_report* report) {
  using namespace cairn;
  if (proof == nullptr && len != 0) {
    set_error(report, "proof is NULL");
    return CAIRN_VERIFY_BAD_ARGUMENT;
  }
  sampling::TrustRoot trust;
  if (sequencer_key != nullptr && genesis != nullptr) {
    set_error(report, "give a sequencer key or a genesis record, not both");
    return CAIRN_VERIFY_BAD_ARGUMENT;
  }
  if (sequencer_key != nullptr) {
    NodeId key;
    std::memcpy(key.bytes.data(), sequencer_key, key.bytes.size());
    trust = sampling::TrustRoot::key(key);
  } else if (genesis != nullptr) {
    auto info = contracts::ChainInfo::decode(ByteSpan(genesis, genesis_len));
    if (!info) {
      set_error(report, "genesis record: " + info.error().message);
      return CAIRN_VERIFY_BAD_ARGUMENT;
    }
    trust = sampling::TrustRoot::chain(*info);
  }
  auto result = sampling::verify_replica_proof(ByteSpan(proof, len), trust);
  if (!result) {
    set_error(report, result.error().message);
    return status_for(result.error().code);
  }
  const sampling::ProofReport& r = *result;
  report->shard = r.shard.value;
  report->epoch = r.epoch.value;
  report->start_block = r.start_block.value;
  report->first_blob = r.first_blob.value;
  report->blob_count = r.blob_count;
  report->replicas = r.replicas();
  report->responses = static_cast<uint32_t>(r.responses);
  std::memcpy(report->chain_id, r.chain_id.data(), 32);
  std::memcpy(report->sequencer, r.sequencer.bytes.data(), 32);
  report->trust_pinned = r.trust_pinned ? 1 : 0;
  if (report->node_ids != nullptr) {
    const size_t n = std::min(report->node_ids_capacity, r.nodes.size());
    for (size_t i = 0; i < n; ++i)
      std::memcpy(report->node_ids + 32 * i, r.nodes[i].bytes.data(), 32);
  }
  report->error[0] = '\0';
  return CAIRN_VERIFY_OK;
}

}  // namespace

extern "C" cairn_verify_status cairn_verify_replica_proof(const uint8_t* proof, size_t len,
                                                          const uint8_t* sequencer_key,
                                                          const uint8_t* genesis,
                                                          size_t genesis_len,
                                                          cairn_replica_report* report) {
  if (report == nullptr) return CAIRN_VERIFY_BAD_ARGUMENT;
  try {
    return verify(proof, len, sequencer_key, genesis, genesis_len, report);
  } catch (const std::exception& e) {
    set_error(report, std::string("internal error: ") + e.what());
  } catch (...) {
    set_error(report, "internal error");
  }
  return CAIRN_VERIFY_INVALID;
}

extern "C" const char* cairn_verify_version(void) { return CAIRN_VERSION; }
