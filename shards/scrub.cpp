#include "cairn/shards/scrub.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "cairn/core/log.hpp"
#include "cairn/erasure/commitment.hpp"
#include "records.hpp"
#include "run_logged.hpp"

namespace cairn::shards {
namespace {

constexpr const char* kScrubLog = "scrub";

// Blobs whose repair waits on peers at once; more are left for the next pass
// (each holds one record and a fetch).
constexpr size_t kMaxRemoteRepairs = 8;
// scrub_blob requests that may wait; more are refused with busy.
constexpr size_t kMaxUrgent = 1024;

// A blob's whole replica read back and unsealed: good[f] says whether
// fragment f loaded and matches its root.
struct Replica {
  Bytes bytes;  // n * fragment_size; unusable slices where !good
  std::vector<bool> good;
  uint32_t good_count = 0;
  uint64_t bytes_read = 0;
  std::vector<FragmentIndex> unreadable;  // reads that failed with an I/O error
};

Status check_transform(const BlobRecord& record, const ReplicaTransform* transform) {
  if (record.encoding != FragmentEncoding::plain &&
      (transform == nullptr || transform->encoding() != record.encoding)) {
    return make_error(
        Errc::invalid_argument,
        blob_context(record.index) + ": stored sealed; a matching transform is needed");
  }
  if (erasure::commitment_from_roots(record.fragment_roots) != record.id) {
    return make_error(
        Errc::corruption,
        blob_context(record.index) + ": fragment roots do not commit to id " + record.id.hex());
  }
  return {};
}

// Loads every fragment of `record`, unseals the loaded ones together (one
// mask computation) and checks each against its root.
Result<Replica> load_replica(const Store& store, const BlobRecord& record,
                             const ReplicaTransform* transform) {
  CAIRN_TRY_STATUS(check_transform(record, transform));
  const uint32_t n = record.total_fragments();
  const size_t fs = record.fragment_size;
  const uint32_t chunk = store.params().chunk_size;
  Replica r;
  r.bytes.assign(size_t{n} * fs, 0);
  r.good.assign(n, false);
  std::vector<StoredFragment> loaded;
  loaded.reserve(n);
  for (uint32_t f = 0; f < n; ++f) {
    auto bytes = store.get_fragment(record.index, FragmentIndex{static_cast<uint8_t>(f)});
    if (!bytes) {
      const Errc code = bytes.error().code;
      if (code == Errc::io_error) {
        // The disk could not read it (EIO): judged bad like a corrupt value,
        // so repair rewrites it (to a new place in a new file) when it can.
        CAIRN_LOG(log::Level::error, kScrubLog,
                  "scrubbing " << blob_context(record.index) << ": fragment " << f
                               << " is unreadable: " << bytes.error().to_string());
        r.unreadable.push_back(FragmentIndex{static_cast<uint8_t>(f)});
        continue;
      }
      if (code != Errc::corruption && code != Errc::not_found) {
        return tl::unexpected(
            with_context(bytes.error(), "scrubbing " + blob_context(record.index)));
      }
      CAIRN_LOG(log::Level::debug, kScrubLog, bytes.error().to_string());
      continue;
    }
    r.bytes_read += bytes->size();
    if (bytes->size() != fs) continue;
    std::copy(bytes->begin(), bytes->end(), r.bytes.begin() + static_cast<std::ptrdiff_t>(f * fs));
    loaded.push_back(StoredFragment{FragmentIndex{static_cast<uint8_t>(f)},
                                    MutableByteSpan(r.bytes).subspan(f * fs, fs)});
  }
  if (record.encoding != FragmentEncoding::plain && !loaded.empty()) {
    transform->from_stored(record.id, record.index, loaded);
  }
  for (const StoredFragment& s : loaded) {
    if (erasure::fragment_root(s.bytes, chunk) == record.fragment_roots[s.index.value]) {
      r.good[s.index.value] = true;
      ++r.good_count;
    }
  }
  return r;
}

BlobHealth health_of(const BlobRecord& record, const Replica& r) {
  BlobHealth h;
  h.record = record;
  for (uint32_t f = 0; f < r.good.size(); ++f) {
    if (!r.good[f]) h.bad.push_back(FragmentIndex{static_cast<uint8_t>(f)});
  }
  h.good = r.good_count;
  h.bytes_checked = r.bytes_read;
  h.unreadable = r.unreadable;
  return h;
}

struct RepairDetail {
  uint32_t written = 0;
  uint32_t extra_used = 0;      // fragments of `extra` that were good and needed
  uint32_t extra_rejected = 0;  // fragments of `extra` failing their root
};

Result<RepairDetail> repair(Store& store, const erasure::Codec& codec, const BlobHealth& health,
                            const ReplicaTransform* transform, const FragmentReply* extra) {
  const BlobIndex index = health.record.index;
  auto record = store.get_blob_at(index);
  if (!record) return tl::unexpected(record.error());
  if (record->id != health.record.id) {
    return make_error(Errc::conflict, "repairing " + blob_context(index) + ": it now holds blob " +
                                          record->id.hex() + ", not " + health.record.id.hex());
  }
  auto replica = load_replica(store, *record, transform);
  if (!replica) return tl::unexpected(replica.error());
  Replica& r = *replica;
  const uint32_t n = record->total_fragments();
  const uint32_t k = record->data_fragments;
  const size_t fs = record->fragment_size;
  std::vector<uint32_t> bad;
  for (uint32_t f = 0; f < n; ++f) {
    if (!r.good[f]) bad.push_back(f);
  }
  RepairDetail detail;
  if (bad.empty()) return detail;

  // Fragments from a peer fill bad slots directly once they match their roots.
  std::vector<bool> from_extra(n, false);
  if (extra != nullptr && extra->data.size() == extra->fragments.size() * fs) {
    for (size_t i = 0; i < extra->fragments.size(); ++i) {
      const uint32_t f = extra->fragments[i].value;
      if (f >= n || r.good[f]) continue;
      const ByteSpan slice = ByteSpan(extra->data).subspan(i * fs, fs);
      if (erasure::fragment_root(slice, store.params().chunk_size) != record->fragment_roots[f]) {
        ++detail.extra_rejected;
        continue;
      }
      std::copy(slice.begin(), slice.end(), r.bytes.begin() + static_cast<std::ptrdiff_t>(f * fs));
      r.good[f] = true;
      from_extra[f] = true;
      ++r.good_count;
      ++detail.extra_used;
    }
  }
  if (r.good_count < k) {
    return make_error(Errc::too_many_losses,
                      "repairing " + blob_context(index) + " (blob " + record->id.hex() +
                          "): " + std::to_string(r.good_count) + " good fragments, " +
                          std::to_string(k) + " needed");
  }
  std::vector<uint32_t> wanted;
  for (uint32_t f : bad) {
    if (!r.good[f]) wanted.push_back(f);
  }
  if (!wanted.empty()) {
    std::vector<erasure::FragmentRef> refs;
    for (uint32_t f = 0; f < n && refs.size() < k; ++f) {
      if (r.good[f]) refs.push_back(erasure::FragmentRef{f, ByteSpan(r.bytes).subspan(f * fs, fs)});
    }
    auto rebuilt = codec.reconstruct(refs, wanted);
    if (!rebuilt)
      return tl::unexpected(with_context(rebuilt.error(), "repairing " + blob_context(index)));
    for (size_t i = 0; i < wanted.size(); ++i) {
      const ByteSpan slice = ByteSpan(*rebuilt).subspan(i * fs, fs);
      if (erasure::fragment_root(slice, store.params().chunk_size) !=
          record->fragment_roots[wanted[i]]) {
        // The good fragments rebuild something else: they cannot all be good.
        return make_error(Errc::internal, "repairing " + blob_context(index) +
                                              ": rebuilt fragment " + std::to_string(wanted[i]) +
                                              " does not match its root");
      }
      std::copy(slice.begin(), slice.end(),
                r.bytes.begin() + static_cast<std::ptrdiff_t>(wanted[i] * fs));
    }
  }
  // Every slot now holds the committed fragment: seal the whole replica
  // (the mask is per blob) and write back the slots that were bad.
  if (record->encoding != FragmentEncoding::plain) transform->to_stored(record->id, index, r.bytes);
  for (uint32_t f : bad) {
    CAIRN_TRY_STATUS(store.put_fragment(index, FragmentIndex{static_cast<uint8_t>(f)},
                                        ByteSpan(r.bytes).subspan(f * fs, fs)));
    ++detail.written;
  }
  return detail;
}

}  // namespace

Result<BlobHealth> check_blob(const Store& store, BlobIndex index,
                              const ReplicaTransform* transform) {
  auto record = store.get_blob_at(index);
  if (!record) return tl::unexpected(record.error());
  auto replica = load_replica(store, *record, transform);
  if (!replica) return tl::unexpected(replica.error());
  return health_of(*record, *replica);
}

Result<uint32_t> repair_blob(Store& store, const erasure::Codec& codec, const BlobHealth& health,
                             const ReplicaTransform* transform, const FragmentReply* extra) {
  auto d = repair(store, codec, health, transform, extra);
  if (!d) return tl::unexpected(d.error());
  return d->written;
}

// ---- Scrubber ----

struct Scrubber::Impl : std::enable_shared_from_this<Impl> {
  Impl(Store& s, WorkerPool& p, std::shared_ptr<const erasure::Codec> c,
       std::shared_ptr<const ReplicaTransform> t, FragmentGather* r, const ScrubSettings& st,
       const cairn::Clock& cl)
      : store(s),
        pool(p),
        codec(std::move(c)),
        transform(std::move(t)),
        remote(r),
        settings(st),
        clock(cl) {
    last_refill = clock.now();
    const erasure::NetworkParams& params = store.params();
    blob_bytes = uint64_t{params.total_fragments()} * params.fragment_size();
  }

