#pragma once
// The epoch driver's state (private to sampling/): shared by
// epoch_driver.cpp (the driver's steps, this node's own answer) and
// epoch_peers.cpp (peers' responses, epoch results, proofs). Every field
// below `mu` is guarded by it; jobs hold the Impl by shared_ptr, so one that
// runs after the driver is gone finds `stopping` set.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cairn/sampling/challenge.hpp"
#include "cairn/sampling/epoch_driver.hpp"

namespace cairn::sampling {

std::string short_id(const NodeId& id);
std::string epoch_name(ShardId shard, Epoch epoch);

struct EpochDriver::Impl : std::enable_shared_from_this<EpochDriver::Impl> {
  using Key = std::pair<uint32_t, uint64_t>;  // shard, epoch
  // Runs once a peer's response is judged, dropped or abandoned (may be empty).
  using Done = std::function<void()>;

  // This node's answer of one (shard, epoch).
  struct Own {
    enum class Phase { walking, submit, submitting, anchoring, opening, done, failed };
    ShardId shard;
    Epoch epoch;
    Phase phase = Phase::walking;
    std::shared_ptr<WalkTranscript> transcript;
    Hash32 commitment{};
    std::optional<Hash32> tx;
    uint64_t submitted_at = 0;  // head when the anchor was admitted
    BlockNumber anchored_in{};
    double walk_seconds = 0;
    std::string detail;
  };
  struct Verdicts {
    std::set<NodeId> valid;
    std::map<NodeId, std::string> invalid;
  };

  Impl(const erasure::NetworkParams& params, const SigningKey& identity,
       const ChallengeSettings& settings, EpochEnv env, EpochPorts ports);

  // ---- the driver and this node's answer (epoch_driver.cpp) ----
  void schedule();
  void drive();
  void step(const contracts::BlockHeader& head);
  // Queues one phase's job on `own`; a refusal or a cancel fails `own`.
  void run_phase(const std::shared_ptr<Own>& own, const char* what, std::function<void()> job);
  void walk(const std::shared_ptr<Own>& own);
  void submit_anchor(const std::shared_ptr<Own>& own);
  void check_anchor(const std::shared_ptr<Own>& own, uint64_t head);
  void open(const std::shared_ptr<Own>& own);
  // With `mu` held.
  void fail(Own& own, std::string why);
  double seconds_since(TimePoint t0) const;
  // The newest head known: the driver's or the chain view's.
  uint64_t latest_head() const;

  // ---- peers' responses, results, proofs (epoch_peers.cpp) ----
  // Counts and queues a verification; false (and `done` called) when full
  // or refused.
  bool enqueue(std::shared_ptr<const Response> response, Done done);
  // Queues a counted verification on `workers`; false (`done` called, the
  // count released) when the queue refuses it.
  bool submit_verify(std::shared_ptr<const Response> response, Done done);
  void verify(std::shared_ptr<const Response> response, Done done);
  void verify_one(const Response& response);
  void verify_done();
  void judge_invalid(const Response& response, const std::string& why);
  // Asks the nodes that anchored a response for (shard, epoch) this node
  // lacks for its body; `done` runs when every answer has been judged or
  // has failed. Blocking (chain and store reads).
  void fetch_missing(ShardId shard, Epoch epoch, Done done);
  void evaluate(ShardId shard, Epoch epoch);
  void prune(ShardId shard, Epoch current);
  Result<EpochChallenge> challenge_for(ShardId shard, Epoch epoch);
  // The checks and inputs of a proof (blocking), then its assembly once the
  // missing bodies were asked for.
  void prove(ShardId shard, Epoch epoch, std::function<void(Result<EpochProof>)> done);
  Result<EpochProof> assemble(ShardId shard, Epoch epoch,
                              std::vector<contracts::BlockHeader> headers);

  const erasure::NetworkParams params;
  const SigningKey identity;
  const NodeId self;
  const ChallengeSettings settings;
  const EpochEnv env;
  const EpochPorts ports;
  const uint64_t epoch_blocks;
  const uint64_t deadline_blocks;

  std::atomic<uint64_t> head_number{0};
  mutable std::mutex mu;
  bool stopping = false;
  std::optional<contracts::BlockHeader> head;
  bool driving = false;
  bool again = false;
  uint64_t first_head = UINT64_MAX;  // the first head the driver saw (driver steps only)
  std::map<Key, std::shared_ptr<Own>> owns;
  std::map<Key, Verdicts> verdicts;
  std::map<Key, EpochChallenge> challenges;
  std::set<Key> empty;  // (shard, epoch) with no blob at e*E
  // Responses whose anchor block this node's chain view has not reached.
  std::deque<std::pair<std::shared_ptr<const Response>, Done>> waiting;
  size_t verifying = 0;                    // queued, running or waiting verifications
  std::map<uint32_t, uint64_t> evaluated;  // shard -> last recorded epoch
  // shard -> its finished epochs, oldest first, at most kEpochHistory.
  std::map<uint32_t, std::deque<EpochResult>> history;
};

}  // namespace cairn::sampling
