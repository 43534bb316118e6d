#include "node/node.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>

#include "cairn/contracts/chain_client.hpp"
#include "cairn/contracts/devchain.hpp"
#include "cairn/contracts/rpc.hpp"
#include "cairn/core/log.hpp"
#include "cairn/core/worker_pool.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/mapped_file.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/p2p/gossip_node.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/p2p/identity.hpp"
#include "cairn/p2p/io_thread.hpp"
#include "cairn/p2p/request.hpp"
#include "cairn/shards/gather.hpp"
#include "cairn/shards/reader.hpp"
#include "cairn/shards/scrub.hpp"
#include "cairn/shards/store.hpp"
#include "cairn/shards/sync.hpp"
#include "node/challenger.hpp"
#include "node/config.hpp"
#include "node/context.hpp"
#include "node/fetcher.hpp"
#include "node/metrics_server.hpp"
#include "node/notices.hpp"
#include "node/replicator.hpp"
#include "node/sync_link.hpp"
#include "node/uploader.hpp"

namespace cairn::node {
namespace {

namespace fs = std::filesystem;

// Maintenance period of the uploader (re-announcements, retries) and of the
// peer gauges.
constexpr auto kTickInterval = std::chrono::seconds(1);
// How long blob_status waits for holders to answer a probe.
constexpr auto kProbeTimeout = std::chrono::seconds(2);
// How long a stop waits for the network layer to say goodbye to its peers.
constexpr auto kNetworkStopTimeout = std::chrono::seconds(5);

Result<erasure::NetworkParams> preset(const NodeChainSettings& c) {
  erasure::NetworkParams p;
  if (c.network == "default") {
    p = erasure::NetworkParams::defaults();
  } else if (c.network == "localnet") {
    p = erasure::NetworkParams::localnet();
  } else {
    return make_error(Errc::invalid_argument, "chain.network '" + c.network + "' is not a preset (default, localnet)");
  }
  if (c.block_time_ms != 0) p.block_time_ms = c.block_time_ms;
  return p;
}

}  // namespace

struct Node::Impl final : NodeService {
  NodeSettings settings;
  NodeOptions options;
  fs::path data_dir;
  int lock_fd = -1;  // flock on DATA_DIR/node.lock for the node's lifetime
  std::optional<SigningKey> identity;
  bool identity_created = false;
  metrics::Registry metrics;

  // The embedded dev chain's block producer; declared before `chain` so that
  // it outlives the chain.
  std::unique_ptr<p2p::IoThread> devchain_thread;
  std::shared_ptr<contracts::Chain> chain;
  contracts::DevChain* devchain = nullptr;  // when embedded (owned by `chain`)
  std::unique_ptr<contracts::RpcServer> rpc_server;
  std::string chain_backend;
  erasure::NetworkParams params;
  std::shared_ptr<const erasure::Codec> codec;
  std::unique_ptr<shards::Store> store;
  std::unique_ptr<WorkerPool> pool;
  std::shared_ptr<shards::SealingTransform> sealer;
  std::unique_ptr<ChainMetrics> chain_metrics;
  std::unique_ptr<contracts::ChainClient> chain_client;
  std::unique_ptr<RegistryEndpoints> registry_endpoints;
  std::unique_ptr<ServedShards> served;
  HolderCache holders;

  // The network thread: the p2p layer and the protocols' state machines.
  p2p::IoThread network{"cairn-net"};
  // The chain client's executor: one thread that may block on chain calls.
  p2p::IoThread chain_thread{"cairn-chain"};

  std::unique_ptr<NodeContext> ctx;
  std::unique_ptr<Notices> notices;
  std::unique_ptr<Uploader> uploader;
  // Peers' fragments (the one adapter over fragments_request) and the one
  // way to gather them (reads, pulls, probes); network thread.
  std::unique_ptr<PeerFragments> peer_fragments;
  std::unique_ptr<shards::FragmentGather> gather;
  std::unique_ptr<Replicator> replicator;
  std::unique_ptr<Fetcher> fetcher;
  std::unique_ptr<FetcherBlobs> blob_source;
  std::unique_ptr<shards::ObjectReader> reader;
  std::unique_ptr<Challenger> challenger;
  // Shard sync and scrub (docs/sync-and-scrub.md); stopped before the network.
  std::unique_ptr<ChainRegistry> registry_view;
  std::unique_ptr<shards::SyncEngine> sync;
  std::unique_ptr<shards::Scrubber> scrubber;

  // Network thread only.
  std::unique_ptr<p2p::GossipNode> gossip;
  std::unique_ptr<p2p::RequestResponse> rr;
  std::unique_ptr<Timer> tick_timer;
  std::unique_ptr<Timer> sync_timer;
  std::unique_ptr<Timer> scrub_timer;
  std::vector<ShardId> subscribed;

  std::unique_ptr<ApiServer> api;
  std::string p2p_address, api_address, metrics_address;
  std::unique_ptr<MetricsServer> metrics_server;
  std::string endpoint;  // registered on the chain; set before network_up
  std::atomic<bool> network_up{false};
  bool started = false;
  bool stopped = false;
  std::atomic<bool> stopping{false};
  // The newest successful uploads, newest first (at most kRecentUploads).
  std::mutex recent_mu;
  std::deque<RecentUpload> recent_uploads_log;
  TimePoint start_time = clock().now();  // options (and so clock()) are set first
  std::atomic<uint64_t> peer_count{0};
  struct ShardPeerGauges {
    metrics::Gauge* topic = nullptr;
    metrics::Gauge* mesh = nullptr;
  };
  std::map<uint32_t, ShardPeerGauges> shard_peer_gauges;  // network thread only