  // A blob found short of good fragments, waiting on peers.
  struct RemoteRepair {
    BlobHealth health;
    std::vector<NodeId> peers;
    GatherHandle handle = 0;
  };

  // What one job found, applied under the lock afterwards.
  struct JobResult {
    std::optional<BlobIndex> next;  // nullopt: the pass is complete
    uint64_t blobs = 0;
    uint64_t fragments = 0;
    uint64_t bytes = 0;
    uint64_t bad = 0;
    uint64_t unreadable = 0;
    uint64_t repaired = 0;
    uint64_t unrepairable = 0;
    uint64_t records_corrupt = 0;
    std::vector<RemoteRepair> needs_peers;
  };

  Store& store;
  WorkerPool& pool;
  std::shared_ptr<const erasure::Codec> codec;
  std::shared_ptr<const ReplicaTransform> transform;
  FragmentGather* remote;
  ScrubSettings settings;
  const cairn::Clock& clock;
  uint64_t blob_bytes = 0;

  mutable std::mutex mu;
  std::condition_variable idle;
  bool stopped = false;
  std::atomic<bool> stopping{false};
  uint64_t outstanding = 0;  // jobs and fetches whose completion has not run
  bool job_running = false;
  double budget = 0;
  TimePoint last_refill{};
  TimePoint pause_until{};
  BlobIndex position{0};
  ScrubStats stats;
  std::map<uint64_t, RemoteRepair> repairs;   // by blob index
  std::function<void(BlobIndex)> unreadable;  // set before the first tick; read without the lock

