// Shard sync and scrub inside real Nodes (shared DevChain, TCP on loopback,
// sealed RocksDB stores): a node that joins late fetches every registered
// blob; damage on disk is found and repaired by the scrubber.

#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <future>
#include <thread>

#include "../contracts/chain_test_util.hpp"
#include "cairn/contracts/tx.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/p2p/request.hpp"
#include "cairn/p2p/transport.hpp"
#include "cairn/shards/scrub.hpp"
#include "cairn/shards/seal_transform.hpp"
#include "cairn/shards/store.hpp"
#include "node/cluster.hpp"
#include "node/wire.hpp"
#include "support/test_util.hpp"

namespace cairn::node::test {
namespace {

using cairn::test::metric;

std::optional<shards::SyncProgress> shard_sync(Node& n, ShardId shard) {
  auto st = n.service().status();
  if (!st) return std::nullopt;
  for (const auto& s : st->sync) {
    if (s.shard == shard) return s;
  }
  return std::nullopt;
}

// A bare p2p peer (no node behind it) on its own thread that dials one node
// and sends it raw fragments requests: what any asker, of any version, puts
// on the wire.
class RawAsker {
 public:
  RawAsker(contracts::Chain& chain, const std::string& address) : work_(io_.get_executor()) {
    thread_ = std::thread([this] { io_.run(); });
    std::promise<Result<NodeId>> connected;
    run([&] {
      const asio::any_io_executor ex = io_.get_executor();
      transport_ = p2p::make_tcp_transport(ex);
      p2p::P2pSettings s;
      s.network_id = chain.info().chain_id;
      host_ = std::make_unique<p2p::Host>(ex, *transport_, p2p::real_clock(),
                                          SigningKey::generate(), s, 9);
      rr_ = std::make_unique<p2p::RequestResponse>(*host_);
      host_->connect(address, {},
                     [&connected](Result<NodeId> id) { connected.set_value(std::move(id)); });
    });
    auto id = connected.get_future().get();
    if (!id) throw std::runtime_error("dialing " + address + ": " + id.error().to_string());
    peer_ = *id;
  }
  ~RawAsker() {
    run([&] {
      rr_.reset();
      host_->shutdown();
    });
    run([&] { host_.reset(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }
  // The answer's body to a fragments_request with `payload`.
  Result<Bytes> ask(const Bytes& payload) {
    std::promise<Result<Bytes>> answer;
    run([&] {
      auto rid = rr_->request(peer_, p2p::MessageType::fragments_request, payload,
                              [&answer](Result<Bytes> body) { answer.set_value(std::move(body)); });
      if (!rid) answer.set_value(tl::unexpected(rid.error()));
    });
    return answer.get_future().get();
  }

 private:
  void run(const std::function<void()>& fn) {
    std::promise<void> done;
    asio::post(io_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<p2p::Transport> transport_;
  std::unique_ptr<p2p::Host> host_;
  std::unique_ptr<p2p::RequestResponse> rr_;
  NodeId peer_;
};

// A p2p host registered on the chain for shard 0 that serves fragments the
// way a node speaking only fragments request version 1 does: version 2 is
// refused with invalid_request (the version 1 decoder's answer), version 1
// is served from blobs given to it in memory.
class VersionOneHolder {
 public:
  VersionOneHolder(contracts::Chain& chain, std::vector<erasure::CommittedBlob> blobs)
      : key_(SigningKey::generate()), blobs_(std::move(blobs)), work_(io_.get_executor()) {
    thread_ = std::thread([this] { io_.run(); });
    run([&] {
      const asio::any_io_executor ex = io_.get_executor();
      transport_ = p2p::make_tcp_transport(ex);
      p2p::P2pSettings s;
      s.network_id = chain.info().chain_id;
      host_ = std::make_unique<p2p::Host>(ex, *transport_, p2p::real_clock(), key_, s, 11);
      rr_ = std::make_unique<p2p::RequestResponse>(*host_);
      const erasure::NetworkParams params = chain.info().params;
      (void)rr_->handle(
          p2p::MessageType::fragments_request,
          [this, params](const NodeId&, ByteSpan payload, p2p::Responder r) {
            versions_.push_back(payload.empty() ? 0 : payload[0]);
            if (payload.empty() || payload[0] != wire::kFragmentsRequestV1) {
              (void)r.fail(p2p::ResponseStatus::invalid_request,
                           "fragments request: version " + std::to_string(versions_.back()));
              return;
            }
            auto req = wire::decode_fragments_request(payload, params.total_fragments());
            if (!req) {
              (void)r.fail(p2p::ResponseStatus::invalid_request, req.error().message);
              return;
            }
            for (const auto& b : blobs_) {
              if (b.commitment.id != req->id) continue;
              std::vector<wire::FragmentView> views;
              for (uint8_t f : req->fragments) views.push_back({f, b.encoded.fragment(f)});
              Bytes out;
              wire::encode_fragments_response(out, b.encoded.length, params.fragment_size(),
                                              b.commitment.fragment_roots, views);
              (void)r.respond(out);
              return;
            }
            (void)r.fail(p2p::ResponseStatus::not_found, "not held");
          });
      address_ = *host_->listen("127.0.0.1:0");
    });
    auto nonce = chain.next_nonce(key_.public_key());
    auto tx =
        contracts::make_register_node(key_, chain.info().chain_id, *nonce, address_, {ShardId{0}});
    auto receipt = contracts::test::submit_and_wait(chain, tx, std::chrono::seconds(10));
    EXPECT_TRUE(receipt && receipt->ok());
  }
  ~VersionOneHolder() {
    run([&] {
      rr_.reset();
      host_->shutdown();
    });
    run([&] { host_.reset(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }
  // The version byte of every fragments request received, in order.
  std::vector<uint8_t> versions() {
    std::vector<uint8_t> v;
    run([&] { v = versions_; });
    return v;
  }

 private:
  void run(const std::function<void()>& fn) {
    std::promise<void> done;
    asio::post(io_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  SigningKey key_;
  std::vector<erasure::CommittedBlob> blobs_;
  std::vector<uint8_t> versions_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<p2p::Transport> transport_;
  std::unique_ptr<p2p::Host> host_;
  std::unique_ptr<p2p::RequestResponse> rr_;
  std::string address_;
};

// The fragment numbers of a fragments response whose fragments all match
// roots that commit to `id` (empty and a failure otherwise).
std::vector<uint8_t> verified_fragments(const Result<Bytes>& body, const BlobId& id,
                                        const erasure::NetworkParams& params) {
  std::vector<uint8_t> out;
  if (!body) {
    ADD_FAILURE() << "fragments request failed: " << body.error().to_string();
    return out;
  }
  auto resp = wire::decode_fragments_response(*body, params);
  if (!resp) {
    ADD_FAILURE() << resp.error().to_string();
    return out;
  }
  EXPECT_TRUE(wire::verify_roots(id, resp->roots));
  for (const auto& f : resp->fragments) {
    EXPECT_EQ(erasure::fragment_root(f.bytes, params.chunk_size), resp->roots[f.index])
        << "fragment " << int(f.index);
    out.push_back(f.index);
  }
  return out;
}

void fast_maintenance(NodeSettings& s) {
  s.storage.sync.tick_ms = 50;
  s.storage.sync.settle_blocks = 2;
  s.storage.scrub.tick_ms = 20;
  s.storage.scrub.bytes_per_second = uint64_t{256} << 20;
  s.storage.scrub.max_queued_jobs = 64;
  s.storage.scrub.pass_pause_s = 1;
}

TEST(NodeSync, ALateNodeFetchesEveryBlobOfItsShardFromThePeers) {
  Cluster net;
  for (int i = 0; i < 3; ++i) net.add(fast_maintenance);
  ASSERT_TRUE(eventually([&] { return net.meshed(); })) << "nodes did not mesh";
  auto rng = cairn::test::seeded_rng(31);
  std::vector<std::pair<BlobId, Bytes>> blobs;
  PutOptions opts;
  opts.min_replicas = 3;
  for (size_t i = 0; i < 24; ++i) {
    Bytes payload = cairn::test::random_bytes(rng, i % 3 == 0 ? 131072 : 1000 + 4000 * i);
    auto put = net.node(i % 3).service().put_blob(payload, opts);
    ASSERT_TRUE(put) << put.error().to_string();
    blobs.emplace_back(put->id, std::move(payload));
  }

  Node& late = net.add(fast_maintenance);
  ASSERT_TRUE(eventually(
      [&] {
        auto s = shard_sync(late, ShardId{0});
        return s && s->state == shards::SyncState::synced && s->held == blobs.size();
      },
      60s))
      << "state "
      << (shard_sync(late, ShardId{0})
              ? shards::sync_state_name(shard_sync(late, ShardId{0})->state)
              : "none");
  const auto s = *shard_sync(late, ShardId{0});
  EXPECT_EQ(s.known, blobs.size());
  EXPECT_EQ(s.remaining, 0u);
  EXPECT_EQ(s.cursor.value, blobs.size());
  EXPECT_EQ(s.fetched_blobs, blobs.size())
      << "the late node missed the announcements: sync fetched everything";
  EXPECT_GT(s.fetched_bytes, 0u);
  const std::string m = late.service().metrics_text();
  EXPECT_EQ(metric(m, "cairn_sync_blobs_fetched_total"), double(blobs.size()));
  EXPECT_EQ(metric(m, "cairn_sync_blobs_remaining{shard=\"0\"}"), 0.0);
  EXPECT_EQ(metric(m, "cairn_sync_blobs_known{shard=\"0\"}"), double(blobs.size()));
  EXPECT_EQ(metric(m, "cairn_sync_blobs_held{shard=\"0\"}"), double(blobs.size()));
  EXPECT_EQ(metric(m, "cairn_sync_blobs_held", -1), -1.0)
      << "per-shard series only, no unlabelled sum";
  EXPECT_EQ(metric(m, "cairn_sync_invalid_replies_total"), 0.0);
  EXPECT_EQ(late.service().status()->blobs_stored, blobs.size());
  // Reads are local now.
  const double remote_before = metric(late.service().metrics_text(), "cairn_fetch_remote_total");
  for (const auto& [id, payload] : blobs) {
    auto got = late.service().read_blob(id);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, payload);
  }
  EXPECT_EQ(metric(late.service().metrics_text(), "cairn_fetch_remote_total"), remote_before);
}

TEST(NodeSync, ScrubRepairsDamageFoundAfterARestart) {
  Cluster net;
  net.add(fast_maintenance);
  auto rng = cairn::test::seeded_rng(32);
  std::vector<std::pair<BlobId, Bytes>> blobs;
  for (int i = 0; i < 6; ++i) {
    Bytes payload = cairn::test::random_bytes(rng, 50000 + 1000 * size_t(i));
    auto put = net.node(0).service().put_blob(payload, {});
    ASSERT_TRUE(put) << put.error().to_string();
    blobs.emplace_back(put->id, std::move(payload));
  }
  net.remove(0);

  // Damage under the node: wrong bytes in two fragments of one blob, with
  // valid store checksums (only the commitment can tell).
  const auto params = net.chain().info().params;
  BlobIndex damaged;
  {
    auto store = shards::Store::open(net.dir(0) / "store", params);
    ASSERT_TRUE(store) << store.error().to_string();
    auto rec = (*store)->get_blob(blobs[2].first);
    ASSERT_TRUE(rec);
    damaged = rec->index;
    for (uint8_t f : {uint8_t{1}, uint8_t{9}}) {
      ASSERT_TRUE((*store)->put_fragment(damaged, FragmentIndex{f},
                                         cairn::test::random_bytes(rng, params.fragment_size())));
    }
    ASSERT_TRUE((*store)->close());
  }

  Node& n = net.add([](NodeSettings& s) {
    fast_maintenance(s);
    s.data_dir = (std::filesystem::path(s.data_dir).parent_path() / "node0")
                     .string();  // the same node again
  });
  // Reads are right before and after the repair.
  auto early = n.service().read_blob(blobs[2].first);
  ASSERT_TRUE(early) << early.error().to_string();
  EXPECT_EQ(*early, blobs[2].second);
  ASSERT_TRUE(eventually(
      [&] {
        auto st = n.service().status();
        return st && st->scrub.fragments_repaired_local >= 2 && st->scrub.passes >= 1;
      },
      30s));
  auto st = n.service().status();
  EXPECT_EQ(st->scrub.fragments_bad, 2u);
  EXPECT_EQ(st->scrub.fragments_unrepairable, 0u);
  EXPECT_GE(metric(n.service().metrics_text(), "cairn_scrub_repaired_local_total"), 2.0);
  for (const auto& [id, payload] : blobs) {
    auto got = n.service().read_blob(id);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, payload);
  }
  const NodeId id = n.id();
  net.remove(1);
  auto store = shards::Store::open(net.dir(0) / "store", params);
  ASSERT_TRUE(store);
  shards::SealingTransform seal(params, id);
  auto health = shards::check_blob(**store, damaged, &seal);
  ASSERT_TRUE(health) << health.error().to_string();
  EXPECT_TRUE(health->bad.empty()) << "the repaired fragments are on disk";
}

// The only peer of a syncing node holds one blob with a damaged data
// fragment (wrong bytes, valid store checksum) and does not scrub it away.
// The sync asks for the k data fragments with at_least = k, so the peer must
// substitute a parity fragment for the damaged one: the late node ends up
// with every blob, verified, from that one peer.
TEST(NodeSync, APeerWithADamagedDataFragmentSubstitutesParity) {
  const auto no_scrub = [](NodeSettings& s) {
    fast_maintenance(s);
    s.storage.scrub.enabled = false;  // the damage must still be there when the late node asks
  };
  Cluster net;
  net.add(no_scrub);
  auto rng = cairn::test::seeded_rng(33);
  std::vector<std::pair<BlobId, Bytes>> blobs;
  for (int i = 0; i < 4; ++i) {
    Bytes payload = cairn::test::random_bytes(rng, 60000 + 1000 * size_t(i));
    auto put = net.node(0).service().put_blob(payload, {});
    ASSERT_TRUE(put) << put.error().to_string();
    blobs.emplace_back(put->id, std::move(payload));
  }
  net.remove(0);

  const auto params = net.chain().info().params;
  const FragmentIndex damaged_fragment{2};  // a data fragment: 2 < k
  ASSERT_LT(damaged_fragment.value, params.data_fragments);
  BlobIndex damaged;
  {
    auto store = shards::Store::open(net.dir(0) / "store", params);
    ASSERT_TRUE(store) << store.error().to_string();
    auto rec = (*store)->get_blob(blobs[1].first);
    ASSERT_TRUE(rec);
    damaged = rec->index;
    ASSERT_TRUE((*store)->put_fragment(damaged, damaged_fragment,
                                       cairn::test::random_bytes(rng, params.fragment_size())));
    ASSERT_TRUE((*store)->close());
  }
  Node& holder = net.add([&](NodeSettings& s) {
    no_scrub(s);
    s.data_dir = (std::filesystem::path(s.data_dir).parent_path() / "node0")
                     .string();  // the same node again
  });
  const NodeId holder_id = holder.id();

  // On the wire: the k data fragments with at_least = k come back as k good
  // fragments, the first parity fragment in place of the damaged one; an
  // asker without at_least (request version 1) gets the k - 1 good ones.
  {
    RawAsker asker(net.chain(), holder.p2p_address());
    wire::FragmentsRequest req{blobs[1].first, {}, 0};
    for (uint32_t f = 0; f < params.data_fragments; ++f)
      req.fragments.push_back(static_cast<uint8_t>(f));
    std::vector<uint8_t> expected;
    for (uint32_t f = 0; f < params.data_fragments; ++f) {
      if (f != damaged_fragment.value) expected.push_back(static_cast<uint8_t>(f));
    }
    EXPECT_EQ(
        verified_fragments(asker.ask(wire::encode_fragments_request(req)), blobs[1].first, params),
        expected);
    req.at_least = static_cast<uint8_t>(params.data_fragments);
    expected.push_back(
        static_cast<uint8_t>(params.data_fragments));  // fragment k, the first parity one
    EXPECT_EQ(
        verified_fragments(asker.ask(wire::encode_fragments_request(req)), blobs[1].first, params),
        expected);
    // at_least alone: any k good fragments.
    EXPECT_EQ(verified_fragments(
                  asker.ask(wire::encode_fragments_request({blobs[1].first, {}, req.at_least})),
                  blobs[1].first, params),
              expected);
    // More good fragments than the blob has left: not_found ("too damaged to serve").
    auto all = asker.ask(wire::encode_fragments_request(
        {blobs[1].first, {}, static_cast<uint8_t>(params.total_fragments())}));
    ASSERT_FALSE(all);
    EXPECT_EQ(all.error().code, Errc::not_found) << all.error().to_string();
    // A malformed at_least is refused with invalid_request, and the session survives it.
    Bytes bad = wire::encode_fragments_request(req);
    bad[33] = static_cast<uint8_t>(params.total_fragments() + 1);
    auto refused = asker.ask(bad);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument) << refused.error().to_string();
    EXPECT_NE(refused.error().message.find("at_least"), std::string::npos)
        << refused.error().message;
    EXPECT_EQ(
        verified_fragments(asker.ask(wire::encode_fragments_request(req)), blobs[1].first, params),
        expected);
  }

  Node& late = net.add(no_scrub);
  const bool synced = eventually(
      [&] {
        auto s = shard_sync(late, ShardId{0});
        return s && s->state == shards::SyncState::synced && s->held == blobs.size();
      },
      30s);
  const auto s = shard_sync(late, ShardId{0});
  ASSERT_TRUE(s);
  EXPECT_TRUE(synced) << "state " << shards::sync_state_name(s->state) << ", held " << s->held
                      << " of " << blobs.size() << ", last error: " << s->last_error;
  EXPECT_EQ(s->held, blobs.size())
      << "the blob with a damaged data fragment was not synced from its one holder";
  EXPECT_EQ(s->fetched_blobs, blobs.size());
  EXPECT_EQ(metric(late.service().metrics_text(), "cairn_sync_invalid_replies_total"), 0.0);
  // The late node holds complete, verified replicas: reads are local.
  const double remote_before = metric(late.service().metrics_text(), "cairn_fetch_remote_total");
  for (const auto& [id, payload] : blobs) {
    auto got = late.service().read_blob(id);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, payload);
  }
  EXPECT_EQ(metric(late.service().metrics_text(), "cairn_fetch_remote_total"), remote_before);

  // The holder still has its damage: parity was substituted, nothing repaired.
  net.remove(2);
  net.remove(1);
  auto store = shards::Store::open(net.dir(0) / "store", params);
  ASSERT_TRUE(store) << store.error().to_string();
  shards::SealingTransform seal(params, holder_id);
  auto health = shards::check_blob(**store, damaged, &seal);
  ASSERT_TRUE(health) << health.error().to_string();
  EXPECT_EQ(health->bad, std::vector<FragmentIndex>{damaged_fragment});
}

// A syncing node whose only live peer speaks fragments request version 1:
// the version 2 request (at_least = k) is refused, and the node asks that
// peer again without at_least, and only so from then on. The blobs sync.
TEST(NodeSync, APeerSpeakingOnlyRequestVersion1IsAskedWithoutAtLeast) {
  Cluster net;
  net.add(fast_maintenance);
  const auto params = net.chain().info().params;
  auto codec = erasure::Codec::create(params);
  ASSERT_TRUE(codec);
  auto rng = cairn::test::seeded_rng(34);
  std::vector<std::pair<BlobId, Bytes>> blobs;
  std::vector<erasure::CommittedBlob> encoded;
  for (int i = 0; i < 12; ++i) {
    Bytes payload = cairn::test::random_bytes(rng, 20000 + 1000 * size_t(i));
    auto put = net.node(0).service().put_blob(payload, {});
    ASSERT_TRUE(put) << put.error().to_string();
    auto blob = erasure::encode_and_commit(**codec, payload);
    ASSERT_TRUE(blob);
    ASSERT_EQ(blob->commitment.id, put->id);
    encoded.push_back(std::move(*blob));
    blobs.emplace_back(put->id, std::move(payload));
  }
  VersionOneHolder old_peer(net.chain(), std::move(encoded));
  net.remove(0);  // the version 1 peer is the only one left that holds the blobs

  Node& late = net.add(fast_maintenance);
  const bool synced = eventually(
      [&] {
        auto s = shard_sync(late, ShardId{0});
        return s && s->state == shards::SyncState::synced && s->held == blobs.size();
      },
      30s);
  const auto s = shard_sync(late, ShardId{0});
  ASSERT_TRUE(s);
  EXPECT_TRUE(synced) << "state " << shards::sync_state_name(s->state) << ", held " << s->held
                      << " of " << blobs.size() << ", last error: " << s->last_error;
  EXPECT_EQ(metric(late.service().metrics_text(), "cairn_sync_invalid_replies_total"), 0.0)
      << "refusing version 2 is not bad data";
  const std::vector<uint8_t> versions = old_peer.versions();
  const auto first_v1 = std::find(versions.begin(), versions.end(), wire::kFragmentsRequestV1);
  ASSERT_NE(first_v1, versions.end());
  EXPECT_GE(first_v1 - versions.begin(), 1) << "the first request carries at_least (version 2)";
  EXPECT_EQ(std::count(first_v1, versions.end(), wire::kFragmentsRequestV2), 0)
      << "after the refusal every request to that peer is version 1";
  EXPECT_GE(std::count(first_v1, versions.end(), wire::kFragmentsRequestV1),
            std::ptrdiff_t(blobs.size()));
  for (const auto& [id, payload] : blobs) {
    auto got = late.service().read_blob(id);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, payload);
  }
}

}  // namespace
}  // namespace cairn::node::test
