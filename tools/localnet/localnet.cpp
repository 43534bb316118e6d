#include "localnet/localnet.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "cairn/contracts/params_json.hpp"

namespace cairn::localnet {
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr int kStateVersion = 1;
// Status polling period while waiting for nodes: short against a block
// (100 ms and up) without making nine nodes' API threads busy.
constexpr auto kPollInterval = 250ms;
// How long a chain gets to open its database and listen.
constexpr auto kChainStartTimeout = 30s;

Error os_error(const std::string& what) { return Error{Errc::io_error, what + ": " + std::strerror(errno)}; }

// ---- processes ----

// Fields of /proc/PID/stat after the command name: state (field 3) and
// starttime (field 22). nullopt when the process does not exist.
struct ProcStat {
  char state = '?';
  uint64_t start_time = 0;
};
std::optional<ProcStat> proc_stat(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!f || !std::getline(f, text)) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces or ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(close + 1));
  ProcStat st;
  rest >> st.state;
  std::string skip;
  for (int field = 4; field < 22; ++field) rest >> skip;
  rest >> st.start_time;
  if (!rest) return std::nullopt;
  return st;
}

// Reaps `pid` when it is our child and has exited (a zombie would look
// alive to kill(2)); harmless otherwise.
void reap(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, WNOHANG);
}