  // ---- jobs ----

  // Runs `body` on the pool; false (and nothing runs) when the pool refuses.
  bool submit_locked(std::function<void()> body) {
    auto self = shared_from_this();
    auto s = pool.try_submit(
        [self, body = std::move(body)] {
          run_logged(kScrubLog, body);
          self->finished();
        },
        [self] { self->finished(); });
    if (!s) return false;
    ++outstanding;
    return true;
  }

  void finished() {
    std::lock_guard lock(mu);
    --outstanding;
    idle.notify_all();
  }

  // Checks up to `max_blobs` blobs from `from` on; repairs what local parity
  // can. Runs on a worker.
  JobResult scrub_range(BlobIndex from, size_t max_blobs) {
    JobResult out;
    auto page = store.scan_blobs(from, max_blobs);
    if (!page) {
      CAIRN_LOG(log::Level::warn, kScrubLog,
                "scanning from index " << from.value << ": " << page.error().to_string());
      out.next = from;
      return out;
    }
    for (const auto& [index, error] : page->corrupt) {
      ++out.records_corrupt;
      CAIRN_LOG(log::Level::error, kScrubLog,
                error.to_string() << " (the blob must be fetched again)");
      if (unreadable) unreadable(index);
    }
    for (const BlobRecord& record : page->records) {
      if (stopping.load()) break;
      scrub_record(record, out);
    }
    out.next = page->next;
    return out;
  }

