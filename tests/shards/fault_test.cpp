// The store on a disk that fails (tests/support/fault_fs.hpp): a write whose
// log append or sync fails is reported as failed and never as stored, what
// was acknowledged before survives, and the store works again after the
// fault (at once for a full disk, after a reopen for an I/O error); a
// fragment the disk cannot read is served around and reported by scrub.
// What RocksDB does in each case is described in docs/store-format.md,
// "Write, sync and read failures".

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "cairn/erasure/codec.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/scrub.hpp"
#include "cairn/shards/serve.hpp"
#include "cairn/shards/store.hpp"
#include "shards/store_testing.hpp"
#include "support/fault_fs.hpp"
#include "support/test_util.hpp"

namespace cairn::shards {
namespace {

using cairn::test::Fault;
using cairn::test::FaultError;
using cairn::test::FaultInjectionFs;
using cairn::test::FaultOp;
using testing::small_params;
using testing::synthetic_blob;
using testing::SyntheticBlob;

class StoreFaults : public ::testing::Test {
 protected:
  std::unique_ptr<Store> open_store() {
    StoreOptions options;
    options.file_system = fs_;
    auto store = Store::open(dir_.path(), small_params(), {}, options);
    EXPECT_TRUE(store) << store.error().to_string();
    return store ? std::move(*store) : nullptr;
  }

  SyntheticBlob blob(uint64_t index) {
    return synthetic_blob(small_params(), BlobIndex{index}, rng_);
  }

  // The blob is stored with exactly these fragments.
  static void expect_stored(const Store& store, const SyntheticBlob& b) {
    auto record = store.get_blob(b.record.id);
    ASSERT_TRUE(record) << record.error().to_string();
    EXPECT_EQ(*record, b.record);
    for (uint32_t f = 0; f < b.fragments.size(); ++f) {
      auto bytes = store.get_fragment(b.record.index, FragmentIndex{static_cast<uint8_t>(f)});
      ASSERT_TRUE(bytes) << bytes.error().to_string();
      EXPECT_EQ(*bytes, b.fragments[f]) << "fragment " << f;
    }
  }

  // Nothing of the blob is visible: not its record, id or any fragment.
  static void expect_absent(const Store& store, const SyntheticBlob& b) {
    EXPECT_EQ(store.get_blob(b.record.id).error().code, Errc::not_found);
    EXPECT_EQ(store.get_blob_at(b.record.index).error().code, Errc::not_found);
    for (uint32_t f = 0; f < b.fragments.size(); ++f) {
      EXPECT_EQ(
          store.get_fragment(b.record.index, FragmentIndex{static_cast<uint8_t>(f)}).error().code,
          Errc::not_found)
          << "fragment " << f;
    }
  }