// Starts `argv` in a new session with stdin from /dev/null and stdout and
// stderr appended to `log`. The child does only async-signal-safe work
// between fork and exec (the caller may have threads).
Result<ProcessRecord> spawn(const std::vector<std::string>& argv, const fs::path& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::string log_path = log.string();
  const pid_t pid = ::fork();
  if (pid < 0) return tl::unexpected(os_error("fork"));
  if (pid == 0) {
    ::setsid();  // own session and process group: outlives the caller, one kill(-pid) reaches all
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::closefrom(3);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  const auto st = proc_stat(pid);
  if (!st)
    return make_error(Errc::io_error, "started " + argv[0] + " (pid " + std::to_string(pid) +
                                          ") but cannot read /proc/" + std::to_string(pid) + "/stat");
  return ProcessRecord{pid, st->start_time};
}

void signal_group(const ProcessRecord& p, int sig) {
  if (!alive(p)) return;
  // The group exists once the child ran setsid(); right after fork it may not yet.
  if (::kill(-p.pid, sig) != 0) ::kill(p.pid, sig);
}

bool wait_gone(const ProcessRecord& p, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (alive(p)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

Status stop(const ProcessRecord& p, int first_signal, std::chrono::milliseconds grace, const std::string& what) {
  if (!alive(p)) return {};
  signal_group(p, first_signal);
  if (wait_gone(p, grace)) return {};
  signal_group(p, SIGKILL);
  if (wait_gone(p, 10s)) return {};
  return make_error(Errc::timeout, what + " (pid " + std::to_string(p.pid) + ") survived SIGKILL for 10 s");
}

// ---- ports ----

bool bind_loopback(uint16_t port, uint16_t* bound) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  if (ok && bound != nullptr) *bound = ntohs(addr.sin_port);
  ::close(fd);
  return ok;
}

// `preferred` when it is free and not handed out already, else a free port
// the kernel picks (never one in `taken`).
Result<uint16_t> pick_port(std::set<uint16_t>& taken, uint16_t preferred) {
  if (preferred != 0 && !taken.count(preferred) && bind_loopback(preferred, nullptr)) {
    taken.insert(preferred);
    return preferred;
  }
  for (int attempt = 0; attempt < 64; ++attempt) {
    uint16_t port = 0;
    if (!bind_loopback(0, &port)) return tl::unexpected(os_error("binding a free loopback port"));
    if (taken.insert(port).second) return port;
  }
  return make_error(Errc::io_error, "no free loopback port found");
}

bool accepts(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// ---- state file ----

json process_json(const ProcessRecord& p) { return json{{"pid", p.pid}, {"start_time", p.start_time}}; }
ProcessRecord process_from(const json& j) {
  return ProcessRecord{j.value("pid", pid_t{0}), j.value("start_time", uint64_t{0})};
}

Status save(const State& st) {
  json nodes = json::array();
  for (const NodeRecord& n : st.nodes) {
    nodes.push_back(json{{"index", n.index},
                         {"shard", n.shard},
                         {"p2p_port", n.p2p_port},
                         {"api_port", n.api_port},
                         {"id", n.id},
                         {"process", process_json(n.process)}});
  }
  const json j{
      {"version", kStateVersion},
      {"binary", st.binary},
      {"shards", st.shards},
      {"genesis", json{{"block_time_ms", st.genesis.block_time_ms},
                       {"blobs_per_shard", st.genesis.blobs_per_shard},
                       {"epoch_blocks", st.genesis.epoch_blocks},
                       {"deadline_blocks", st.genesis.deadline_blocks}}},
      {"node_settings", st.node_settings},
      {"chain", json{{"port", st.chain_port}, {"process", process_json(st.chain)}, {"sequencer", st.sequencer}}},
      {"nodes", std::move(nodes)}};
  const fs::path file = state_file(st.dir);
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out) return make_error(Errc::io_error, "writing " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) return make_error(Errc::io_error, "renaming " + tmp.string() + ": " + ec.message());
  return {};
}

// ---- node config ----

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A --set style value as a TOML literal: numbers, booleans, arrays and
// quoted strings as given, anything else as a string.
std::string toml_value(const std::string& v) {
  if (v.empty()) return toml_string(v);
  if (v == "true" || v == "false" || v.front() == '[' || v.front() == '"') return v;
  char* end = nullptr;
  (void)std::strtod(v.c_str(), &end);
  if (end != nullptr && *end == '\0') return v;
  return toml_string(v);
}

// The settings every localnet node gets beyond the defaults, as TOML
// literals by key: shorter refresh periods than a long-lived network. A
// localnet's nodes, shards and registrations change within seconds (up,
// kill, restart), and the defaults (5-30 s) would make a restarted node
// wait that long to find its shard's peers.
std::map<std::string, std::string> localnet_defaults() {
  return {{"chain.registry_refresh_ms", "500"},
          {"discovery.chain_refresh_ms", "500"},
          {"discovery.bootstrap_retry_ms", "1000"},
          {"gossip.heartbeat_interval_ms", "200"},
          {"fetch.hedge_after_ms", "500"}};
}

Status write_config(const State& st, uint32_t i) {
  const NodeRecord& n = st.nodes[i];
  std::map<std::string, std::string> keys = localnet_defaults();
  for (const std::string& kv : st.node_settings) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return make_error(Errc::invalid_argument, "node setting '" + kv + "': expected KEY=VALUE");
    }
    keys[kv.substr(0, eq)] = toml_value(kv.substr(eq + 1));
  }
  // Every other node, those of its own shard first (discovery keeps the
  // ones it needs: its shard's, and those of shards it uploads into).
  std::string bootstrap;
  for (const bool same : {true, false}) {
    for (const NodeRecord& o : st.nodes) {
      if (o.index == n.index || (o.shard == n.shard) != same) continue;
      bootstrap += (bootstrap.empty() ? "" : ", ") + toml_string(o.p2p_address());
    }
  }
  std::ofstream out(st.config_file(i), std::ios::trunc);
  out << "# " << n.name() << " of the localnet in " << st.dir.string() << "\n"
      << "# Written by `cairn localnet` at every start of this node (ports may change);\n"
      << "# an ordinary `cairn node --config` file (docs/config.md).\n"
      << "data_dir = " << toml_string(st.data_dir(i).string()) << "\n"
      << "listen = " << toml_string(n.p2p_address()) << "\n"
      << "shards = [" << n.shard << "]\n"
      << "bootstrap = [" << bootstrap << "]\n"
      << "api.listen = " << toml_string("127.0.0.1:" + std::to_string(n.api_port)) << "\n"
      << "chain.backend = " << toml_string(st.chain_url()) << "\n";
  for (const auto& [k, v] : keys) out << k << " = " << v << "\n";
  if (!out) return make_error(Errc::io_error, "writing " + st.config_file(i).string());
  return {};
}

// ---- starting ----