  void scrub_record(const BlobRecord& record, JobResult& out) {
    auto replica = load_replica(store, record, transform.get());
    if (!replica) {
      CAIRN_LOG(log::Level::error, kScrubLog, replica.error().to_string());
      if (replica.error().code == Errc::corruption) {
        // The roots do not commit to the id: the record is damaged.
        ++out.records_corrupt;
        if (unreadable) unreadable(record.index);
      }
      return;
    }
    ++out.blobs;
    out.fragments += record.total_fragments();
    out.bytes += replica->bytes_read;
    BlobHealth health = health_of(record, *replica);
    if (health.bad.empty()) return;
    out.bad += health.bad.size();
    out.unreadable += health.unreadable.size();
    CAIRN_LOG(log::Level::warn, kScrubLog,
              blob_context(record.index)
                  << ": " << health.bad.size() << " bad fragment(s), " << health.good << " good");
    if (health.good >= record.data_fragments) {
      auto repaired = repair(store, *codec, health, transform.get(), nullptr);
      if (repaired) {
        out.repaired += repaired->written;
        CAIRN_LOG(log::Level::info, kScrubLog,
                  blob_context(record.index)
                      << ": rebuilt " << repaired->written << " fragment(s) from local parity");
        return;
      }
      CAIRN_LOG(log::Level::warn, kScrubLog, repaired.error().to_string());
    }
    if (remote == nullptr) {
      out.unrepairable += health.bad.size();
      return;
    }
    RemoteRepair rr;
    rr.peers = remote->peers(store.params().shard_of(record.index));
    rr.health = std::move(health);
    out.needs_peers.push_back(std::move(rr));
  }

  void apply_locked(const JobResult& r) {
    stats.blobs_scrubbed += r.blobs;
    stats.fragments_checked += r.fragments;
    stats.bytes_scrubbed += r.bytes;
    stats.fragments_bad += r.bad;
    stats.fragments_unreadable += r.unreadable;
    stats.fragments_repaired_local += r.repaired;
    stats.fragments_unrepairable += r.unrepairable;
    stats.records_corrupt += r.records_corrupt;
  }

  // ---- the periodic walk ----

