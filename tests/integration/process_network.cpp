#include "integration/process_network.hpp"

#include <httplib.h>

#include <thread>

namespace cairn::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

ProcessNetwork::ProcessNetwork(TempDir& tmp, std::vector<std::string> chain_args) : tmp_(tmp) {
  chain_port_ = free_port();
  std::vector<std::string> argv{cairn_binary(),        "devchain",   "--listen",
                                hostport(chain_port_), "--data-dir", (tmp_ / "chain").string()};
  argv.insert(argv.end(), chain_args.begin(), chain_args.end());
  chain_ = std::make_unique<Process>(argv, tmp_ / "chain-logs");
  EXPECT_TRUE(chain_->wait_for_output("running", kNodeStartTimeout)) << chain_->stderr_text();
}

ProcessNetwork::Node& ProcessNetwork::start(size_t i, std::vector<std::string> extra) {
  if (i == nodes_.size()) {
    Node n;
    n.dir = tmp_ / ("node" + std::to_string(i));
    n.p2p = free_port();
    n.api = free_port();
    n.extra = std::move(extra);
    nodes_.push_back(std::move(n));
  }
  Node& n = nodes_[i];
  std::vector<std::string> argv{cairn_binary(), "node",
                                "--data-dir",   n.dir.string(),
                                "--listen",     hostport(n.p2p),
                                "--api",        hostport(n.api),
                                "--chain",      "http://" + hostport(chain_port_),
                                "--set",        "discovery.chain_refresh_ms=300",
                                "--set",        "chain.registry_refresh_ms=300",
                                "--set",        "gossip.heartbeat_interval_ms=200",
                                "--set",        "fetch.hedge_after_ms=500"};
  if (i > 0) argv.insert(argv.end(), {"--bootstrap", hostport(nodes_[0].p2p)});
  argv.insert(argv.end(), n.extra.begin(), n.extra.end());
  n.process = std::make_unique<Process>(argv, n.dir.string() + "-logs-" + std::to_string(n.runs++));
  EXPECT_TRUE(n.process->wait_for_output("running", kNodeStartTimeout))
      << "node " << i << " stdout:\n"
      << n.process->stdout_text() << "\nstderr:\n"
      << n.process->stderr_text();
  return n;
}

// A JSON object; an empty one when the node does not answer (so
// `.value(key, default)` works on either).
nlohmann::json ProcessNetwork::status(size_t i) {
  auto r = run({cairn_binary(), "status", "--node", node(i).url(), "--json"}, 10s);
  if (r.exit_code != 0) return nlohmann::json::object();
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

std::string ProcessNetwork::metrics(size_t i) {
  httplib::Client c("127.0.0.1", node(i).api);
  c.set_read_timeout(5);
  auto r = c.Get("/metrics");
  return r && r->status == 200 ? "\n" + r->body : std::string();
}

bool ProcessNetwork::meshed() {
  size_t live = 0;
  for (auto& n : nodes_) live += n.process && n.process->running() ? 1u : 0u;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].process || !nodes_[i].process->running()) continue;
    auto s = status(i);
    if (!s.is_object() || !s["chain"]["registered"].get<bool>() || s["peers"].size() + 1 < live)
      return false;
  }
  return true;
}

bool ProcessNetwork::wait_meshed(std::chrono::seconds limit) {
  return wait_until([&] { return meshed(); }, limit);
}

double metric_value(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

bool wait_until(const std::function<bool()>& pred, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return pred();
}

std::string put(const std::string& url, const fs::path& file, std::vector<std::string> extra) {
  std::vector<std::string> argv{cairn_binary(), "put", file.string(), "--node", url, "--json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto r = run(argv, 60s);
  if (r.exit_code != 0) return {};
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_object() && j.contains("id") ? j["id"].get<std::string>() : std::string();
}

::testing::AssertionResult got(const std::string& url, const std::string& id, const fs::path& out,
                               const Bytes& want) {
  std::error_code ec;
  fs::remove(out, ec);
  auto r = run({cairn_binary(), "get", id, "-o", out.string(), "--node", url, "--quiet"}, 60s);
  if (r.exit_code != 0) {
    return ::testing::AssertionFailure()
           << "cairn get " << id << " via " << url << " exited " << r.exit_code << ": " << r.err;
  }
  if (read_file(out) != want)
    return ::testing::AssertionFailure() << "cairn get " << id << ": bytes differ";
  return ::testing::AssertionSuccess();
}

}  // namespace cairn::test
