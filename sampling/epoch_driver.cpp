// The epoch driver's state and its first half: the driver's steps on the
// block clock and this node's own answer (walk, anchor, opening). Peers'
// responses, epoch results and proofs are in epoch_peers.cpp.

#include "cairn/sampling/epoch_driver.hpp"

#include <algorithm>

#include "cairn/core/log.hpp"
#include "epoch_state.hpp"

namespace cairn::sampling {

std::string short_id(const NodeId& id) { return id.hex().substr(0, 16); }

std::string epoch_name(ShardId shard, Epoch epoch) {
  return "shard " + std::to_string(shard.value) + " epoch " + std::to_string(epoch.value);
}

double EpochDriver::Impl::seconds_since(TimePoint t0) const {
  return std::chrono::duration<double>(env.clock.now() - t0).count();
}

uint64_t EpochDriver::Impl::latest_head() const {
  const auto h = ports.chain.head();
  return std::max(head_number.load(), h ? h->value : 0);
}

EpochDriver::EpochDriver(const erasure::NetworkParams& params, const SigningKey& identity,
                         const ChallengeSettings& settings, EpochEnv env, EpochPorts ports)
    : impl_(std::make_shared<Impl>(params, identity, settings, std::move(env), ports)) {}

EpochDriver::~EpochDriver() { stop(); }

EpochDriver::Impl::Impl(const erasure::NetworkParams& p, const SigningKey& key,
                        const ChallengeSettings& s, EpochEnv e, EpochPorts po)
    : params(p),
      identity(key),
      self(key.public_key()),
      settings(s),
      env(std::move(e)),
      ports(po),
      epoch_blocks(std::max<uint32_t>(1, p.epoch_blocks)),
      deadline_blocks(p.deadline_blocks) {}

void EpochDriver::stop() {
  std::deque<std::pair<std::shared_ptr<const Response>, Impl::Done>> waiting;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    waiting.swap(impl_->waiting);
  }
  for (auto& [response, done] : waiting) {
    impl_->verify_done();
    if (done) done();
  }
}

// ---- the driver ----

void EpochDriver::on_head(const contracts::BlockHeader& head) {
  Impl& d = *impl_;
  d.head_number.store(head.number.value);
  {
    std::lock_guard lock(d.mu);
    if (d.stopping) return;
    d.head = head;
    if (d.driving) {
      d.again = true;
      return;
    }
    d.driving = true;
    d.again = false;
  }
  d.schedule();
}

void EpochDriver::Impl::schedule() {
  auto me = shared_from_this();
  const auto released = [me] {
    std::lock_guard lock(me->mu);
    me->driving = false;
  };
  // Busy queue: the next head schedules again (nothing is lost: every step
  // works from the latest head).
  if (auto st = env.own([me] { me->drive(); }, released); !st) released();
}

void EpochDriver::Impl::drive() {
  for (;;) {
    contracts::BlockHeader h;
    {
      std::lock_guard lock(mu);
      if (stopping || !head) {
        driving = false;
        return;
      }
      h = *head;
      again = false;
    }
    step(h);
    std::lock_guard lock(mu);
    if (!again || stopping) {
      driving = false;
      return;
    }
  }
}