  void tick() {
    std::unique_lock lock(mu);
    if (stopped || !settings.enabled) return;
    const TimePoint now = clock.now();
    const double rate = static_cast<double>(settings.bytes_per_second);
    const double cap = std::max(rate, static_cast<double>(blob_bytes));
    budget =
        std::min(cap, budget + rate * std::chrono::duration<double>(now - last_refill).count());
    last_refill = now;
    if (job_running || now < pause_until || budget < static_cast<double>(blob_bytes)) return;
    if (pool.queued() > settings.max_queued_jobs) return;
    const uint64_t job_bytes = std::max<uint64_t>(
        blob_bytes, std::min<uint64_t>(static_cast<uint64_t>(budget), settings.max_job_bytes));
    const size_t blobs = static_cast<size_t>(std::max<uint64_t>(1, job_bytes / blob_bytes));
    const BlobIndex from = position;
    auto self = shared_from_this();
    job_running = submit_locked([self, from, blobs] {
      if (self->stopping.load()) {
        std::lock_guard l(self->mu);
        self->job_running = false;
        return;
      }
      JobResult r = self->scrub_range(from, blobs);
      std::unique_lock l(self->mu);
      self->job_running = false;
      self->apply_locked(r);
      self->budget -= static_cast<double>(r.bytes);
      if (r.next) {
        self->position = *r.next;
      } else {
        self->position = BlobIndex{0};
        ++self->stats.passes;
        self->stats.last_pass_unix_ms =
            static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
        self->pause_until = self->clock.now() + std::chrono::seconds(self->settings.pass_pause_s);
        CAIRN_LOG(log::Level::info, kScrubLog,
                  "pass " << self->stats.passes << " complete: " << self->stats.blobs_scrubbed
                          << " blobs checked so far, " << self->stats.fragments_bad
                          << " bad fragments found");
      }
      self->stats.position = self->position;
      self->queue_remote_locked(l, r);
    });
  }

  Status scrub_blob(BlobIndex index) {
    std::unique_lock lock(mu);
    if (stopped) return make_error(Errc::cancelled, "scrubber stopped");
    auto self = shared_from_this();
    const bool queued = submit_locked([self, index] {
      if (self->stopping.load()) return;
      JobResult r;
      auto record = self->store.get_blob_at(index);
      if (record) {
        self->scrub_record(*record, r);
      } else if (record.error().code == Errc::corruption) {
        ++r.records_corrupt;
        if (self->unreadable) self->unreadable(index);
      }
      std::unique_lock l(self->mu);
      self->apply_locked(r);
      self->queue_remote_locked(l, r);
    });
    if (!queued)
      return make_error(Errc::busy, "scrubbing " + blob_context(index) + ": worker pool is full");
    return {};
  }

  // ---- repair from peers ----

  void queue_remote_locked(std::unique_lock<std::mutex>& lock, JobResult& r) {
    std::vector<uint64_t> started;
    for (RemoteRepair& rr : r.needs_peers) {
      const uint64_t index = rr.health.record.index.value;
      if (stopped || repairs.size() >= kMaxRemoteRepairs) {
        if (!stopped) stats.fragments_unrepairable += rr.health.bad.size();
        continue;
      }
      if (repairs.count(index) != 0) continue;
      repairs.emplace(index, std::move(rr));
      started.push_back(index);
    }
    for (uint64_t index : started) ask_peers(lock, index);
  }

  // Gathers the bad fragments of blob `index` from its peers (enough of
  // them, with the good ones here, to rebuild the rest).
  void ask_peers(std::unique_lock<std::mutex>& lock, uint64_t index) {
    auto it = repairs.find(index);
    if (it == repairs.end()) return;
    RemoteRepair& rr = it->second;
    GatherRequest req;
    req.id = rr.health.record.id;
    req.index = rr.health.record.index;
    req.wanted = rr.health.bad;
    const uint32_t k = rr.health.record.data_fragments;
    req.at_least = k > rr.health.good ? k - rr.health.good : 1;
    req.peers = rr.peers;
    ++outstanding;
    lock.unlock();
    auto self = shared_from_this();
    const GatherHandle h = remote->gather(std::move(req), [self, index](Result<Gathered> got) {
      self->on_gathered(index, std::move(got));
    });
    lock.lock();
    auto again = repairs.find(index);
    if (again != repairs.end()) again->second.handle = h;
  }

