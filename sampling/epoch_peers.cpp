// The epoch driver's second half: peers' responses (screening, verification,
// fetching what gossip did not bring), recording epoch results, and proofs.

#include <algorithm>
#include <cmath>

#include "cairn/core/log.hpp"
#include "cairn/sampling/assemble.hpp"
#include "cairn/sampling/epoch_driver.hpp"
#include "epoch_state.hpp"

namespace cairn::sampling {

// ---- peers' responses ----

Admission EpochDriver::screen(const Response& r) const {
  const Impl& d = *impl_;
  if (r.node == d.self) return Admission::ignore;
  // An epoch far from the head is stale (or from a node ahead of this
  // node's chain view): not worth verifying, not the sender's fault.
  const uint64_t current = d.head_number.load() / d.epoch_blocks;
  if (r.epoch.value > current + 1 || r.epoch.value + d.settings.retain_epochs < current)
    return Admission::ignore;
  // Anchored outside its epoch's window it can never count (and a far
  // anchor block would park it in `waiting` for good, holding a slot of the
  // verification queue): the signer's fault.
  const uint64_t start = r.epoch.value * d.epoch_blocks;
  if (r.anchor_block.value <= start || r.anchor_block.value > start + d.deadline_blocks)
    return Admission::reject;
  std::lock_guard lock(d.mu);
  if (auto v = d.verdicts.find({r.shard.value, r.epoch.value});
      v != d.verdicts.end() && v->second.valid.count(r.node)) {
    return Admission::ignore;  // already hold a valid one of this node
  }
  return Admission::accept;
}

void EpochDriver::received(std::shared_ptr<const Response> response) {
  (void)impl_->enqueue(std::move(response), {});
}

size_t EpochDriver::verifying() const {
  std::lock_guard lock(impl_->mu);
  return impl_->verifying;
}

bool EpochDriver::Impl::enqueue(std::shared_ptr<const Response> response, Done done) {
  {
    std::lock_guard lock(mu);
    if (stopping || verifying >= settings.max_verify_queue) {
      if (!stopping && ports.observer != nullptr) ports.observer->dropped();
      if (done) done();
      return false;
    }
    ++verifying;
  }
  return submit_verify(std::move(response), std::move(done));
}

bool EpochDriver::Impl::submit_verify(std::shared_ptr<const Response> response, Done done) {
  auto me = shared_from_this();
  auto shared_done = std::make_shared<Done>(std::move(done));
  auto st =
      env.workers([me, response, shared_done] { me->verify(response, std::move(*shared_done)); },
                  [me, shared_done] {
                    me->verify_done();
                    if (*shared_done) (*shared_done)();
                  });
  if (!st) {
    if (ports.observer != nullptr) ports.observer->dropped();
    verify_done();
    if (*shared_done) (*shared_done)();
    return false;
  }
  return true;
}

void EpochDriver::Impl::verify_done() {
  std::lock_guard lock(mu);
  if (verifying > 0) --verifying;
}

void EpochDriver::Impl::verify(std::shared_ptr<const Response> response, Done done) {
  {
    std::lock_guard lock(mu);
    if (!stopping && response->anchor_block.value > head_number.load()) {
      waiting.emplace_back(std::move(response), std::move(done));  // still counted in `verifying`
      return;
    }
    if (stopping) response.reset();
  }
  if (response) verify_one(*response);
  verify_done();
  if (done) done();
}

void EpochDriver::Impl::verify_one(const Response& resp) {
  {
    std::lock_guard lock(mu);
    auto v = verdicts.find({resp.shard.value, resp.epoch.value});
    if (v != verdicts.end() && v->second.valid.count(resp.node))
      return;  // a copy already judged valid
  }
  const TimePoint t0 = env.clock.now();
  const std::string who = "node " + short_id(resp.node) + " " + epoch_name(resp.shard, resp.epoch);
  auto challenge = challenge_for(resp.shard, resp.epoch);
  if (!challenge) {
    if (challenge.error().code == Errc::not_found) {
      judge_invalid(resp, "answers an epoch in which the shard held no blob");
    } else {
      CAIRN_LOG(log::Level::warn, "challenge",
                who << ": cannot verify now: " << challenge.error().to_string());
    }
    return;
  }
  auto anchor = ports.chain.anchor(resp.node, resp.shard, resp.epoch);
  if (!anchor) {
    if (anchor.error().code == Errc::not_found) {
      judge_invalid(resp, "no response of this node is anchored on chain");
    } else {
      CAIRN_LOG(log::Level::warn, "challenge",
                who << ": reading its anchor: " << anchor.error().to_string());
    }
    return;
  }
  if (anchor->commitment != resp.commitment()) {
    judge_invalid(resp, "its commitment is not the anchored response hash");
  } else if (anchor->anchored_in != resp.anchor_block) {
    judge_invalid(resp, "names anchor block " + std::to_string(resp.anchor_block.value) +
                            "; the chain anchored it in " +
                            std::to_string(anchor->anchored_in.value));
  } else if (const uint64_t start = resp.epoch.value * epoch_blocks;
             anchor->anchored_in.value <= start ||
             anchor->anchored_in.value > start + deadline_blocks) {
    judge_invalid(resp, "anchored in block " + std::to_string(anchor->anchored_in.value) +
                            ", outside its window (" + std::to_string(start) + ", " +
                            std::to_string(start + deadline_blocks) + "]");
  } else if (auto randomness = ports.chain.randomness(resp.anchor_block); !randomness) {
    CAIRN_LOG(log::Level::warn, "challenge",
              who << ": reading the anchor randomness: " << randomness.error().to_string());
  } else if (auto st = verify_response(*challenge, resp, *randomness); !st) {
    judge_invalid(resp, st.error().message);
  } else if (auto put = ports.store.put(resp.shard, resp.epoch, resp.node, resp.encode()); !put) {
    CAIRN_LOG(log::Level::warn, "challenge",
              who << ": keeping its valid response: " << put.error().to_string());
  } else {
    if (ports.observer != nullptr) ports.observer->valid(resp.node);
    std::lock_guard lock(mu);
    verdicts[{resp.shard.value, resp.epoch.value}].valid.insert(resp.node);
  }
  if (ports.observer != nullptr) ports.observer->verified(seconds_since(t0));
}

void EpochDriver::Impl::judge_invalid(const Response& resp, const std::string& why) {
  if (ports.observer != nullptr) ports.observer->invalid(resp.node);
  CAIRN_LOG(log::Level::warn, "challenge",
            "invalid response of node " << short_id(resp.node) << " for "
                                        << epoch_name(resp.shard, resp.epoch) << ": " << why);
  {
    std::lock_guard lock(mu);
    verdicts[{resp.shard.value, resp.epoch.value}].invalid[resp.node] = why;
  }
  // The response is signed by its node: charge that node, whichever peer
  // relayed it (relays only checked the signature).
  ports.peers.charge(resp.node);
}

// ---- fetching responses gossip did not bring ----

namespace {

// Counts answers down; runs `done` after the last.
struct Batch {
  Batch(size_t n, std::function<void()> d) : remaining(n), done(std::move(d)) {}
  std::mutex mu;
  size_t remaining;
  std::function<void()> done;
  void one() {
    std::function<void()> fire;
    {
      std::lock_guard lock(mu);
      if (remaining == 0 || --remaining > 0) return;
      fire = std::move(done);
    }
    if (fire) fire();
  }
};

}  // namespace

void EpochDriver::Impl::fetch_missing(ShardId shard, Epoch epoch, Done done) {
  auto anchored = ports.chain.anchored(shard, epoch);
  std::vector<NodeId> wanted;
  if (anchored) {
    std::lock_guard lock(mu);
    const auto v = verdicts.find({shard.value, epoch.value});
    for (const auto& rec : *anchored) {
      if (rec.node == self) continue;
      if (v != verdicts.end() &&
          (v->second.valid.count(rec.node) || v->second.invalid.count(rec.node)))
        continue;
      wanted.push_back(rec.node);
    }
  }
  // Kept before a restart (verdicts are in memory only).
  std::erase_if(
      wanted, [&](const NodeId& node) { return ports.store.get(shard, epoch, node).has_value(); });
  if (wanted.empty()) {
    if (done) done();
    return;
  }
  auto batch = std::make_shared<Batch>(wanted.size(), std::move(done));
  auto me = shared_from_this();
  for (const NodeId& node : wanted) {
    ports.peers.fetch(node, shard, epoch, [me, shard, epoch, node, batch](Result<Response> answer) {
      if (!answer || answer->node != node || answer->shard != shard || answer->epoch != epoch) {
        batch->one();
        return;
      }
      if (me->ports.observer != nullptr) me->ports.observer->fetched();
      (void)me->enqueue(std::make_shared<const Response>(std::move(*answer)),
                        [batch] { batch->one(); });
    });
  }
}

// ---- epoch results ----

Result<EpochChallenge> EpochDriver::Impl::challenge_for(ShardId shard, Epoch epoch) {
  const Key key{shard.value, epoch.value};
  {
    std::lock_guard lock(mu);
    if (auto it = challenges.find(key); it != challenges.end()) return it->second;
    if (empty.count(key)) {
      return make_error(Errc::not_found, epoch_name(shard, epoch) +
                                             ": the shard held no blob at block " +
                                             std::to_string(epoch.value * epoch_blocks));
    }
  }
  auto header = ports.chain.header(BlockNumber{epoch.value * epoch_blocks});
  if (!header)
    return tl::unexpected(
        with_context(header.error(), "reading block e*E of " + epoch_name(shard, epoch)));
  auto challenge = make_epoch_challenge(params, shard, epoch, *header);
  std::lock_guard lock(mu);
  if (!challenge) {
    if (challenge.error().code == Errc::not_found) empty.insert(key);
    return challenge;
  }
  challenges.emplace(key, *challenge);
  return challenge;
}

void EpochDriver::Impl::evaluate(ShardId shard, Epoch epoch) {
  auto challenge = challenge_for(shard, epoch);
  if (!challenge) return;  // nothing to prove (or the chain is unreachable: the next epoch reports)
  const Key key{shard.value, epoch.value};
  const uint64_t start = epoch.value * epoch_blocks;
  EpochResult st;
  st.shard = shard;
  st.epoch = epoch;
  st.start_block = BlockNumber{start};
  st.blob_count = challenge->blob_count;

  std::set<NodeId> valid;
  if (auto kept = ports.store.list(shard, epoch); kept) {
    for (const auto& [node, bytes] : *kept) valid.insert(node);
  }
  std::set<NodeId> anchored;
  if (auto on_chain = ports.chain.anchored(shard, epoch); on_chain) {
    for (const auto& r : *on_chain) anchored.insert(r.node);
  }
  std::map<NodeId, std::string> invalid;
  // For the log line: ok (anchored and opened), failed (tried and did not
  // make it; the line gives the reason), none (challenges off).
  const char* own_result = "none";
  {
    std::lock_guard lock(mu);
    if (auto v = verdicts.find(key); v != verdicts.end()) invalid = v->second.invalid;
    if (!settings.enabled) {
      st.own = "disabled";
    } else if (auto it = owns.find(key); it == owns.end()) {
      st.own = "failed";
      st.own_detail = "the node was not running at block " + std::to_string(start);
    } else {
      const Own& own = *it->second;
      st.walk_seconds = own.walk_seconds;
      st.anchored_in = own.anchored_in;
      if (own.phase == Own::Phase::done) {
        st.own = "anchored";
        own_result = "ok";
      } else {
        st.own = "failed";
        own_result = "failed";
        st.own_detail =
            own.phase == Own::Phase::failed ? own.detail : "not finished when the epoch settled";
      }
    }
    // The transcripts of finished epochs are no longer needed.
    std::erase_if(owns, [&](const auto& kv) {
      return kv.first.first == shard.value && kv.first.second <= epoch.value;
    });
  }
  st.valid = static_cast<uint32_t>(valid.size());
  // Expected: the nodes the registry listed for the shard when the epoch began.
  std::map<NodeId, std::string> endpoints;
  for (const auto& m : ports.chain.members(shard)) {
    if (m.registered_in.value <= start) endpoints[m.node] = m.endpoint;
  }
  for (const auto& [node, why] : invalid) {
    if (valid.count(node)) continue;
    const auto ep = endpoints.find(node);
    st.invalid.push_back({node, ep == endpoints.end() ? std::string() : ep->second, why});
  }
  for (const auto& [node, endpoint] : endpoints) {
    if (valid.count(node) || invalid.count(node)) continue;
    std::string why = anchored.count(node)
                          ? "anchored a response, but no valid response body reached this node"
                          : "no response anchored by the deadline";
    if (node == self && !st.own_detail.empty()) why = st.own_detail;
    st.missing.push_back({node, endpoint, std::move(why)});
  }
  // The epoch's one info line; everything per response or step is debug.
  CAIRN_LOG(log::Level::info, "challenge",
            epoch_name(shard, epoch)
                << ": " << st.valid << " responses counted, " << st.invalid.size() << " invalid, "
                << st.missing.size() << " missing; own " << own_result
                << (std::string_view(own_result) == "failed" ? " (" + st.own_detail + ")" : "")
                << "; walk "
                << (st.walk_seconds > 0 ? std::to_string(std::llround(st.walk_seconds * 1000))
                                        : std::string("-"))
                << " ms of a " << deadline_blocks * params.block_time_ms << " ms deadline");
  if (ports.observer != nullptr) ports.observer->recorded(st);
  std::lock_guard lock(mu);
  auto& h = history[shard.value];
  h.push_back(std::move(st));
  while (h.size() > kEpochHistory) h.pop_front();
}

void EpochDriver::Impl::prune(ShardId shard, Epoch current) {
  const uint64_t retain = settings.retain_epochs;
  if (current.value <= retain) return;
  const uint64_t before = current.value - retain;
  if (auto st = ports.store.prune(shard, Epoch{before}); !st) {
    CAIRN_LOG(log::Level::warn, "challenge",
              "pruning the responses of shard " << shard.value << ": " << st.error().to_string());
  }
  std::lock_guard lock(mu);
  const auto old = [&](const Key& k) { return k.first == shard.value && k.second < before; };
  std::erase_if(verdicts, [&](const auto& kv) { return old(kv.first); });
  std::erase_if(challenges, [&](const auto& kv) { return old(kv.first); });
  std::erase_if(empty, old);
}

std::vector<EpochResult> EpochDriver::status() const {
  std::lock_guard lock(impl_->mu);
  std::vector<EpochResult> out;
  for (const auto& [shard, h] : impl_->history) {
    if (!h.empty()) out.push_back(h.back());
  }
  return out;
}

std::vector<EpochResult> EpochDriver::history() const {
  std::lock_guard lock(impl_->mu);
  std::vector<EpochResult> out;
  for (const auto& [shard, h] : impl_->history) out.insert(out.end(), h.begin(), h.end());
  return out;
}

// ---- proofs ----

void EpochDriver::proof(ShardId shard, Epoch epoch, std::function<void(Result<EpochProof>)> done) {
  auto me = impl_;
  auto shared = std::make_shared<std::function<void(Result<EpochProof>)>>(std::move(done));
  auto st =
      me->env.workers([me, shard, epoch, shared] { me->prove(shard, epoch, std::move(*shared)); },
                      [shared] { (*shared)(make_error(Errc::cancelled, "the node is stopping")); });
  if (!st) (*shared)(tl::unexpected(st.error()));
}

void EpochDriver::latest_proof(const BlobId& id, std::function<void(Result<EpochProof>)> done) {
  auto me = impl_;
  auto shared = std::make_shared<std::function<void(Result<EpochProof>)>>(std::move(done));
  auto job = [me, id, shared] {
    auto place = me->ports.chain.blob(id);
    if (!place) {
      (*shared)(tl::unexpected(place.error()));
      return;
    }
    const ShardId shard = me->params.shard_of(place->index);
    const uint64_t n = me->latest_head();
    const uint64_t settle = me->deadline_blocks + me->settings.settle_blocks;
    // The first epoch whose start block already lists the blob.
    const uint64_t first = (place->registered_in.value + me->epoch_blocks - 1) / me->epoch_blocks;
    const uint64_t first_settled = first * me->epoch_blocks + settle;
    if (n < first_settled) {
      (*shared)(make_error(Errc::conflict, "blob " + id.hex() + " was registered in block " +
                                               std::to_string(place->registered_in.value) +
                                               "; the first epoch covering it (" +
                                               std::to_string(first) + ") settles at block " +
                                               std::to_string(first_settled) +
                                               ", the head is block " + std::to_string(n)));
      return;
    }
    me->prove(shard, Epoch{(n - settle) / me->epoch_blocks}, std::move(*shared));
  };
  auto st = me->env.workers(
      std::move(job), [shared] { (*shared)(make_error(Errc::cancelled, "the node is stopping")); });
  if (!st) (*shared)(tl::unexpected(st.error()));
}

void EpochDriver::Impl::prove(ShardId shard, Epoch epoch,
                              std::function<void(Result<EpochProof>)> done) {
  const uint64_t n = latest_head();
  const uint64_t start = epoch.value * epoch_blocks;
  const uint64_t settled = start + deadline_blocks + settings.settle_blocks;
  if (n < settled) {
    done(make_error(Errc::conflict,
                    epoch_name(shard, epoch) + " has not finished: its responses settle at block " +
                        std::to_string(settled) + ", the head is block " + std::to_string(n)));
    return;
  }
  const uint64_t current = n / epoch_blocks;
  if (epoch.value + settings.retain_epochs < current) {
    done(make_error(Errc::not_found, epoch_name(shard, epoch) +
                                         ": its responses were pruned (this node keeps the last " +
                                         std::to_string(settings.retain_epochs) + " epochs)"));
    return;
  }
  if (auto challenge = challenge_for(shard, epoch); !challenge) {
    done(tl::unexpected(challenge.error()));
    return;
  }
  auto headers =
      ports.chain.headers(BlockNumber{start}, static_cast<uint32_t>(deadline_blocks + 1));
  if (!headers) {
    done(tl::unexpected(
        with_context(headers.error(), "reading the headers of " + epoch_name(shard, epoch))));
    return;
  }
  // Anchored responses whose body gossip did not bring: ask their nodes
  // (an unreachable node stays out of the count), then assemble on the
  // worker queue.
  auto me = shared_from_this();
  auto shared = std::make_shared<std::function<void(Result<EpochProof>)>>(std::move(done));
  auto hs = std::make_shared<std::vector<contracts::BlockHeader>>(std::move(*headers));
  fetch_missing(shard, epoch, [me, shard, epoch, shared, hs] {
    auto st = me->env.workers(
        [me, shard, epoch, shared, hs] { (*shared)(me->assemble(shard, epoch, std::move(*hs))); },
        [shared] { (*shared)(make_error(Errc::cancelled, "the node is stopping")); });
    if (!st) (*shared)(tl::unexpected(st.error()));
  });
}

Result<EpochProof> EpochDriver::Impl::assemble(ShardId shard, Epoch epoch,
                                               std::vector<contracts::BlockHeader> headers) {
  auto kept = ports.store.list(shard, epoch);
  if (!kept) return tl::unexpected(with_context(kept.error(), "reading the kept responses"));
  std::vector<AnchoredResponse> candidates;
  for (const auto& [node, bytes] : *kept) {
    auto response = Response::decode(bytes);
    if (!response) continue;
    auto anchor = ports.chain.anchor(node, shard, epoch);
    if (!anchor) continue;
    candidates.push_back({std::move(*response), std::move(anchor->path)});
  }
  if (candidates.empty()) {
    return make_error(Errc::not_found,
                      epoch_name(shard, epoch) + ": this node holds no valid anchored response");
  }
  auto assembled = assemble_replica_proof(ports.chain.info(), shard, epoch, std::move(headers),
                                          std::move(candidates));
  if (!assembled) return tl::unexpected(assembled.error());
  EpochProof file;
  file.shard = shard;
  file.epoch = epoch;
  file.replicas = static_cast<uint32_t>(assembled->proof.entries.size());
  file.bytes = assembled->proof.encode();
  return file;
}

}  // namespace cairn::sampling