Status start_chain(State& st, std::set<uint16_t>& taken) {
  if (alive(st.chain)) return {};
  auto picked = pick_port(taken, st.chain_port);
  if (!picked) return tl::unexpected(picked.error());
  const uint16_t port = *picked;
  st.chain_port = port;
  std::error_code ec;
  fs::create_directories(st.chain_dir(), ec);
  if (ec) return make_error(Errc::io_error, "creating " + st.chain_dir().string() + ": " + ec.message());
  std::vector<std::string> argv{st.binary,
                                "devchain",
                                "--listen",
                                "127.0.0.1:" + std::to_string(port),
                                "--data-dir",
                                (st.chain_dir() / "data").string(),
                                "--localnet",
                                "--block-time-ms",
                                std::to_string(st.genesis.block_time_ms)};
  if (st.genesis.blobs_per_shard != 0)
    argv.insert(argv.end(), {"--blobs-per-shard", std::to_string(st.genesis.blobs_per_shard)});
  if (st.genesis.epoch_blocks != 0)
    argv.insert(argv.end(), {"--epoch-blocks", std::to_string(st.genesis.epoch_blocks)});
  if (st.genesis.deadline_blocks != 0)
    argv.insert(argv.end(), {"--deadline-blocks", std::to_string(st.genesis.deadline_blocks)});
  auto rec_r = spawn(argv, st.chain_log());
  if (!rec_r) return tl::unexpected(rec_r.error());
  const auto rec = *rec_r;
  st.chain = rec;
  CAIRN_TRY_STATUS(save(st));
  const auto deadline = std::chrono::steady_clock::now() + kChainStartTimeout;
  while (!accepts(port)) {
    if (!alive(st.chain) || std::chrono::steady_clock::now() > deadline) {
      return make_error(Errc::timeout, std::string("the dev chain ") +
                                           (alive(st.chain) ? "did not listen within 30 s" : "exited") + "; " +
                                           st.chain_log().string() + " ends with:\n" + log_tail(st.chain_log()));
    }
    std::this_thread::sleep_for(50ms);
  }
  return {};
}

// Gives node `n` its recorded ports when they are free, else new ones.
Status assign_ports(NodeRecord& n, std::set<uint16_t>& taken) {
  auto p2p = pick_port(taken, n.p2p_port);
  if (!p2p) return tl::unexpected(p2p.error());
  auto api = pick_port(taken, n.api_port);
  if (!api) return tl::unexpected(api.error());
  n.p2p_port = *p2p;
  n.api_port = *api;
  return {};
}

// Starts node i unless it runs; its ports must have been assigned.
Status start_node(State& st, uint32_t i) {
  NodeRecord& n = st.nodes[i];
  if (alive(n.process)) return {};
  std::error_code ec;
  fs::create_directories(st.node_dir(i), ec);
  if (ec) return make_error(Errc::io_error, "creating " + st.node_dir(i).string() + ": " + ec.message());
  CAIRN_TRY_STATUS(write_config(st, i));
  auto rec_r = spawn({st.binary, "node", "--config", st.config_file(i).string()}, st.log_file(i));
  if (!rec_r) return tl::unexpected(rec_r.error());
  const auto rec = *rec_r;
  n.process = rec;
  return save(st);
}

// Ports held by running processes of the network (kept as they are).
std::set<uint16_t> ports_in_use(const State& st) {
  std::set<uint16_t> taken;
  if (alive(st.chain)) taken.insert(st.chain_port);
  for (const NodeRecord& n : st.nodes) {
    if (alive(n.process)) taken.insert({n.p2p_port, n.api_port});
  }
  return taken;
}

bool lists_id(const json& peers, const std::string& id) {
  if (!peers.is_array()) return false;
  return std::any_of(peers.begin(), peers.end(),
                     [&](const json& p) { return p.is_object() && p.value("id", std::string()) == id; });
}

std::string reason_from(const State& st, uint32_t i, const Result<json>& status) {
  const NodeRecord& n = st.nodes[i];
  if (!alive(n.process)) return "is not running";
  if (!status) return "does not answer on " + n.api_url() + " (" + status.error().message + ")";
  const json& s = *status;
  if (!s.contains("chain") || !s["chain"].value("registered", false)) return "is not registered on the chain yet";
  const json syncs = s.value("sync", json::array());
  const json* sync = nullptr;
  for (const json& y : syncs) {
    if (y.value("shard", uint32_t{0xffffffff}) == n.shard) sync = &y;
  }
  // A shard no blob has reached yet has nothing to sync (the node reports
  // no sync state for it until it opens).
  const auto params = contracts::params_from_json(s["chain"].value("params", json::object()));
  if (!params) return "reports no valid network parameters (" + params.error().message + ")";
  const uint64_t per_shard = params->blobs_per_shard;
  const bool open = s["chain"].value("blob_count", uint64_t{0}) > uint64_t{n.shard} * per_shard;
  if (sync == nullptr && open) return "reports no sync state for shard " + std::to_string(n.shard);
  if (sync != nullptr &&
      (sync->value("state", std::string()) != "synced" || sync->value("remaining", uint64_t{1}) != 0)) {
    return "is syncing shard " + std::to_string(n.shard) + " (" + sync->value("state", std::string("?")) + ", " +
           std::to_string(sync->value("remaining", uint64_t{0})) + " blobs remaining)";
  }
  for (const NodeRecord& o : st.nodes) {
    if (o.index == i || o.shard != n.shard || o.id.empty() || !alive(o.process)) continue;
    if (!lists_id(s.value("peers", json::array()), o.id)) return "is not connected to " + o.name() + " yet";
  }
  return "";
}

}  // namespace