  Impl(NodeSettings s, NodeOptions o) : settings(std::move(s)), options(std::move(o)) {}

  Clock& clock() const override { return options.clock ? *options.clock : p2p::real_clock(); }
  // The network's io_context: the caller's (NodeOptions::io) or the network
  // thread's.
  asio::io_context& net_io() { return options.io ? *options.io : network.context(); }
  asio::any_io_executor chain_executor() { return options.io ? options.io->get_executor() : chain_thread.executor(); }
  // On the caller's io_context: runs what is ready there (start() and
  // stop() wait on work that runs on it). No-op with threads of our own.
  void pump() {
    if (!options.io) return;
    while (options.io->poll() > 0) {
    }
  }
  ~Impl() override {
    stop_devchain();
    if (lock_fd >= 0) ::close(lock_fd);
  }

  // One node per data dir: the embedded chain, the store and the pending
  // uploads must not be shared.
  Status lock_data_dir() {
    const fs::path path = data_dir / "node.lock";
    lock_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
      return make_error(Errc::io_error, "cannot open " + path.string() + ": " + std::strerror(errno));
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(lock_fd);
      lock_fd = -1;
      if (err == EWOULDBLOCK) {
        return make_error(Errc::io_error, "data dir " + data_dir.string() +
                                              " is in use by another process (is another cairn node running on it?)");
      }
      return make_error(Errc::io_error, "cannot lock " + path.string() + ": " + std::strerror(err));
    }
    return {};
  }

  // ---- open ----

  Status open() {
    CAIRN_TRY_STATUS(validate(settings));
    if (options.io && !options.chain) {
      return make_error(Errc::invalid_argument,
                        "a node on its caller's io_context needs an injected chain (NodeOptions::chain)");
    }
    data_dir = settings.data_dir;
    std::error_code ec;
    fs::create_directories(data_dir, ec);
    if (ec) return make_error(Errc::io_error, "cannot create data dir " + data_dir.string() + ": " + ec.message());
    CAIRN_TRY_STATUS(lock_data_dir());
    auto key = p2p::load_or_create_identity(data_dir / "identity.key", &identity_created);
    if (!key) return tl::unexpected(key.error());
    identity = *key;

    CAIRN_TRY_STATUS(open_chain());
    params = chain->info().params;
    auto c = erasure::Codec::create(params);
    if (!c) return tl::unexpected(c.error());
    codec = *c;
    auto st = shards::Store::open(data_dir / "store", params, settings.storage.store, options.store);
    if (!st) return tl::unexpected(st.error());
    store = std::move(*st);
    if (options.io) {
      pool = std::make_unique<WorkerPool>(settings.storage.workers,
                                          [io = options.io](WorkerPool::Job job) { asio::post(*io, std::move(job)); });
    } else {
      pool = std::make_unique<WorkerPool>(settings.storage.workers);
    }
    sealer = std::make_shared<shards::SealingTransform>(params, identity->public_key());
    contracts::ChainClientSettings cls;
    cls.register_batch = std::max<uint32_t>(1, settings.upload.register_batch);
    cls.registry_refresh = settings.chain.registry_refresh;
    cls.refresh_ahead_shards = ServedShards::kAutoLookahead;
    chain_metrics = std::make_unique<ChainMetrics>(metrics);
    chain_client =
        std::make_unique<contracts::ChainClient>(chain, *identity, cls, chain_executor(), clock(), chain_metrics.get());
    registry_endpoints = std::make_unique<RegistryEndpoints>(*chain_client);
    served = std::make_unique<ServedShards>(settings.shards);

    ctx = std::unique_ptr<NodeContext>(new NodeContext{settings, params, codec, *identity, identity->public_key(),
                                                       *store, *pool, sealer, *chain_client, metrics, net_io(), clock(),
                                                       *served, holders});
    if (options.io) ctx->driver = std::this_thread::get_id();
    notices = std::make_unique<Notices>(*ctx);
    uploader = std::make_unique<Uploader>(*ctx, *notices);
    peer_fragments = std::make_unique<PeerFragments>(*ctx);
    shards::GatherSettings gs;
    gs.parallel_peers = settings.fetch.parallel_peers;
    gs.hedge_after = std::chrono::duration_cast<cairn::Duration>(settings.fetch.hedge_after);
    gs.deadline = std::chrono::duration_cast<cairn::Duration>(settings.fetch.blob_timeout);
    gather = std::make_unique<shards::FragmentGather>(
        *peer_fragments, *pool, clock(), net_io().get_executor(),
        [this](std::function<void()> fn) { ctx->post(std::move(fn)); }, params, gs);
    replicator = std::make_unique<Replicator>(
        *ctx, *notices, *uploader, [this](ShardId shard, shards::BlobHint h) { return hint(shard, std::move(h)); });
    fetcher = std::make_unique<Fetcher>(*ctx, *uploader, *gather);
    blob_source = std::make_unique<FetcherBlobs>(*ctx, *fetcher);
    reader = std::make_unique<shards::ObjectReader>(*blob_source, codec,
                                                    shards::ReaderSettings{settings.fetch.readahead_blobs});
    notices->on_announce(
        [this](const NodeId& via, ShardId shard, const wire::Notice& n) { replicator->on_announce(via, shard, n); });
    notices->on_stored([this](const NodeId&, ShardId, const wire::Notice& n) { uploader->on_stored(n); });
    challenger = std::make_unique<Challenger>(*ctx, clock());
    notices->on_response(
        [this](const NodeId& from, ShardId shard, ByteSpan data, std::shared_ptr<const sampling::Response>& decoded) {
          return challenger->validate(from, shard, data, decoded);
        },
        [this](const NodeId& from, ShardId shard, std::shared_ptr<const sampling::Response> response) {
          challenger->received(from, shard, std::move(response));
        });
    open_sync();
    register_metrics();
    return {};
  }

