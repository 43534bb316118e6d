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

#include "cairn/contracts/tx.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/p2p/request.hpp"
#include "cairn/p2p/transport.hpp"
#include "node/cluster.hpp"

namespace cairn::node::test {
namespace {

// A p2p host registered on the chain for shard 0 that holds every fragments
// request it gets and answers none of them.
class SilentHolder {
 public:
  SilentHolder(contracts::Chain& chain, const SigningKey& key) : key_(key), work_(io_.get_executor()) {
    thread_ = std::thread([this] { io_.run(); });
    run([&] {
      const asio::any_io_executor ex = io_.get_executor();
      transport_ = p2p::make_tcp_transport(ex);
      p2p::P2pSettings s;
      s.network_id = chain.info().chain_id;
      host_ = std::make_unique<p2p::Host>(ex, *transport_, p2p::steady_clock(), key_, s, 7);
      rr_ = std::make_unique<p2p::RequestResponse>(*host_);
      (void)rr_->handle(p2p::MessageType::fragments_request,
                        [this](const NodeId&, ByteSpan, p2p::Responder r) { held_.push_back(std::move(r)); });
      address_ = *host_->listen("127.0.0.1:0");
    });
    auto nonce = chain.next_nonce(key_.public_key());
    auto tx = contracts::make_register_node(key_, chain.info().chain_id, *nonce, address_, {ShardId{0}});
    auto receipt = chain.submit_and_wait(tx, std::chrono::seconds(10));
    EXPECT_TRUE(receipt && receipt->ok());
  }
  ~SilentHolder() {
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
    run([&] { n = held_.size(); });
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
    if (std::all_of(ids.begin(), ids.end(), [&](const NodeId& id) { return k.public_key() < id; })) return k;
  }
}

double metric(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  return at == std::string::npos ? 0 : std::stod(text.substr(at + name.size() + 2));
}

TEST(Fetch, AHolderThatNeverAnswersIsReplacedAfterTheHedgeDelay) {
  Cluster net;
  net.add();
  net.add();
  ASSERT_TRUE(eventually([&] { return net.meshed(); }));
  auto rng = cairn::test::seeded_rng(71);
  const Bytes file = cairn::test::random_bytes(rng, 1024 * 1024);
  PutOptions opts;
  opts.min_replicas = 2;
  auto pf = net.node(0).service().put_file(file, opts);
  ASSERT_TRUE(pf) << pf.error().to_string();

  SilentHolder silent(net.chain(), key_below({net.node(0).id(), net.node(1).id()}));
  // The reader holds nothing and knows the holders only from the registry.
  Node& reader = net.add([](NodeSettings& s) {
    s.shards = std::vector<ShardId>{ShardId{9}};
    s.bootstrap.clear();
    s.fetch.hedge_after = std::chrono::milliseconds(300);
    s.chain.registry_refresh = std::chrono::milliseconds(100);
  });
  ASSERT_TRUE(eventually([&] {
    return net.chain().nodes(ShardId{0}).value_or(std::vector<contracts::NodeRecord>{}).size() == 3;
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the reader's registry view refreshes

  const auto start = std::chrono::steady_clock::now();
  Bytes out;
  auto st = reader.service().read(pf->id, {}, [&](ByteSpan b) -> Status {
    out.insert(out.end(), b.begin(), b.end());
    return {};
  });
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(out, file);
  EXPECT_GT(silent.requests(), 0u) << "the silent holder was never asked";
  EXPECT_GT(metric(reader.service().metrics_text(), "cairn_fetch_hedged_total"), 0.0);
  // Far below the 10 s request timeout the silent holder would otherwise cost.
  EXPECT_LT(took, std::chrono::seconds(8));
}

}  // namespace
}  // namespace cairn::node::test