// ---- public ----

fs::path state_file(const fs::path& dir) { return dir / "localnet.json"; }

bool alive(const ProcessRecord& p) {
  if (p.pid <= 0) return false;
  reap(p.pid);
  const auto st = proc_stat(p.pid);
  return st && st->state != 'Z' && st->state != 'X' && st->start_time == p.start_time;
}

Result<State> load(const fs::path& dir) {
  const fs::path file = state_file(dir);
  std::ifstream in(file);
  if (!in) return make_error(Errc::not_found, "no localnet in " + dir.string() + " (" + file.string() + " is missing)");
  const json j = json::parse(in, nullptr, false);
  if (!j.is_object() || j.value("version", 0) != kStateVersion || !j.contains("nodes") || !j["nodes"].is_array()) {
    return make_error(Errc::corruption,
                      file.string() + " is not a localnet state file of version " + std::to_string(kStateVersion));
  }
  State st;
  st.dir = dir;
  st.binary = j.value("binary", std::string());
  st.shards = j.value("shards", uint32_t{1});
  const json genesis = j.value("genesis", json::object());
  st.genesis.block_time_ms = genesis.value("block_time_ms", uint32_t{200});
  st.genesis.blobs_per_shard = genesis.value("blobs_per_shard", uint64_t{0});
  st.genesis.epoch_blocks = genesis.value("epoch_blocks", uint32_t{0});
  st.genesis.deadline_blocks = genesis.value("deadline_blocks", uint32_t{0});
  st.node_settings = j.value("node_settings", std::vector<std::string>{});
  st.chain_port = j["chain"].value("port", uint16_t{0});
  st.chain = process_from(j["chain"].value("process", json::object()));
  st.sequencer = j["chain"].value("sequencer", std::string());
  for (const json& n : j["nodes"]) {
    NodeRecord r;
    r.index = n.value("index", uint32_t{0});
    r.shard = n.value("shard", uint32_t{0});
    r.p2p_port = n.value("p2p_port", uint16_t{0});
    r.api_port = n.value("api_port", uint16_t{0});
    r.id = n.value("id", std::string());
    r.process = process_from(n.value("process", json::object()));
    if (r.index != st.nodes.size()) return make_error(Errc::corruption, file.string() + ": nodes out of order");
    st.nodes.push_back(std::move(r));
  }
  return st;
}

Result<State> up(const Settings& s) {
  if (s.nodes == 0 || s.shards == 0)
    return make_error(Errc::invalid_argument, "--nodes and --shards must be at least 1");
  if (s.nodes < s.shards) {
    return make_error(Errc::invalid_argument, std::to_string(s.nodes) + " nodes cannot serve " +
                                                  std::to_string(s.shards) +
                                                  " shards: give at least one node per shard");
  }
  std::error_code ec;
  fs::create_directories(s.dir, ec);
  if (ec) return make_error(Errc::io_error, "creating " + s.dir.string() + ": " + ec.message());
  const fs::path dir = fs::absolute(s.dir);

  State st;
  auto existing = load(dir);
  if (existing) {
    st = std::move(*existing);
    if (st.nodes.size() != s.nodes || st.shards != s.shards) {
      return make_error(Errc::invalid_argument,
                        dir.string() + " holds a localnet of " + std::to_string(st.nodes.size()) + " nodes over " +
                            std::to_string(st.shards) + " shards, not " + std::to_string(s.nodes) + " over " +
                            std::to_string(s.shards) + ": use another --dir, or `cairn localnet down` and remove it");
    }
  } else if (existing.error().code != Errc::not_found) {
    return tl::unexpected(existing.error());
  } else {
    st.dir = dir;
    st.shards = s.shards;
    st.genesis = s.genesis;
    for (uint32_t i = 0; i < s.nodes; ++i) {
      NodeRecord n;
      n.index = i;
      n.shard = i % s.shards;
      st.nodes.push_back(n);
    }
  }
  st.binary = s.binary;
  if (!s.node_settings.empty()) st.node_settings = s.node_settings;

  auto start_all = [&]() -> Status {
    std::set<uint16_t> taken = ports_in_use(st);
    // Ports for the nodes that will start are chosen before any starts, so
    // every bootstrap list names final addresses.
    CAIRN_TRY_STATUS(start_chain(st, taken));
    for (NodeRecord& n : st.nodes) {
      if (!alive(n.process)) CAIRN_TRY_STATUS(assign_ports(n, taken));
    }
    for (uint32_t i = 0; i < st.nodes.size(); ++i) CAIRN_TRY_STATUS(start_node(st, i));
    return wait_ready(st, {}, s.ready_timeout);
  };
  // Whatever goes wrong (a JSON surprise included), nothing is left running.
  Status started;
  try {
    started = start_all();
  } catch (const std::exception& e) {
    started = make_error(Errc::internal, std::string("localnet up: ") + e.what());
  }
  if (!started) {
    (void)down(dir);
    return tl::unexpected(started.error());
  }
  CAIRN_TRY_STATUS(save(st));
  return st;
}