  Status open_chain() {
    if (options.chain) {
      chain = options.chain;
      chain_backend = "injected";
      return {};
    }
    const auto& c = settings.chain;
    if (c.backend == "embedded") {
      chain_backend = "embedded";
      const fs::path dir = data_dir / "devchain";
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) return make_error(Errc::io_error, "cannot create " + dir.string() + ": " + ec.message());
      auto sequencer = p2p::load_or_create_identity(dir / "sequencer.key");
      if (!sequencer) return tl::unexpected(sequencer.error());
      contracts::DevChainSettings dcs = c.chain.devchain;
      dcs.db_path = (dir / "chain").string();
      // A new chain takes the preset; an existing one keeps its genesis.
      std::optional<erasure::NetworkParams> p;
      if (!fs::exists(fs::path(dcs.db_path) / "CURRENT")) {
        auto pr = preset(c);
        if (!pr) return tl::unexpected(pr.error());
        p = *pr;
      }
      auto dev = contracts::DevChain::open(dcs, *sequencer, p);
      if (!dev) return tl::unexpected(with_context(dev.error(), "opening the embedded dev chain"));
      devchain = dev->get();
      chain = std::shared_ptr<contracts::Chain>(std::move(*dev));
      devchain_thread = std::make_unique<p2p::IoThread>("cairn-devchain");
      devchain->start(devchain_thread->executor(), clock(), [](const Error& e) {
        CAIRN_LOG(log::Level::error, "node", "embedded dev chain stopped producing blocks: " << e.to_string());
      });
      if (c.serve_rpc) {
        auto server = contracts::RpcServer::start(*devchain, clock(), c.chain.rpc);
        if (!server) return tl::unexpected(with_context(server.error(), "serving the embedded chain's JSON-RPC"));
        rpc_server = std::move(*server);
      }
      devchain_thread->start();
      return {};
    }
    if (c.backend.rfind("http://", 0) != 0) {
      return make_error(Errc::invalid_argument,
                        "chain '" + c.backend + "': give \"embedded\" or a dev chain URL http://HOST:PORT");
    }
    chain_backend = c.backend;
    auto client = contracts::connect_devchain(c.backend, c.chain.client);
    if (!client) return tl::unexpected(with_context(client.error(), "connecting to the chain at " + c.backend));
    chain = std::shared_ptr<contracts::Chain>(std::move(*client));
    return {};
  }

  void open_sync() {
    const shards::ShardsSettings& st = settings.storage;
    registry_view = std::make_unique<ChainRegistry>(*chain_client, params, st.sync.settle_blocks);
    // Announced uploads reach sync as hints (Replicator), bounded as pulls were.
    shards::SyncSettings ss = st.sync;
    ss.max_hints = settings.upload.max_pull_queue;
    ss.max_hint_fetches = settings.upload.max_concurrent_pulls;
    sync = std::make_unique<shards::SyncEngine>(*store, *pool, codec, sealer, *registry_view, *peer_fragments, ss,
                                                clock(), replicator.get());
    scrubber = std::make_unique<shards::Scrubber>(*store, *pool, codec, sealer, gather.get(), st.scrub, clock());
    scrubber->on_unreadable([this](BlobIndex index) {
      if (auto r = sync->refetch(index); !r) {
        CAIRN_LOG(log::Level::warn, "node",
                  "index " << index.value << ": cannot fetch again: " << r.error().to_string());
      }
    });
  }

  // Hands an announced blob to sync. A served shard the engine does not
  // follow yet, but that this node registered for (it is opening: the
  // chain client has not seen the head yet), is added first.
  Status hint(ShardId shard, shards::BlobHint h) {
    auto r = sync->hint(shard, h);
    if (r || r.error().code != Errc::not_found) return r;
    const auto current = served->current(chain_client->open_shards());
    if (std::find(current.begin(), current.end(), shard) == current.end()) return r;
    CAIRN_TRY_STATUS(sync->add_shard(shard));
    return sync->hint(shard, std::move(h));
  }

  // Starts syncing every open served shard not synced yet (idempotent).
  // Auto nodes also register shards that have not opened: nothing to sync there yet.
  void sync_served_shards() {
    const uint32_t open = chain_client->open_shards();
    for (ShardId s : served->current(open)) {
      if (s.value >= open) continue;
      if (auto r = sync->add_shard(s); !r) return;  // stopping
    }
  }

  void register_sync_metrics() {
    const auto sync_stat = [this](uint64_t shards::SyncStats::*field) {
      return [this, field] { return static_cast<double>(sync->stats().*field); };
    };
    metrics.counter_fn("cairn_sync_blobs_fetched_total", "Blobs shard sync fetched, verified and stored.",
                       sync_stat(&shards::SyncStats::blobs_fetched));
    metrics.counter_fn("cairn_sync_bytes_fetched_total", "Payload bytes of the blobs shard sync stored.",
                       sync_stat(&shards::SyncStats::bytes_fetched));
    metrics.counter_fn("cairn_sync_wire_bytes_total", "Fragment bytes received by shard sync.",
                       sync_stat(&shards::SyncStats::wire_bytes));
    metrics.counter_fn("cairn_sync_fetches_total", "Fragment requests shard sync sent (hedges included).",
                       sync_stat(&shards::SyncStats::fetches_started));
    metrics.counter_fn("cairn_sync_fetches_failed_total", "Sync fetches that failed (retried with another peer).",
                       sync_stat(&shards::SyncStats::fetches_failed));
    metrics.counter_fn("cairn_sync_fetches_hedged_total",
                       "Sync fetches duplicated to a second peer because the first was slow.",
                       sync_stat(&shards::SyncStats::fetches_hedged));
    metrics.counter_fn("cairn_sync_invalid_replies_total",
                       "Sync replies that failed verification (the peer is avoided).",
                       sync_stat(&shards::SyncStats::invalid_replies));
    metrics.counter_fn("cairn_sync_already_held_total", "Registered blobs sync found already stored.",
                       sync_stat(&shards::SyncStats::already_held));
    // Replication is sync's hint path (Replicator): its counters keep
    // their names (docs/http-api.md).
    metrics.counter_fn("cairn_replicate_announced_total", "Announced blobs of served shards taken as sync hints.",
                       sync_stat(&shards::SyncStats::hints));
    metrics.counter_fn("cairn_replicate_stored_total", "Announced blobs fetched, verified, sealed and stored.",
                       sync_stat(&shards::SyncStats::hints_stored));
    metrics.counter_fn("cairn_replicate_already_held_total",
                       "Announced blobs this node already held (confirmed again).",
                       sync_stat(&shards::SyncStats::hints_already_held));
    metrics.counter_fn("cairn_replicate_pull_failures_total",
                       "Fetches of announced blobs that failed (peer error, timeout, missing data).",
                       sync_stat(&shards::SyncStats::hint_fetches_failed));
    metrics.counter_fn("cairn_replicate_bad_fragments_total",
                       "Announced blobs whose fragments or announcement did not match the blob id or registry.",
                       [this] {
                         const auto s = sync->stats();
                         return static_cast<double>(s.hint_invalid_replies + s.hints_rejected);
                       });
    metrics.counter_fn("cairn_replicate_store_failures_total",
                       "Fetched and verified replicas of announced blobs this node's store failed to write.",
                       sync_stat(&shards::SyncStats::hint_store_errors));
    metrics.counter_fn("cairn_replicate_dropped_total",
                       "Announced blobs given up on (too many held, or no holder answered); sync fetches them later.",
                       sync_stat(&shards::SyncStats::hints_dropped));
    metrics.counter_fn("cairn_replicate_bytes_total", "Fragment bytes received for announced blobs.",
                       sync_stat(&shards::SyncStats::hint_wire_bytes));
    metrics.gauge_fn("cairn_replicate_queue", "Announced blobs held to fetch (checked, queued, fetching, retrying).",
                     sync_stat(&shards::SyncStats::hints_pending));
    // One series per shard the sync engine follows, labelled shard="N"
    // (docs/http-api.md): a fleet-wide total is sum by (instance).
    const auto per_shard = [this](auto field) {
      return [this, field] {
        std::vector<std::pair<metrics::Labels, double>> out;
        for (const auto& p : sync->progress()) {
          out.emplace_back(metrics::Labels{{"shard", std::to_string(p.shard.value)}}, static_cast<double>(p.*field));
        }
        return out;
      };
    };
    metrics.gauge_series_fn("cairn_sync_blobs_known", "Blobs the registry lists in a served shard.",
                            per_shard(&shards::SyncProgress::known));
    metrics.gauge_series_fn("cairn_sync_blobs_held", "Registered blobs of a served shard held here.",
                            per_shard(&shards::SyncProgress::held));
    metrics.gauge_series_fn("cairn_sync_blobs_remaining", "Registered blobs of a served shard not held yet.",
                            per_shard(&shards::SyncProgress::remaining));

    const auto scrub_stat = [this](uint64_t shards::ScrubStats::*field) {
      return [this, field] { return static_cast<double>(scrubber->stats().*field); };
    };
    metrics.counter_fn("cairn_scrub_blobs_total", "Blobs whose every fragment the scrubber checked.",
                       scrub_stat(&shards::ScrubStats::blobs_scrubbed));
    metrics.counter_fn("cairn_scrub_bytes_total", "Stored fragment bytes the scrubber read.",
                       scrub_stat(&shards::ScrubStats::bytes_scrubbed));
    metrics.counter_fn("cairn_scrub_fragments_bad_total", "Bad fragments found (checksum or commitment).",
                       scrub_stat(&shards::ScrubStats::fragments_bad));
    metrics.counter_fn("cairn_scrub_fragments_unreadable_total",
                       "Of the bad fragments found, those the disk failed to read (I/O error).",
                       scrub_stat(&shards::ScrubStats::fragments_unreadable));
    metrics.counter_fn("cairn_scrub_repaired_local_total", "Fragments rebuilt from local parity.",
                       scrub_stat(&shards::ScrubStats::fragments_repaired_local));
    metrics.counter_fn("cairn_scrub_repaired_remote_total", "Fragments rebuilt with fragments from peers.",
                       scrub_stat(&shards::ScrubStats::fragments_repaired_remote));
    metrics.counter_fn("cairn_scrub_unrepairable_total", "Bad fragments neither local parity nor peers could rebuild.",
                       scrub_stat(&shards::ScrubStats::fragments_unrepairable));
    metrics.counter_fn("cairn_scrub_records_corrupt_total", "Blob records the scrubber could not read (fetched again).",
                       scrub_stat(&shards::ScrubStats::records_corrupt));
    metrics.counter_fn("cairn_scrub_passes_total", "Full scrub passes over the store.",
                       scrub_stat(&shards::ScrubStats::passes));
  }

  void register_metrics() {
    register_sync_metrics();
    const auto gather_stat = [this](uint64_t shards::GatherStats::*field) {
      return [this, field] { return static_cast<double>(gather->stats().*field); };
    };
    metrics.counter_fn("cairn_fetch_fragments_total", "Verified fragments received from peers (reads and pulls).",
                       gather_stat(&shards::GatherStats::fragments));
    metrics.counter_fn("cairn_fetch_bad_fragments_total", "Replies from peers that failed verification.",
                       gather_stat(&shards::GatherStats::invalid_replies));
    metrics.counter_fn("cairn_fetch_hedged_total", "Fragment requests re-asked elsewhere because a peer was slow.",
                       gather_stat(&shards::GatherStats::hedged));
    metrics.counter_fn("cairn_read_bytes_total", "Object bytes streamed to readers.",
                       [this] { return static_cast<double>(reader->bytes_read()); });
    metrics.gauge_fn("cairn_store_blobs", "Blobs held in the local store.",
                     [this] { return static_cast<double>(store->blob_count()); });
    metrics.gauge_fn("cairn_store_bytes", "Sealed fragment bytes held (n x fragment_size per blob).", [this] {
      return static_cast<double>(store->blob_count()) * params.total_fragments() * params.fragment_size();
    });
    metrics.counter_fn("cairn_store_write_failures_total",
                       "Store writes that failed (after an I/O error every write fails until a restart).",
                       [this] { return static_cast<double>(store->write_failures()); });
    metrics.gauge_fn("cairn_workers_queued", "Jobs waiting for the worker pool.",
                     [this] { return static_cast<double>(pool->queued()); });
    metrics.counter_fn("cairn_workers_rejected_total", "Jobs refused because the worker pool queue was full.",
                       [this] { return static_cast<double>(pool->stats().rejected); });
    metrics.gauge_fn("cairn_p2p_peers", "Connected peers.", [this] { return static_cast<double>(peer_count.load()); });
    metrics
        .gauge("cairn_build_info", "Always 1; labels name this node's version and node id.",
               {{"version", CAIRN_VERSION}, {"node_id", identity->public_key().hex()}})
        .set(1);
    metrics::register_process_metrics(metrics);
    metrics::register_disk_metrics(metrics, data_dir.string());
    metrics.gauge_fn("cairn_node_uptime_seconds", "Seconds since the node opened.",
                     [this] { return std::chrono::duration<double>(clock().now() - start_time).count(); });
  }

  // ---- start ----

  Status start() {
    if (started) return make_error(Errc::conflict, "node already started");
    started = true;
    // Every block: the registry may have grown (sync plans again) and, in
    // auto mode, a shard may have opened.
    chain_client->on_head([this](const contracts::BlockHeader&) {
      if (!network_up.load() || stopping.load()) return;
      sync_served_shards();
      sync->registry_changed();
    });
    // The storage challenge runs on the chain clock (its driver only
    // schedules pool work from here).
    chain_client->on_head([this](const contracts::BlockHeader& h) {
      if (!network_up.load() || stopping.load()) return;
      challenger->on_head(h);
    });
    if (served->automatic()) {
      // New shards open as the index space grows: serve and register them.
      // (Listeners must be added before the link starts.)
      chain_client->on_head([this](const contracts::BlockHeader&) {
        if (!network_up.load()) return;
        const auto shards = served->current(chain_client->open_shards());
        chain_client->set_registration(endpoint, shards);
        ctx->post([this, shards] {
          if (!gossip) return;
          for (ShardId s : shards) {
            if (std::find(subscribed.begin(), subscribed.end(), s) == subscribed.end()) {
              gossip->subscribe(s);
              subscribed.push_back(s);
            }
          }
        });
      });
    }
    if (!options.io) chain_thread.start();
    CAIRN_TRY_STATUS(chain_client->start());
    if (!options.io) network.start();

    Status net;
    auto posted = ctx->run_on_io([&] { net = start_network(); });
    if (!posted) return posted;
    if (!net) return net;

    endpoint = settings.advertise.empty() ? p2p_address : settings.advertise;
    chain_client->set_registration(endpoint, served->current(chain_client->open_shards()));
    network_up.store(true);
    sync_served_shards();
    CAIRN_TRY_STATUS(uploader->resume());
    if (options.api && !settings.api.listen.empty()) {
      auto server = options.api(*this, settings.api, metrics);
      if (!server)
        return tl::unexpected(with_context(server.error(), "starting the HTTP API on " + settings.api.listen));
      api = std::move(*server);
      api_address = api->address();
    }
    if (!settings.metrics.listen.empty()) {
      auto server = MetricsServer::start(settings.metrics.listen, metrics);
      if (!server) return tl::unexpected(with_context(server.error(), "starting the metrics listener"));
      metrics_server = std::move(*server);
      metrics_address = metrics_server->address();
    }
    return {};
  }

  std::unique_ptr<p2p::Transport> make_transport() {
    return options.transport ? options.transport(net_io().get_executor())
                             : p2p::make_tcp_transport(net_io().get_executor());
  }

  // Network thread.
  Status start_network() {
    p2p::GossipNodeSettings gs;
    gs.p2p = settings.p2p;
    gs.p2p.network_id = chain->info().chain_id;
    gs.p2p.advertised_address = settings.advertise;
    gs.gossip = settings.gossip;
    gs.discovery = settings.discovery;
    for (const auto& b : settings.bootstrap) gs.discovery.bootstrap.push_back(b);
    gs.listen_address = settings.listen;
    subscribed = served->current(chain_client->open_shards());
    gs.shards = subscribed;
    uint64_t seed = options.seed;
    if (seed == 0) {
      for (int i = 0; i < 8; ++i) seed = (seed << 8) | identity->public_key().bytes[static_cast<size_t>(i)];
    }
    gossip = std::make_unique<p2p::GossipNode>(net_io().get_executor(), make_transport(), clock(), *identity,
                                               std::move(gs), seed, registry_endpoints.get());
    rr = std::make_unique<p2p::RequestResponse>(gossip->host());
    ctx->gossip = gossip.get();
    ctx->rr = rr.get();
    CAIRN_TRY_STATUS(rr->handle(p2p::MessageType::fragments_request,
                                [this](const NodeId& from, ByteSpan payload, p2p::Responder responder) {
                                  fetcher->serve(from, payload, std::move(responder));
                                }));
    CAIRN_TRY_STATUS(rr->handle(p2p::MessageType::challenge_response_request,
                                [this](const NodeId& from, ByteSpan payload, p2p::Responder responder) {
                                  challenger->serve(from, payload, std::move(responder));
                                }));
    notices->attach(*gossip);
    auto bound = gossip->start();
    if (!bound) return tl::unexpected(with_context(bound.error(), "listening for peers on " + settings.listen));
    p2p_address = *bound;
    tick_timer = clock().make_timer(net_io().get_executor());
    arm_periodic(*tick_timer, kTickInterval, [this] {
      peer_count.store(gossip->host().peer_count());
      update_shard_peer_metrics();
      uploader->tick();
    });
    sync_timer = clock().make_timer(net_io().get_executor());
    arm_periodic(*sync_timer, std::chrono::milliseconds(std::max<uint32_t>(10, settings.storage.sync.tick_ms)),
                 [this] { sync->tick(); });
    if (settings.storage.scrub.enabled) {
      scrub_timer = clock().make_timer(net_io().get_executor());
      arm_periodic(*scrub_timer, std::chrono::milliseconds(std::max<uint32_t>(10, settings.storage.scrub.tick_ms)),
                   [this] { scrubber->tick(); });
    }
    return {};
  }

  // Network thread: runs `fn` every `period` until the node stops (or the
  // timer is cancelled). The engines' ticks never block (they queue work on
  // the pool).
  void arm_periodic(Timer& timer, Duration period, std::function<void()> fn) {
    timer.expires_after(period, [this, &timer, period, fn = std::move(fn)]() mutable {
      if (stopping.load()) return;
      fn();
      arm_periodic(timer, period, std::move(fn));
    });
  }

  // Network thread (the gossip router's state lives there). Shards are only
  // ever added to `subscribed`, so each series, once registered, stays.
  void update_shard_peer_metrics() {
    const auto& router = gossip->router();
    for (ShardId shard : subscribed) {
      auto it = shard_peer_gauges.find(shard.value);
      if (it == shard_peer_gauges.end()) {
        const metrics::Labels labels{{"shard", std::to_string(shard.value)}};
        ShardPeerGauges g{
            &metrics.gauge("cairn_p2p_shard_peers", "Connected peers that announced the shard.", labels),
            &metrics.gauge("cairn_gossip_mesh_peers", "Peers in the shard's gossip mesh (alert below D_low).", labels)};
        it = shard_peer_gauges.emplace(shard.value, g).first;
      }
      it->second.topic->set(static_cast<double>(router.topic_peers(shard).size()));
      it->second.mesh->set(static_cast<double>(router.mesh(shard).size()));
    }
  }

  // ---- stop ----

  Status stop() {
    if (stopped) return {};
    stopped = true;
    stopping.store(true);
    if (api) api->stop();
    if (metrics_server) metrics_server->stop();
    if (challenger) challenger->stop();
    // Sync and scrub cancel their fetches, whose completions arrive on the
    // network thread: stop them while it still runs.
    if (sync) sync->stop();
    if (scrubber) scrubber->stop();
    pump();  // on the caller's io_context: the uploader's queued writes run now
    if (uploader) uploader->stop(settings.stop_timeout, network.started() || options.io);
    if (network.started() || options.io) {
      auto gone = std::make_shared<std::promise<void>>();
      auto gone_future = gone->get_future();
      (void)ctx->run_on_io([&] {
        if (tick_timer) tick_timer->cancel();
        if (sync_timer) sync_timer->cancel();
        if (scrub_timer) scrub_timer->cancel();
        notices->stop();
        replicator->stop();
        fetcher->stop();
        gather->stop();
        if (gossip) {
          gossip->stop([gone] { gone->set_value(); });
        } else {
          gone->set_value();
        }
      });
      if (options.io) {
        // A real-time bound, whatever the node's clock: idle() may not move it.
        cairn::Clock& real = p2p::real_clock();
        const auto give_up = real.now() + kNetworkStopTimeout;
        while (gone_future.wait_for(std::chrono::seconds(0)) != std::future_status::ready && real.now() < give_up) {
          if (options.io->poll_one() > 0) continue;
          if (options.idle) {
            options.idle();
          } else {
            std::this_thread::yield();
          }
        }
      } else {
        gone_future.wait_for(kNetworkStopTimeout);
      }
      // Queued store writes (own replicas, pulled replicas, pending
      // uploads) finish before the store closes.
      if (pool) (void)pool->shutdown(WorkerPool::Shutdown::drain);
      (void)ctx->run_on_io([&] {
        ctx->rr = nullptr;
        ctx->gossip = nullptr;
        rr.reset();
        gossip.reset();
        tick_timer.reset();
        sync_timer.reset();
        scrub_timer.reset();
      });
      network.stop();
      // On the caller's io_context: what this node still had queued there
      // runs now, while its objects live (the io_context outlives the node).
      pump();
      ctx->io_stopped.store(true);
    }
    if (pool) (void)pool->shutdown(WorkerPool::Shutdown::drain);
    chain_thread.stop();
    if (chain_client) chain_client->stop();
    Status result;
    if (store) {
      if (auto f = store->flush(); !f) result = f;
      if (auto c = store->close(); !c && result) result = c;
    }
    if (rpc_server) rpc_server->stop();
    stop_devchain();
    return result;
  }

  // The producer's thread first: the chain's timer is then used by no thread.
  void stop_devchain() {
    if (devchain_thread) devchain_thread->stop();
    if (devchain) devchain->stop();
  }

  // ---- NodeService ----

  Status callable(const char* what) const {
    if (stopping.load()) return make_error(Errc::cancelled, std::string(what) + ": the node is stopping");
    if (network.running_here()) {
      return make_error(Errc::invalid_argument, std::string(what) + " called on the node's network thread");
    }
    if (pool && pool->on_worker_thread()) {
      return make_error(Errc::invalid_argument, std::string(what) + " called on a worker of the node's pool");
    }
    if (!started) return make_error(Errc::cancelled, std::string(what) + ": the node is not started");
    return {};
  }

  Result<PutFileResult> put_file(ByteSpan content, const PutOptions& options_) override {
    CAIRN_TRY_STATUS(callable("put_file"));
    return remember_upload(uploader->put_file(content, options_));
  }

  Result<PutFileResult> put_file(const fs::path& path, const PutOptions& options_) override {
    CAIRN_TRY_STATUS(callable("put_file"));
    auto file = erasure::MappedFile::open(path);
    if (!file) return tl::unexpected(file.error());
    return remember_upload(uploader->put_file((*file)->bytes(), options_));
  }

  Result<PutBlobResult> put_blob(ByteSpan payload, const PutOptions& options_) override {
    CAIRN_TRY_STATUS(callable("put_blob"));
    return remember_upload(uploader->put_blob(payload, options_));
  }

  // Records a successful upload in recent_uploads_log and passes the result on.
  template <class R>
  Result<R> remember_upload(Result<R> r) {
    if (!r) return r;
    RecentUpload u;
    u.id = r->id;
    u.kind = std::is_same_v<R, PutFileResult> ? ObjectKind::file : ObjectKind::blob;
    u.size = r->size;
    u.unix_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    u.replicas = r->replicas;
    std::lock_guard lock(recent_mu);
    recent_uploads_log.push_front(u);
    while (recent_uploads_log.size() > kRecentUploads) recent_uploads_log.pop_back();
    return r;
  }

  Result<ObjectInfo> stat(const BlobId& id) override {
    CAIRN_TRY_STATUS(callable("stat"));
    return reader->stat(id);
  }

  Status read(const BlobId& id, const ReadRange& range, const ByteSink& sink) override {
    CAIRN_TRY_STATUS(callable("read"));
    return reader->read(id, range, sink);
  }

  Result<Bytes> read_blob(const BlobId& id) override {
    CAIRN_TRY_STATUS(callable("read_blob"));
    return reader->fetch_blob(id);
  }

  Result<BlobStatus> blob_status(const BlobId& id) override {
    CAIRN_TRY_STATUS(callable("blob_status"));
    auto reg = chain_client->lookup_blob(id);
    if (!reg) return tl::unexpected(reg.error());
    BlobStatus s;
    s.id = id;
    s.size = reg->size;
    s.index = reg->index;
    s.shard = params.shard_of(reg->index);
    s.registered_in = reg->registered_in;
    auto local = store->get_blob(id);
    s.stored_locally = local.has_value();
    s.pending = uploader->find(id) != nullptr || store->get_pending(id).has_value();
    std::vector<NodeId> ids = fetcher->probe(id, s.shard, kProbeTimeout);
    for (const NodeId& n : holders.get(id)) {
      if (std::find(ids.begin(), ids.end(), n) == ids.end()) ids.push_back(n);
    }
    if (s.stored_locally && std::find(ids.begin(), ids.end(), identity->public_key()) == ids.end()) {
      ids.push_back(identity->public_key());
    }
    std::sort(ids.begin(), ids.end());
    for (const NodeId& n : ids) {
      if (n == identity->public_key() && !s.stored_locally) continue;
      HolderInfo h;
      h.node = n;
      h.local = n == identity->public_key();
      if (h.local) {
        h.endpoint = settings.advertise.empty() ? p2p_address : settings.advertise;
      } else if (auto rec = chain_client->node(n)) {
        h.endpoint = rec->endpoint;
      }
      s.holders.push_back(std::move(h));
    }
    return s;
  }

  Result<NodeStatus> status() override {
    CAIRN_TRY_STATUS(callable("status"));
    NodeStatus s;
    s.id = identity->public_key();
    s.version = CAIRN_VERSION;
    s.p2p_address = p2p_address;
    s.advertised_address = settings.advertise.empty() ? p2p_address : settings.advertise;
    s.api_address = api_address;
    s.uptime_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(clock().now() - start_time).count());
    s.chain.backend = chain_backend;
    s.chain.chain_id = chain->info().chain_id;
    s.chain.sequencer = chain->info().sequencer;
    s.chain.params = params;
    if (auto h = chain_client->head()) {
      s.chain.head = h->number.value;
      s.chain.head_hash = h->hash();
      s.chain.head_timestamp_ms = h->timestamp_ms;
      s.chain.blob_count = h->blob_count;
    }
    s.chain.registered = chain_client->registered();
    // Open shards only: an auto node also registers shards that have not
    // opened yet (ServedShards::kAutoLookahead).
    const uint32_t open = chain_client->open_shards();
    for (ShardId sh : served->current(open)) {
      if (sh.value < open || !served->automatic()) s.shards.push_back(sh);
    }
    (void)ctx->run_on_io([&] {
      if (!gossip) return;
      for (const auto& p : gossip->host().peers()) {
        PeerStatus ps;
        ps.id = p.id;
        ps.address = p.advertised_address;
        ps.outbound = p.direction == p2p::Direction::outbound;
        ps.score = p.score;
        ps.rtt_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(p.rtt).count());
        ps.shards = gossip->router().peer_topics(p.id);
        s.peers.push_back(std::move(ps));
      }
    });
    s.blobs_stored = store->blob_count();
    s.bytes_stored = s.blobs_stored * params.total_fragments() * params.fragment_size();
    s.pending_uploads = uploader->in_flight();
    s.sync = sync->progress();
    s.scrub = scrubber->stats();
    s.challenges = challenger->status();
    s.challenge_history = challenger->history();
    {
      std::lock_guard lock(recent_mu);
      s.recent_uploads.assign(recent_uploads_log.begin(), recent_uploads_log.end());
    }
    s.stopping = stopping.load();
    return s;
  }

  Result<ProofFile> replica_proof(ShardId shard, Epoch epoch) override {
    CAIRN_TRY_STATUS(callable("replica_proof"));
    return challenger->proof(shard, epoch);
  }

  Result<ProofFile> latest_proof(const BlobId& id) override {
    CAIRN_TRY_STATUS(callable("latest_proof"));
    return challenger->latest_proof(id);
  }

  std::string metrics_text() override { return metrics.render(); }
};

Result<std::unique_ptr<Node>> Node::open(NodeSettings settings, NodeOptions options) {
  auto impl = std::make_unique<Impl>(std::move(settings), std::move(options));
  if (auto st = impl->open(); !st) {
    (void)impl->stop();
    return tl::unexpected(st.error());
  }
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Node::~Node() {
  if (impl_) (void)impl_->stop();
}

Status Node::start() {
  auto st = impl_->start();
  if (!st) (void)impl_->stop();
  return st;
}

Status Node::stop() { return impl_->stop(); }
NodeService& Node::service() noexcept { return *impl_; }
metrics::Registry& Node::metrics() noexcept { return impl_->metrics; }
const NodeId& Node::id() const noexcept { return impl_->identity->public_key(); }
bool Node::identity_created() const noexcept { return impl_->identity_created; }
const NodeSettings& Node::settings() const noexcept { return impl_->settings; }
std::string Node::p2p_address() const { return impl_->p2p_address; }
std::string Node::api_address() const { return impl_->api_address; }
std::string Node::metrics_address() const { return impl_->metrics_address; }

}  // namespace cairn::node