  void give_up_locked(uint64_t index, const std::string& why) {
    auto it = repairs.find(index);
    if (it == repairs.end()) return;
    stats.fragments_unrepairable += it->second.health.bad.size();
    CAIRN_LOG(log::Level::error, kScrubLog,
              blob_context(BlobIndex{index})
                  << ": no peer could supply the fragments to rebuild "
                  << it->second.health.bad.size() << " bad fragment(s): " << why);
    repairs.erase(it);
    idle.notify_all();
  }

  void on_gathered(uint64_t index, Result<Gathered> got) {
    std::unique_lock lock(mu);
    --outstanding;
    idle.notify_all();
    auto it = repairs.find(index);
    if (it == repairs.end()) return;
    it->second.handle = 0;
    if (stopped) return;
    if (!got) {
      give_up_locked(index, got.error().to_string());
      return;
    }
    auto self = shared_from_this();
    auto shared = std::make_shared<Gathered>(std::move(*got));
    const BlobHealth health = it->second.health;
    const bool queued = submit_locked([self, index, shared, health] {
      auto d = repair(self->store, *self->codec, health, self->transform.get(), &shared->reply);
      std::unique_lock l(self->mu);
      if (d) {
        self->stats.fragments_repaired_remote += d->written;
        CAIRN_LOG(log::Level::info, kScrubLog,
                  blob_context(BlobIndex{index})
                      << ": rebuilt " << d->written << " fragment(s) with " << d->extra_used
                      << " from peers");
        self->repairs.erase(index);
        self->idle.notify_all();
        return;
      }
      // The gathered fragments matched roots committing to the blob id, so
      // a failure here is local (the store failed, the blob changed, or more
      // fragments went bad meanwhile): retry on the next pass.
      CAIRN_LOG(log::Level::warn, kScrubLog, d.error().to_string());
      self->stats.fragments_unrepairable += health.bad.size();
      self->repairs.erase(index);
      self->idle.notify_all();
    });
    if (!queued) {
      stats.fragments_unrepairable += health.bad.size();
      repairs.erase(it);
    }
  }

  void stop() {
    std::unique_lock lock(mu);
    std::vector<GatherHandle> cancels;
    if (!stopped) {
      stopped = true;
      stopping.store(true);
      for (auto& [index, rr] : repairs) {
        if (rr.handle != 0) cancels.push_back(rr.handle);
      }
    }
    lock.unlock();
    for (GatherHandle h : cancels) remote->cancel(h);
    lock.lock();
    if (pool.on_worker_thread()) {
      CAIRN_LOG(log::Level::error, kScrubLog,
                "Scrubber::stop called on a pool worker; not waiting");
      return;
    }
    idle.wait(lock, [&] { return outstanding == 0; });
    repairs.clear();
  }
};

Scrubber::Scrubber(Store& store, WorkerPool& pool, std::shared_ptr<const erasure::Codec> codec,
                   std::shared_ptr<const ReplicaTransform> transform, FragmentGather* remote,
                   const ScrubSettings& settings, const cairn::Clock& clock)
    : impl_(std::make_shared<Impl>(store, pool, std::move(codec), std::move(transform), remote,
                                   settings, clock)) {}

Scrubber::~Scrubber() { impl_->stop(); }

void Scrubber::tick() { impl_->tick(); }
Status Scrubber::scrub_blob(BlobIndex index) { return impl_->scrub_blob(index); }
void Scrubber::stop() { impl_->stop(); }
void Scrubber::on_unreadable(std::function<void(BlobIndex)> handler) {
  impl_->unreadable = std::move(handler);
}

ScrubStats Scrubber::stats() const {
  std::lock_guard lock(impl_->mu);
  ScrubStats s = impl_->stats;
  s.position = impl_->position;
  return s;
}

}  // namespace cairn::shards