Status down(const fs::path& dir, std::chrono::milliseconds grace) {
  auto st = load(fs::absolute(dir));
  if (!st) return st.error().code == Errc::not_found ? Status{} : Status(tl::unexpected(st.error()));
  // Every node at once (they drain in parallel), then the chain they use.
  for (const NodeRecord& n : st->nodes) signal_group(n.process, SIGTERM);
  std::string failures;
  for (const NodeRecord& n : st->nodes) {
    if (auto r = stop(n.process, SIGTERM, grace, n.name()); !r) failures += r.error().message + "; ";
  }
  if (auto r = stop(st->chain, SIGTERM, grace, "the dev chain"); !r) failures += r.error().message;
  if (!failures.empty()) return make_error(Errc::timeout, failures);
  return {};
}

Result<uint32_t> parse_node(const State& st, const std::string& text) {
  std::string digits = text.rfind("node", 0) == 0 ? text.substr(4) : text;
  if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(digits) >= st.nodes.size()) {
    return make_error(Errc::invalid_argument,
                      "no node '" + text + "': the localnet has node0 .. node" + std::to_string(st.nodes.size() - 1));
  }
  return static_cast<uint32_t>(std::stoul(digits));
}

Status kill_node(const fs::path& dir, uint32_t i, int signal) {
  auto st_r = load(fs::absolute(dir));
  if (!st_r) return tl::unexpected(st_r.error());
  const auto st = *st_r;
  if (i >= st.nodes.size()) return make_error(Errc::invalid_argument, "no node " + std::to_string(i));
  return stop(st.nodes[i].process, signal, 20s, st.nodes[i].name());
}

Result<State> restart_node(const fs::path& dir, uint32_t i, std::chrono::milliseconds timeout) {
  auto st_r = load(fs::absolute(dir));
  if (!st_r) return tl::unexpected(st_r.error());
  auto st = std::move(*st_r);
  if (i >= st.nodes.size()) return make_error(Errc::invalid_argument, "no node " + std::to_string(i));
  if (!alive(st.chain)) {
    return make_error(Errc::conflict, "the dev chain of " + st.dir.string() +
                                          " is not running: start the network with `cairn localnet up`");
  }
  CAIRN_TRY_STATUS(stop(st.nodes[i].process, SIGTERM, 20s, st.nodes[i].name()));
  std::set<uint16_t> taken = ports_in_use(st);
  CAIRN_TRY_STATUS(assign_ports(st.nodes[i], taken));
  CAIRN_TRY_STATUS(start_node(st, i));
  CAIRN_TRY_STATUS(wait_ready(st, {i}, timeout));
  CAIRN_TRY_STATUS(save(st));
  return st;
}

Result<json> node_status(const State& st, uint32_t i) {
  httplib::Client c("127.0.0.1", st.nodes.at(i).api_port);
  c.set_connection_timeout(2);
  c.set_read_timeout(5);
  auto r = c.Get("/v1/status");
  if (!r) return make_error(Errc::timeout, httplib::to_string(r.error()));
  if (r->status != 200) return make_error(Errc::timeout, "HTTP " + std::to_string(r->status));
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object()) return make_error(Errc::corruption, "status is not a JSON object");
  return j;
}

