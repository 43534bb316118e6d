// The read path against a misbehaving holder: a registered node that
// accepts fragment requests and never answers. Reads must not wait for it:
// its fragments are asked of another holder after fetch.hedge_after.

#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <future>
#include <thread>

#include "../contracts/chain_test_util.hpp"
#include "cairn/contracts/tx.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/p2p/request.hpp"
#include "cairn/p2p/transport.hpp"
#include "cairn/shards/store.hpp"
#include "node/cluster.hpp"
#include "node/wire.hpp"
#include "support/test_util.hpp"

namespace cairn::node::test {
namespace {

using cairn::test::metric;

// A p2p host registered on the chain for shard 0 that misbehaves on every
// fragments request: it holds the request and never answers (silent), or
// answers with well-formed bytes of some other blob (lying).
class FakeHolder {
 public:
  enum class Mode { silent, lying };

  FakeHolder(contracts::Chain& chain, const SigningKey& key, Mode mode)
      : key_(key), mode_(mode), work_(io_.get_executor()) {
    thread_ = std::thread([this] { io_.run(); });
    run([&] {
      const asio::any_io_executor ex = io_.get_executor();
      transport_ = p2p::make_tcp_transport(ex);
      p2p::P2pSettings s;
      s.network_id = chain.info().chain_id;
      host_ = std::make_unique<p2p::Host>(ex, *transport_, p2p::real_clock(), key_, s, 7);
      rr_ = std::make_unique<p2p::RequestResponse>(*host_);
      const erasure::NetworkParams params = chain.info().params;
      (void)rr_->handle(
          p2p::MessageType::fragments_request,
          [this, params](const NodeId&, ByteSpan payload, p2p::Responder r) {
            ++requests_;
            if (mode_ == Mode::silent) {
              held_.push_back(std::move(r));
              return;
            }
            auto req = wire::decode_fragments_request(payload, params.total_fragments());
            auto rng = cairn::test::seeded_rng(requests_);
            std::vector<Hash32> roots(params.total_fragments());
            for (auto& root : roots) root = Hash32{static_cast<uint8_t>(rng())};
            const Bytes junk = cairn::test::random_bytes(rng, params.fragment_size());
            std::vector<wire::FragmentView> views;
            for (uint8_t f : req->fragments) views.push_back({f, junk});
            Bytes out;
            wire::encode_fragments_response(out, 1000, params.fragment_size(), roots, views);
            (void)r.respond(out);
          });
      address_ = *host_->listen("127.0.0.1:0");
    });
    auto nonce = chain.next_nonce(key_.public_key());
    auto tx =
        contracts::make_register_node(key_, chain.info().chain_id, *nonce, address_, {ShardId{0}});
    auto receipt = contracts::test::submit_and_wait(chain, tx, std::chrono::seconds(10));
    EXPECT_TRUE(receipt && receipt->ok());
  }
  ~FakeHolder() {
    run([&] {
      held_.clear();
      rr_.reset();
      host_->shutdown();
    });
    run([&] { host_.reset(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }
  size_t requests() {
    size_t n = 0;
    run([&] { n = requests_; });
    return n;
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
  Mode mode_;
  size_t requests_ = 0;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<p2p::Transport> transport_;
  std::unique_ptr<p2p::Host> host_;
  std::unique_ptr<p2p::RequestResponse> rr_;
  std::vector<p2p::Responder> held_;
  std::string address_;
};

// The registry lists nodes by id: a key below `ids` puts the silent holder first.
SigningKey key_below(const std::vector<NodeId>& ids) {
  for (;;) {
    SigningKey k = SigningKey::generate();
    if (std::all_of(ids.begin(), ids.end(), [&](const NodeId& id) { return k.public_key() < id; }))
      return k;
  }
}

// Uploads a 1 MiB file to a two-node network, registers a fake holder
// listed first in the registry, and reads the file through a node that holds
// nothing. Returns the reader's metrics text; `took` is the read's time.
std::string read_past_a_fake_holder(FakeHolder::Mode mode, size_t& fake_requests,
                                    std::chrono::steady_clock::duration& took) {
  Cluster net;
  net.add();
  net.add();
  EXPECT_TRUE(eventually([&] { return net.meshed(); }));
  auto rng = cairn::test::seeded_rng(71);
  const Bytes file = cairn::test::random_bytes(rng, 1024 * 1024);
  PutOptions opts;
  opts.min_replicas = 2;
  auto pf = net.node(0).service().put_file(file, opts);
  EXPECT_TRUE(pf) << pf.error().to_string();
  if (!pf) return {};

  FakeHolder fake(net.chain(), key_below({net.node(0).id(), net.node(1).id()}), mode);
  // The reader holds nothing and knows the holders only from the registry.
  Node& reader = net.add([](NodeSettings& s) {
    s.shards = std::vector<ShardId>{ShardId{9}};
    s.bootstrap.clear();
    s.fetch.hedge_after = std::chrono::milliseconds(300);
    s.chain.registry_refresh = std::chrono::milliseconds(100);
  });
  EXPECT_TRUE(eventually([&] {
    return net.chain().nodes(ShardId{0}).value_or(std::vector<contracts::NodeRecord>{}).size() == 3;
  }));
  std::this_thread::sleep_for(
      std::chrono::milliseconds(300));  // the reader's registry view refreshes

  const auto start = std::chrono::steady_clock::now();
  Bytes out;
  auto st = reader.service().read(pf->id, {}, [&](ByteSpan b) -> Status {
    out.insert(out.end(), b.begin(), b.end());
    return {};
  });
  took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(out, file);
  fake_requests = fake.requests();
  return reader.service().metrics_text();
}

TEST(Fetch, AHolderThatNeverAnswersIsReplacedAfterTheHedgeDelay) {
  size_t asked = 0;
  std::chrono::steady_clock::duration took{};
  const std::string metrics = read_past_a_fake_holder(FakeHolder::Mode::silent, asked, took);
  EXPECT_GT(asked, 0u) << "the silent holder was never asked";
  EXPECT_GT(metric(metrics, "cairn_fetch_hedged_total"), 0.0);
  // Far below the 10 s request timeout the silent holder would otherwise cost.
  EXPECT_LT(took, std::chrono::seconds(8));
}

TEST(Fetch, AHolderServingWrongBytesIsCaughtAndAvoided) {
  size_t asked = 0;
  std::chrono::steady_clock::duration took{};
  const std::string metrics = read_past_a_fake_holder(FakeHolder::Mode::lying, asked, took);
  EXPECT_GT(asked, 0u) << "the lying holder was never asked";
  // Caught once: the holder is not asked again for that blob, and its score
  // drops (25 points per bad answer).
  EXPECT_GT(metric(metrics, "cairn_fetch_bad_fragments_total"), 0.0);
  EXPECT_EQ(metric(metrics, "cairn_fetch_failures_total"), 0.0);
}

// The only holder of a blob has one of its data fragments damaged (wrong
// bytes under a valid store checksum) and does not scrub. A read asks it for
// the k data fragments with at_least = k, so it substitutes a parity
// fragment: the read takes exactly one request.
TEST(Fetch, AHolderWithADamagedDataFragmentAnswersAReadWithParityInOneRequest) {
  const auto no_scrub = [](NodeSettings& s) { s.storage.scrub.enabled = false; };
  Cluster net;
  net.add(no_scrub);
  auto rng = cairn::test::seeded_rng(72);
  const Bytes payload = cairn::test::random_bytes(rng, 70000);
  auto put = net.node(0).service().put_blob(payload, {});
  ASSERT_TRUE(put) << put.error().to_string();
  net.remove(0);
  const auto params = net.chain().info().params;
  {
    auto store = shards::Store::open(net.dir(0) / "store", params);
    ASSERT_TRUE(store) << store.error().to_string();
    auto rec = (*store)->get_blob(put->id);
    ASSERT_TRUE(rec);
    ASSERT_TRUE((*store)->put_fragment(rec->index, FragmentIndex{1},
                                       cairn::test::random_bytes(rng, params.fragment_size())));
    ASSERT_TRUE((*store)->close());
  }
  Node& holder = net.add([&](NodeSettings& s) {
    no_scrub(s);
    s.data_dir = (std::filesystem::path(s.data_dir).parent_path() / "node0")
                     .string();  // the same node again
  });
  Node& reader = net.add([](NodeSettings& s) { s.shards = std::vector<ShardId>{ShardId{9}}; });
  const double served = metric(holder.service().metrics_text(), "cairn_serve_requests_total");
  auto got = reader.service().read_blob(put->id);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, payload);
  EXPECT_EQ(metric(holder.service().metrics_text(), "cairn_serve_requests_total") - served, 1.0)
      << "the damaged holder was asked more than once";
  EXPECT_EQ(metric(reader.service().metrics_text(), "cairn_fetch_bad_fragments_total"), 0.0);
}

}  // namespace
}  // namespace cairn::node::test