  std::shared_ptr<FaultInjectionFs> fs_ = std::make_shared<FaultInjectionFs>();
  test::TempDir dir_;
  std::mt19937_64 rng_ = test::seeded_rng(41);
};

Fault wal_fault(FaultOp op, FaultError error = FaultError::io_error) {
  Fault f;
  f.op = op;
  f.pattern = "*.log";
  f.error = error;
  return f;
}

TEST_F(StoreFaults, AFailedLogWriteIsNeverAcknowledgedAndAReopenedStoreHasEverythingAcknowledged) {
  auto store = open_store();
  ASSERT_TRUE(store);
  const SyntheticBlob a = blob(1), b = blob(2), c = blob(3);
  ASSERT_EQ(*store->put_blob(a.record, a.spans()), PutOutcome::stored);

  fs_->inject(wal_fault(FaultOp::write));
  auto put = store->put_blob(b.record, b.spans());
  ASSERT_FALSE(put) << "a blob whose log append failed was acknowledged";
  EXPECT_EQ(put.error().code, Errc::io_error);
  EXPECT_NE(put.error().message.find("injected fault"), std::string::npos)
      << put.error().to_string();
  EXPECT_GE(fs_->failed(FaultOp::write), 1u);
  expect_absent(*store, b);
  EXPECT_EQ(store->blob_count(), 1u);
  // Small records go through the same log.
  EXPECT_FALSE(store->put_sync_cursor(ShardId{0}, SyncCursor{BlobIndex{2}, 1}));
  // Reads keep working: a node with a failing log still serves what it holds.
  expect_stored(*store, a);

  // RocksDB stops taking writes after a failed log write, also once the
  // disk is healthy again: the store must be reopened (the node restarted).
  fs_->clear();
  EXPECT_FALSE(store->put_blob(c.record, c.spans()));
  (void)store->close();  // may report the same error: the memtable is not flushed, the log replays
  store.reset();

  store = open_store();
  ASSERT_TRUE(store);
  expect_stored(*store, a);
  expect_absent(*store, b);
  expect_absent(*store, c);
  EXPECT_EQ(store->blob_count(), 1u);
  auto retry = store->put_blob(b.record, b.spans());
  ASSERT_TRUE(retry) << retry.error().to_string();
  EXPECT_EQ(*retry, PutOutcome::stored);
  expect_stored(*store, b);
  EXPECT_EQ(store->blob_count(), 2u);
}

TEST_F(StoreFaults, AFailedLogSyncIsNeverAcknowledgedAndARetryAfterReopenStoresTheBlob) {
  auto store = open_store();
  ASSERT_TRUE(store);
  const SyntheticBlob a = blob(1), b = blob(2);
  ASSERT_EQ(*store->put_blob(a.record, a.spans()), PutOutcome::stored);

  fs_->inject(wal_fault(FaultOp::sync));
  auto put = store->put_blob(b.record, b.spans());
  ASSERT_FALSE(put) << "a blob whose log sync failed was acknowledged";
  EXPECT_EQ(put.error().code, Errc::io_error);
  EXPECT_GE(fs_->failed(FaultOp::sync), 1u);
  expect_absent(*store, b);
  EXPECT_EQ(store->blob_count(), 1u);

  fs_->clear();
  (void)store->close();
  store.reset();
  store = open_store();
  ASSERT_TRUE(store);
  expect_stored(*store, a);
  // The batch reached the OS before its sync failed, so it may replay from
  // the log: the write was "not known durable", not "not written". Either
  // way it is whole or absent, and a retry (what the uploader does) ends
  // with the blob stored.
  auto retry = store->put_blob(b.record, b.spans());
  ASSERT_TRUE(retry) << retry.error().to_string();
  expect_stored(*store, b);
  EXPECT_EQ(store->blob_count(), 2u);
}

TEST_F(StoreFaults, AFullDiskRefusesWritesAndTheStoreWritesAgainOnceSpaceIsBack) {
  auto store = open_store();
  ASSERT_TRUE(store);
  const SyntheticBlob a = blob(1), b = blob(2);
  ASSERT_EQ(*store->put_blob(a.record, a.spans()), PutOutcome::stored);

  fs_->inject(wal_fault(FaultOp::write, FaultError::no_space));
  auto put = store->put_blob(b.record, b.spans());
  ASSERT_FALSE(put) << "a blob written to a full disk was acknowledged";
  EXPECT_EQ(put.error().code, Errc::io_error);
  EXPECT_NE(put.error().message.find("No space"), std::string::npos) << put.error().to_string();
  expect_absent(*store, b);

  // RocksDB recovers from a full disk by itself (no reopen) once writes
  // succeed again; until its recovery has run, writes still fail.
  fs_->clear();
  Result<PutOutcome> retry = make_error(Errc::internal, "not tried");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!retry && std::chrono::steady_clock::now() < deadline) {
    retry = store->put_blob(b.record, b.spans());
    if (!retry) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(retry) << retry.error().to_string();
  EXPECT_EQ(*retry, PutOutcome::stored);
  expect_stored(*store, a);
  expect_stored(*store, b);

  ASSERT_TRUE(store->close());
  store = open_store();
  ASSERT_TRUE(store);
  expect_stored(*store, a);
  expect_stored(*store, b);
  EXPECT_EQ(store->blob_count(), 2u);
}

// A store holding real (committed) blobs, flushed and reopened so reads go
// to the files: fragment values in RocksDB blob files (*.blob), one file read
// per fragment.
class UnreadableFragments : public StoreFaults {
 protected:
  void SetUp() override {
    auto codec = erasure::Codec::create(small_params());
    ASSERT_TRUE(codec);
    codec_ = *codec;
    auto store = open_store();
    ASSERT_TRUE(store);
    payload_ = test::random_bytes(rng_, small_params().blob_size - 100);
    auto stored = ingest_payload(*store, *codec_, index_, payload_);
    ASSERT_TRUE(stored) << stored.error().to_string();
    record_ = stored->record;
    ASSERT_TRUE(store->flush());
    ASSERT_TRUE(store->close());
    store_ = open_store();
    ASSERT_TRUE(store_);
    // Open the blob file's reader (header and footer reads) before any
    // fault: from here on each fragment read is one read of the file.
    for (uint32_t f = 0; f < small_params().total_fragments(); ++f) {
      ASSERT_TRUE(store_->get_fragment(index_, FragmentIndex{static_cast<uint8_t>(f)}));
    }
    ASSERT_GT(fs_->seen(FaultOp::read, "*.blob"), 0u) << "fragments are not read from blob files";
  }