std::string not_ready_reason(const State& st, uint32_t i) { return reason_from(st, i, node_status(st, i)); }

Status wait_ready(State& st, const std::vector<uint32_t>& which, std::chrono::milliseconds timeout) {
  std::vector<uint32_t> nodes = which;
  if (nodes.empty()) {
    for (const NodeRecord& n : st.nodes) nodes.push_back(n.index);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Ids first: a node's mesh check needs the ids of its shard's other nodes.
    std::map<uint32_t, Result<json>> statuses;
    for (const NodeRecord& n : st.nodes) {
      if (!alive(n.process)) continue;
      auto s = node_status(st, n.index);
      if (s && s->contains("id") && (*s)["id"].is_string()) st.nodes[n.index].id = (*s)["id"].get<std::string>();
      if (s) st.sequencer = s->value("chain", json::object()).value("sequencer", st.sequencer);
      statuses.emplace(n.index, std::move(s));
    }
    uint32_t waiting = 0;
    std::string reason;
    for (uint32_t i : nodes) {
      auto it = statuses.find(i);
      reason = reason_from(st, i,
                           it == statuses.end() ? Result<json>(make_error(Errc::timeout, "not running")) : it->second);
      if (!reason.empty()) {
        waiting = i;
        break;
      }
    }
    if (reason.empty()) return save(st);
    const bool exited = !alive(st.nodes[waiting].process);
    if (exited || std::chrono::steady_clock::now() > deadline) {
      const NodeRecord& n = st.nodes[waiting];
      return make_error(exited ? Errc::io_error : Errc::timeout,
                        n.name() + " (shard " + std::to_string(n.shard) + ", pid " + std::to_string(n.process.pid) +
                            ") " + reason + (exited ? "" : " after " + std::to_string(timeout.count() / 1000) + " s") +
                            "; " + st.log_file(waiting).string() + " ends with:\n" + log_tail(st.log_file(waiting)));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::string log_tail(const fs::path& file, size_t lines) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) return "(no log at " + file.string() + ")\n";
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 64 * 1024);
  in.seekg(from);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = text.size();
  if (at > 0 && text[at - 1] == '\n') --at;
  for (size_t n = 0; n < lines && at != std::string::npos && at > 0; ++n) at = text.rfind('\n', at - 1);
  const std::string tail = at == std::string::npos ? text : text.substr(at + 1);
  return tail.empty() ? "(empty log)\n" : tail;
}

std::vector<std::string> client_argv(const State& st, uint32_t i, std::vector<std::string> args) {
  std::vector<std::string> argv{st.binary};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--node", st.nodes.at(i).api_url()});
  return argv;
}

json to_json(const State& st) {
  json nodes = json::array();
  for (const NodeRecord& n : st.nodes) {
    const bool running = alive(n.process);
    nodes.push_back(json{{"node", n.name()},
                         {"id", n.id},
                         {"shard", n.shard},
                         {"p2p", n.p2p_address()},
                         {"api", n.api_url()},
                         {"pid", n.process.pid},
                         {"running", running},
                         {"dir", st.node_dir(n.index).string()},
                         {"log", st.log_file(n.index).string()}});
  }
  return json{{"dir", st.dir.string()},
              {"chain", json{{"url", st.chain_url()},
                             {"sequencer", st.sequencer},
                             {"pid", st.chain.pid},
                             {"running", alive(st.chain)},
                             {"log", st.chain_log().string()}}},
              {"nodes", std::move(nodes)}};
}

std::string to_table(const State& st) {
  std::ostringstream out;
  out << "chain  " << st.chain_url() << "  pid " << st.chain.pid << (alive(st.chain) ? "" : " (stopped)")
      << "  sequencer " << (st.sequencer.empty() ? "?" : st.sequencer) << "\n";
  out << std::left << std::setw(8) << "node" << std::setw(18) << "id" << std::setw(7) << "shard" << std::setw(17)
      << "p2p" << std::setw(24) << "api" << std::setw(9) << "pid"
      << "state\n";
  for (const NodeRecord& n : st.nodes) {
    out << std::setw(8) << n.name() << std::setw(18) << (n.id.empty() ? "?" : n.id.substr(0, 16)) << std::setw(7)
        << n.shard << std::setw(17) << n.p2p_address() << std::setw(24) << n.api_url() << std::setw(9) << n.process.pid
        << (alive(n.process) ? "running" : "stopped") << "\n";
  }
  return out.str();
}

}  // namespace cairn::localnet
