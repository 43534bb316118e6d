#include "node/config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "support/test_util.hpp"

namespace cairn::node {
namespace {

TEST(Config, DefaultsRoundTripThroughToml) {
  NodeSettings defaults;
  defaults.data_dir = "/var/lib/cairn";
  NodeSettings other;
  other.upload.min_replicas = 9;
  other.gossip.prune_backoff = std::chrono::seconds(1);
  other.shards = std::vector<ShardId>{ShardId{3}};
  other.p2p.idle_timeout = std::chrono::seconds(1);
  ASSERT_TRUE(apply_toml(other, to_toml(defaults)));
  EXPECT_EQ(to_toml(other), to_toml(defaults));
}

TEST(Config, TomlThenEnvironmentThenFlagsOverride) {
  NodeSettings s;
  ASSERT_TRUE(apply_toml(s, R"(
listen = "0.0.0.0:9000"
shards = "0-2,7"
bootstrap = ["10.0.0.1:8640", "10.0.0.2:8640"]
[upload]
min_replicas = 3
ack_timeout_ms = 1500
[p2p]
idle_timeout_ms = 2500
reconnect_jitter = 0.25
[gossip]
prune_backoff_s = 30
[storage.workers]
threads = 6
)"));
  EXPECT_EQ(s.listen, "0.0.0.0:9000");
  ASSERT_TRUE(s.shards);
  EXPECT_EQ(*s.shards, (std::vector<ShardId>{ShardId{0}, ShardId{1}, ShardId{2}, ShardId{7}}));
  EXPECT_EQ(s.bootstrap.size(), 2u);
  EXPECT_EQ(s.upload.min_replicas, 3u);
  EXPECT_EQ(s.upload.ack_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(s.p2p.idle_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(s.p2p.reconnect_jitter, 0.25);
  EXPECT_EQ(s.gossip.prune_backoff, std::chrono::seconds(30));
  EXPECT_EQ(s.storage.workers.threads, 6u);

  std::map<std::string, std::string> env{
      {"CAIRN_UPLOAD_MIN_REPLICAS", "4"}, {"CAIRN_SHARDS", "auto"}, {"CAIRN_LOG", "debug"}};
  ASSERT_TRUE(apply_env(s, [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  }));
  EXPECT_EQ(s.upload.min_replicas, 4u);
  EXPECT_FALSE(s.shards);
  EXPECT_EQ(env_name("storage.store.sync_writes"), "CAIRN_STORAGE_STORE_SYNC_WRITES");

  ASSERT_TRUE(set_key(s, "upload.min_replicas", "5"));
  ASSERT_TRUE(set_key(s, "storage.store.sync_writes", "false"));
  EXPECT_EQ(s.upload.min_replicas, 5u);
  EXPECT_FALSE(s.storage.store.sync_writes);
}

TEST(Config, MistakesAreNamed) {
  NodeSettings s;
  auto unknown = apply_toml(s, "[upload]\nmin_replica = 3\n", "node.toml");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("node.toml: upload.min_replica: no such setting"),
            std::string::npos)
      << unknown.error().message;
  auto type = apply_toml(s, "[upload]\nmin_replicas = \"three\"\n");
  ASSERT_FALSE(type);
  EXPECT_NE(type.error().message.find("upload.min_replicas: expected an integer"),
            std::string::npos);
  auto syntax = apply_toml(s, "[upload\n");
  ASSERT_FALSE(syntax);
  EXPECT_NE(syntax.error().message.find("line 1"), std::string::npos) << syntax.error().message;
  EXPECT_FALSE(set_key(s, "upload.min_replicas", "-1"));
  EXPECT_FALSE(set_key(s, "upload.min_replicas", "99999999999"));
  EXPECT_FALSE(set_key(s, "shards", "3-1"));
  EXPECT_FALSE(set_key(s, "p2p.compression", "maybe"));
  auto env = apply_env(s, [](const char* name) -> const char* {
    return std::string(name) == "CAIRN_FETCH_PARALLEL_PEERS" ? "many" : nullptr;
  });
  ASSERT_FALSE(env);
  EXPECT_NE(env.error().message.find("CAIRN_FETCH_PARALLEL_PEERS"), std::string::npos);

  NodeSettings v;
  EXPECT_FALSE(validate(v));  // no data dir
  v.data_dir = "/tmp/x";
  EXPECT_TRUE(validate(v));
  v.upload.min_replicas = 0;
  EXPECT_FALSE(validate(v));
  v.upload.min_replicas = 1;
  v.chain.backend = "ftp://x";
  EXPECT_FALSE(validate(v));
}

TEST(Config, LogLevelComesFromCairnLogAndBadLevelsAreNamed) {
  NodeSettings s;
  s.data_dir = "/tmp/x";
  EXPECT_EQ(env_name("log.level"), "CAIRN_LOG");
  EXPECT_EQ(env_name("log.format"), "CAIRN_LOG_FORMAT");
  ASSERT_TRUE(apply_toml(
      s, "[log]\nlevel = \"warn\"\nformat = \"json\"\nfile = \"/var/log/cairn/cairn.log\"\n"));
  EXPECT_EQ(s.log.level, "warn");
  EXPECT_EQ(s.log.format, "json");
  EXPECT_EQ(s.log.file, "/var/log/cairn/cairn.log");
  ASSERT_TRUE(apply_env(s, [](const char* name) -> const char* {
    return std::string(name) == "CAIRN_LOG" ? "info,p2p=debug" : nullptr;
  }));
  EXPECT_EQ(s.log.level, "info,p2p=debug");  // the environment beats the file
  EXPECT_TRUE(validate(s));

  auto env = apply_env(s, [](const char* name) -> const char* {
    return std::string(name) == "CAIRN_LOG" ? "verbose" : nullptr;
  });
  ASSERT_FALSE(env);
  EXPECT_EQ(env.error().code, Errc::invalid_argument);
  EXPECT_EQ(env.error().message.rfind(
                "invalid log level 'verbose' in environment CAIRN_LOG: unknown level 'verbose'", 0),
            0u)
      << env.error().message;
  auto file = apply_toml(s, "[log]\nlevel = \"info,p2p=\"\n", "node.toml");
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().message.rfind("invalid log level 'info,p2p=' in node.toml: ", 0), 0u)
      << file.error().message;
  auto flag = set_key(s, "log.level", "info,,", "--log-level");
  ASSERT_FALSE(flag);
  EXPECT_NE(flag.error().message.find("in --log-level"), std::string::npos) << flag.error().message;
  auto format = set_key(s, "log.format", "xml", "--log-format");
  ASSERT_FALSE(format);
  EXPECT_NE(
      format.error().message.find("invalid log format in --log-format: unknown log format 'xml'"),
      std::string::npos)
      << format.error().message;
}

TEST(Config, PrintedSettingsHideTheApiToken) {
  NodeSettings s;
  s.data_dir = "/tmp/x";
  EXPECT_NE(to_toml(s).find("\ntoken = \"\"\n"), std::string::npos);
  s.api.token = "hunter2-secret";
  const std::string printed = to_toml(s);
  EXPECT_EQ(printed.find("hunter2-secret"), std::string::npos) << printed;
  EXPECT_NE(printed.find("\ntoken = \"<redacted>\"\n"), std::string::npos) << printed;
  // Fed back, the placeholder is refused rather than used as the token.
  NodeSettings back;
  ASSERT_TRUE(apply_toml(back, printed));
  auto st = validate(back);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("api.token"), std::string::npos) << st.error().message;
}

TEST(Config, EveryKeyIsDocumented) {
  std::ifstream in(std::string(CAIRN_SOURCE_DIR) + "/docs/config.md");
  ASSERT_TRUE(in) << "docs/config.md missing";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  for (const std::string& key : config_keys()) {
    EXPECT_NE(doc.find("`" + key + "`"), std::string::npos)
        << key << " is not documented in docs/config.md";
  }
}

}  // namespace
}  // namespace cairn::node