  // The next `times` fragment reads fail with an I/O error.
  void fail_next_fragment_reads(uint64_t times) {
    Fault f;
    f.op = FaultOp::read;
    f.pattern = "*.blob";
    f.times = times;
    fs_->inject(f);
  }

  std::shared_ptr<const erasure::Codec> codec_;
  std::unique_ptr<Store> store_;
  const BlobIndex index_{5};
  Bytes payload_;
  BlobRecord record_;
};

TEST_F(UnreadableFragments, TheFaultSeamFailsExactlyTheChosenReads) {
  Fault f;
  f.op = FaultOp::read;
  f.pattern = "*.blob";
  f.after = 1;
  f.times = 2;
  fs_->inject(f);
  std::vector<Errc> codes;
  for (uint8_t frag = 0; frag < 4; ++frag) {
    auto bytes = store_->get_fragment(index_, FragmentIndex{frag});
    codes.push_back(bytes ? Errc::ok : bytes.error().code);
  }
  EXPECT_EQ(codes, (std::vector<Errc>{Errc::ok, Errc::io_error, Errc::io_error, Errc::ok}));
  EXPECT_EQ(fs_->failed(FaultOp::read), 2u);
  EXPECT_EQ(fs_->failed_total(), 2u);
  // A read error is not sticky: the store keeps reading and writing.
  EXPECT_TRUE(store_->put_sync_cursor(ShardId{0}, SyncCursor{BlobIndex{6}, 1}));
}

TEST_F(UnreadableFragments, ServingSubstitutesAnotherFragmentForAnUnreadableOne) {
  fail_next_fragment_reads(1);  // fragment 0, the first one served
  FragmentRequest request;
  request.id = record_.id;
  request.index = index_;
  request.fragments = {FragmentIndex{0}, FragmentIndex{1}, FragmentIndex{2}, FragmentIndex{3}};
  request.at_least = 4;
  auto reply = serve_fragments(*store_, request, nullptr);
  ASSERT_TRUE(reply) << reply.error().to_string();
  EXPECT_EQ(fs_->failed(FaultOp::read), 1u);
  EXPECT_EQ(reply->fragments, (std::vector<FragmentIndex>{FragmentIndex{1}, FragmentIndex{2},
                                                          FragmentIndex{3}, FragmentIndex{4}}));
  // The peer rebuilds the blob from what it got.
  RegisteredBlob expected{index_, record_.id, record_.length};
  auto fetched = verify_fetched(*codec_, expected, std::move(*reply));
  ASSERT_TRUE(fetched) << fetched.error().to_string();

  // Without at_least the good ones asked for are served.
  fail_next_fragment_reads(1);
  request.at_least = 0;
  auto partial = serve_fragments(*store_, request, nullptr);
  ASSERT_TRUE(partial) << partial.error().to_string();
  EXPECT_EQ(partial->fragments,
            (std::vector<FragmentIndex>{FragmentIndex{1}, FragmentIndex{2}, FragmentIndex{3}}));

  // A local read decodes around it too.
  fail_next_fragment_reads(1);
  auto read = read_payload(*store_, *codec_, index_);
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(*read, payload_);
  EXPECT_EQ(fs_->failed(FaultOp::read), 3u);
}

TEST_F(UnreadableFragments, ScrubReportsAnUnreadableFragmentAsBadAndRepairRewritesIt) {
  fail_next_fragment_reads(1);
  auto health = check_blob(*store_, index_, nullptr);
  ASSERT_TRUE(health) << health.error().to_string();
  EXPECT_EQ(health->bad, std::vector<FragmentIndex>{FragmentIndex{0}});
  EXPECT_EQ(health->unreadable, std::vector<FragmentIndex>{FragmentIndex{0}});
  EXPECT_EQ(health->good, small_params().total_fragments() - 1);

  // Repair re-reads first; it rebuilds the fragment if it is still
  // unreadable then, from the k good ones.
  fail_next_fragment_reads(1);
  auto repaired = repair_blob(*store_, *codec_, *health, nullptr);
  ASSERT_TRUE(repaired) << repaired.error().to_string();
  EXPECT_EQ(*repaired, 1u);
  auto after = check_blob(*store_, index_, nullptr);
  ASSERT_TRUE(after) << after.error().to_string();
  EXPECT_TRUE(after->bad.empty());
  auto read = read_payload(*store_, *codec_, index_);
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(*read, payload_);
}

}  // namespace
}  // namespace cairn::shards