void EpochDriver::Impl::step(const contracts::BlockHeader& h) {
  const uint64_t n = h.number.value;
  if (first_head == UINT64_MAX) first_head = n;
  const uint64_t e = n / epoch_blocks;
  const uint64_t off = n % epoch_blocks;
  const std::vector<ShardId> shards = ports.chain.shards();

  // 1. A new epoch: walk every shard. An anchor needs a block
  //    e*E < b <= e*E + D, so starting later than e*E + D - 1 is pointless.
  if (settings.enabled && off < deadline_blocks) {
    for (ShardId s : shards) {
      std::shared_ptr<Own> own;
      {
        std::lock_guard lock(mu);
        auto& slot = owns[{s.value, e}];
        if (slot) continue;
        slot = std::make_shared<Own>();
        slot->shard = s;
        slot->epoch = Epoch{e};
        own = slot;
      }
      auto me = shared_from_this();
      run_phase(own, "the walk", [me, own] { me->walk(own); });
    }
  }

  // 2. Anchors in flight: receipts, resubmissions.
  std::vector<std::shared_ptr<Own>> in_flight;
  {
    std::lock_guard lock(mu);
    for (auto& [key, own] : owns) in_flight.push_back(own);
  }
  for (auto& own : in_flight) {
    Own::Phase phase;
    {
      std::lock_guard lock(mu);
      phase = own->phase;
    }
    const uint64_t window_end = own->epoch.value * epoch_blocks + deadline_blocks;
    if (phase == Own::Phase::submit) {
      if (n < window_end) {
        submit_anchor(own);
      } else {
        std::lock_guard lock(mu);
        fail(*own, "the anchor was not admitted before the deadline (block " +
                       std::to_string(window_end) + ")" +
                       (own->detail.empty() ? "" : ": " + own->detail));
      }
    } else if (phase == Own::Phase::anchoring) {
      check_anchor(own, n);
    }
  }

  // 3. Peers' responses that waited for this node's chain view, verified on
  //    the worker queue like any other (the own queue is kept for this
  //    node's deadline work); they stay counted in `verifying`.
  std::vector<std::pair<std::shared_ptr<const Response>, Done>> ready;
  {
    std::lock_guard lock(mu);
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (it->first->anchor_block.value <= n) {
        ready.push_back(std::move(*it));
        it = waiting.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [r, done] : ready) (void)submit_verify(std::move(r), std::move(done));

  // 3b. One block before an epoch settles, ask for the bodies of anchored
  //     responses that gossip did not bring.
  const uint64_t fetch_at = deadline_blocks + 1;
  if (n >= fetch_at && (n - fetch_at) % epoch_blocks == 0 && settings.settle_blocks > 1) {
    const Epoch ef{(n - fetch_at) / epoch_blocks};
    for (ShardId s : shards) fetch_missing(s, ef, {});
  }

  // 4. Record the epochs whose results have settled.
  const uint64_t settle = deadline_blocks + settings.settle_blocks;
  if (n >= settle) {
    const uint64_t done = (n - settle) / epoch_blocks;
    for (ShardId s : shards) {
      uint64_t from = done;
      {
        std::lock_guard lock(mu);
        if (auto it = evaluated.find(s.value); it != evaluated.end()) {
          if (it->second >= done) continue;
          from = std::max(it->second + 1, done > 0 ? done - 1 : 0);  // at most two behind
        }
        evaluated[s.value] = done;
      }
      for (uint64_t ev = from; ev <= done; ++ev) {
        // An epoch that began before this driver followed the chain: it saw
        // none of its gossip and has no result of its own to report.
        if (ev * epoch_blocks >= first_head) evaluate(s, Epoch{ev});
      }
      prune(s, Epoch{e});
    }
  }
}

// ---- this node's response ----

void EpochDriver::Impl::run_phase(const std::shared_ptr<Own>& own, const char* what,
                                  std::function<void()> job) {
  auto me = shared_from_this();
  auto st = env.own(std::move(job), [me, own, what] {
    std::lock_guard lock(me->mu);
    me->fail(*own, std::string("the node stopped before ") + what);
  });
  if (!st) {
    std::lock_guard lock(mu);
    fail(*own, std::string("the challenge queue refused ") + what + ": " + st.error().to_string());
  }
}

void EpochDriver::Impl::walk(const std::shared_ptr<Own>& own) {
  {
    std::lock_guard lock(mu);
    if (stopping) return;
  }
  auto challenge = challenge_for(own->shard, own->epoch);
  if (!challenge) {
    std::lock_guard lock(mu);
    if (challenge.error().code == Errc::not_found) {
      own->phase = Own::Phase::done;
    } else {
      fail(*own, "reading the challenge: " + challenge.error().to_string());
    }
    return;
  }
  const TimePoint t0 = env.clock.now();
  auto transcript = run_walk(*challenge, self, ports.replica);
  const double secs = seconds_since(t0);
  if (!transcript) {
    std::lock_guard lock(mu);
    fail(*own, "walking the replica of " + std::to_string(challenge->blob_count) +
                   " blob(s): " + transcript.error().to_string());
    return;
  }
  auto shared = std::make_shared<WalkTranscript>(std::move(*transcript));
  const Hash32 commitment = shared->commitment();
  if (ports.observer != nullptr) ports.observer->walked(own->shard, own->epoch, secs);
  CAIRN_LOG(log::Level::debug, "challenge",
            epoch_name(own->shard, own->epoch)
                << ": walked " << challenge->blob_count << " blob(s) in " << secs * 1000
                << " ms; anchoring " << to_hex(commitment).substr(0, 16));
  {
    std::lock_guard lock(mu);
    own->transcript = std::move(shared);
    own->commitment = commitment;
    own->walk_seconds = secs;
    own->phase = Own::Phase::submit;
  }
  submit_anchor(own);
}

void EpochDriver::Impl::submit_anchor(const std::shared_ptr<Own>& own) {
  Hash32 commitment;
  {
    std::lock_guard lock(mu);
    if (stopping || own->phase != Own::Phase::submit) return;
    own->phase = Own::Phase::submitting;
    commitment = own->commitment;
  }
  auto me = shared_from_this();
  ports.chain.submit_anchor(own->shard, own->epoch, commitment, [me, own](Result<Hash32> tx) {
    std::lock_guard lock(me->mu);
    if (own->phase != Own::Phase::submitting) return;
    if (tx) {
      own->tx = *tx;
      own->submitted_at = me->head_number.load();
      own->phase = Own::Phase::anchoring;
    } else {
      // Retried by the driver at the next block while the window is open.
      own->detail = tx.error().to_string();
      own->phase = Own::Phase::submit;
      CAIRN_LOG(log::Level::warn, "challenge",
                epoch_name(own->shard, own->epoch)
                    << ": SubmitResponse not admitted: " << own->detail);
    }
  });
}

void EpochDriver::Impl::check_anchor(const std::shared_ptr<Own>& own, uint64_t n) {
  Hash32 tx;
  uint64_t submitted_at = 0;
  {
    std::lock_guard lock(mu);
    if (!own->tx) return;
    tx = *own->tx;
    submitted_at = own->submitted_at;
  }
  const uint64_t window_end = own->epoch.value * epoch_blocks + deadline_blocks;
  auto receipt = ports.chain.receipt(tx);
  if (!receipt) {
    CAIRN_LOG(log::Level::warn, "challenge",
              epoch_name(own->shard, own->epoch)
                  << ": reading the anchor's receipt: " << receipt.error().to_string());
    return;
  }
  if (!*receipt) {
    if (n < window_end) {
      // Lost or stuck (a mempool dropped it): a fresh copy with a new nonce.
      // Should both land, the second is refused as a duplicate.
      if (n >= submitted_at + settings.resubmit_blocks) {
        {
          std::lock_guard lock(mu);
          if (own->phase == Own::Phase::anchoring) own->phase = Own::Phase::submit;
        }
        submit_anchor(own);
      }
    } else if (n > window_end + settings.settle_blocks) {
      std::lock_guard lock(mu);
      fail(*own, "SubmitResponse " + to_hex(tx).substr(0, 16) + " got no receipt by block " +
                     std::to_string(n));
    }
    return;
  }
  const AnchorReceipt& r = **receipt;
  std::optional<BlockNumber> anchored_in;
  if (r.ok) {
    anchored_in = r.block;
  } else if (r.duplicate) {
    // An earlier copy landed: it is the anchor if it holds this commitment.
    auto anchor = ports.chain.anchor(self, own->shard, own->epoch);
    if (anchor && anchor->commitment == own->commitment) anchored_in = anchor->anchored_in;
  }
  if (!anchored_in) {
    std::lock_guard lock(mu);
    fail(*own,
         "SubmitResponse rejected in block " + std::to_string(r.block.value) + ": " + r.detail);
    return;
  }
  if (ports.observer != nullptr) ports.observer->anchored(own->shard, own->epoch, *anchored_in);
  {
    std::lock_guard lock(mu);
    own->anchored_in = *anchored_in;
    own->phase = Own::Phase::opening;
  }
  auto me = shared_from_this();
  run_phase(own, "the opening", [me, own] { me->open(own); });
}

void EpochDriver::Impl::open(const std::shared_ptr<Own>& own) {
  std::shared_ptr<WalkTranscript> transcript;
  {
    std::lock_guard lock(mu);
    if (stopping) return;
    transcript = own->transcript;
  }
  auto randomness = ports.chain.randomness(own->anchored_in);
  if (!randomness) {
    std::lock_guard lock(mu);
    fail(*own, "reading the anchor block's randomness: " + randomness.error().to_string());
    return;
  }
  auto response =
      open_response(*transcript, own->anchored_in, *randomness, ports.replica, identity);
  if (!response) {
    std::lock_guard lock(mu);
    fail(*own, "opening the response: " + response.error().to_string());
    return;
  }
  if (auto st = ports.store.put(own->shard, own->epoch, self, response->encode()); !st) {
    std::lock_guard lock(mu);
    fail(*own, "keeping the response: " + st.error().to_string());
    return;
  }
  {
    std::lock_guard lock(mu);
    verdicts[{own->shard.value, own->epoch.value}].valid.insert(self);
    own->phase = Own::Phase::done;
    own->transcript.reset();
  }
  CAIRN_LOG(log::Level::debug, "challenge",
            epoch_name(own->shard, own->epoch)
                << ": response anchored in block " << own->anchored_in.value
                << ", opened and published");
  ports.peers.publish(*response);
}

void EpochDriver::Impl::fail(Own& own, std::string why) {
  if (own.phase == Own::Phase::failed || own.phase == Own::Phase::done) return;
  own.phase = Own::Phase::failed;
  own.detail = std::move(why);
  own.transcript.reset();
  if (ports.observer != nullptr) ports.observer->own_failed(own.shard, own.epoch);
  CAIRN_LOG(log::Level::warn, "challenge",
            epoch_name(own.shard, own.epoch) << ": no response: " << own.detail);
}

}  // namespace cairn::sampling
