// The object reader over a blob source in memory: ranged reads of plain
// and compressed files and of blobs, manifest subtrees skipped before the
// range, readahead bounded, and lies caught (a blob the manifest sizes
// otherwise, a stopped source).

#include "cairn/shards/reader.hpp"

#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "cairn/erasure/codec.hpp"
#include "erasure/test_params.hpp"
#include "support/test_util.hpp"

namespace cairn::shards {
namespace {

// Blobs by id; fetches complete inline (as the node's do for uploads in flight).
class MapSource final : public BlobSource {
 public:
  void fetch(const BlobId& id, Done done) override {
    {
      std::lock_guard lock(mu_);
      fetched_.push_back(id);
    }
    auto it = blobs_.find(id);
    if (it == blobs_.end()) return done(make_error(Errc::not_found, "no blob " + id.hex()));
    done(it->second);
  }
  Result<RegisteredBlob> lookup(const BlobId& id) override {
    auto it = index_.find(id);
    if (it == index_.end()) return make_error(Errc::not_found, "unregistered");
    return RegisteredBlob{it->second, id, static_cast<uint32_t>(blobs_.at(id).size())};
  }
  bool stopped() const override { return false; }

  void add(const BlobId& id, Bytes payload) {
    index_.emplace(id, BlobIndex{index_.size()});
    blobs_[id] = std::move(payload);
  }
  std::vector<BlobId> fetched() const {
    std::lock_guard lock(mu_);
    return fetched_;
  }
  std::map<BlobId, Bytes> blobs_;

 private:
  std::map<BlobId, BlobIndex> index_;
  mutable std::mutex mu_;
  std::vector<BlobId> fetched_;
};

class ReaderTest : public ::testing::Test {
 protected:
  void SetUp() override { codec_ = *erasure::Codec::create(test::blob_geometry(2, 1, 1024, 256)); }

  void make(uint32_t readahead) {
    reader_ = std::make_unique<ObjectReader>(source_, codec_, ReaderSettings{readahead});
  }

  // Stores a file's blobs in the source; returns its summary.
  erasure::FileSummary put(ByteSpan content, erasure::FileOptions::Compress compress) {
    erasure::FileOptions opts;
    opts.compress = compress;
    auto s =
        erasure::encode_file(*codec_, content, opts, [&](const erasure::BlobPiece& p) -> Status {
          source_.add(p.blob.commitment.id, Bytes(p.payload.begin(), p.payload.end()));
          return {};
        });
    EXPECT_TRUE(s) << s.error().to_string();
    return *s;
  }

  Result<Bytes> read(const BlobId& id, ReadRange range) {
    Bytes out;
    auto st = reader_->read(id, range, [&](ByteSpan b) -> Status {
      out.insert(out.end(), b.begin(), b.end());
      return {};
    });
    if (!st) return tl::unexpected(st.error());
    return out;
  }

  std::shared_ptr<const erasure::Codec> codec_;
  MapSource source_;
  std::unique_ptr<ObjectReader> reader_;
};

TEST_F(ReaderTest, ReadsRangesOfAPlainFileFetchingOnlyTheBlobsTheyNeed) {
  make(4);
  auto rng = test::seeded_rng(9);
  // Enough blobs for an interior manifest level (blob_size 1024 -> 25 entries a manifest).
  const Bytes content = test::random_bytes(rng, 40 * 1024 + 17);
  const auto file = put(content, erasure::FileOptions::Compress::never);
  ASSERT_GT(file.manifest_blobs, 1u);

  auto info = reader_->stat(file.id);
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->kind, ObjectKind::file);
  EXPECT_EQ(info->size, content.size());
  EXPECT_EQ(info->blob_count, file.data_blobs);

  auto whole = read(file.id, {});
  ASSERT_TRUE(whole) << whole.error().to_string();
  EXPECT_EQ(*whole, content);
  EXPECT_EQ(reader_->bytes_read(), content.size());

  const size_t before = source_.fetched().size();
  const uint64_t offset = 38 * 1024 + 5, length = 1500;
  auto part = read(file.id, ReadRange{offset, length});
  ASSERT_TRUE(part) << part.error().to_string();
  EXPECT_EQ(*part, Bytes(content.begin() + offset, content.begin() + offset + length));
  // The root, the interior manifest over the range (the first subtree is
  // skipped whole), and the data blobs 38 and 39 of the range plus 40,
  // read ahead to the end.
  EXPECT_EQ(source_.fetched().size() - before, 5u);

  EXPECT_EQ(read(file.id, ReadRange{content.size(), 1}).error().code, Errc::invalid_argument);
}

TEST_F(ReaderTest, ReadsCompressedFilesAndBlobsAndCatchesABlobOfTheWrongSize) {
  make(2);
  const Bytes text(20000, 'a');
  const auto zipped = put(text, erasure::FileOptions::Compress::always);
  EXPECT_EQ(zipped.compression, erasure::Compression::zstd);
  auto part = read(zipped.id, ReadRange{100, 50});
  ASSERT_TRUE(part) << part.error().to_string();
  EXPECT_EQ(*part, Bytes(50, 'a'));

  auto rng = test::seeded_rng(10);
  const Bytes content = test::random_bytes(rng, 5 * 1024);
  const auto plain = put(content, erasure::FileOptions::Compress::never);
  auto info = reader_->stat(plain.id);
  ASSERT_TRUE(info);
  // A data blob that is not what the manifest says (a source that lies).
  for (auto& [id, bytes] : source_.blobs_) {
    if (id != plain.id && bytes.size() == 1024) {
      bytes.resize(1000);
      break;
    }
  }
  auto bad = read(plain.id, {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::corruption) << bad.error().to_string();

  const BlobId raw = BlobId{};
  source_.add(raw, Bytes{1, 2, 3});
  auto blob = reader_->stat(raw);
  ASSERT_TRUE(blob);
  EXPECT_EQ(blob->kind, ObjectKind::blob);
  EXPECT_EQ(*read(raw, ReadRange{1, 2}), (Bytes{2, 3}));
}

}  // namespace
}  // namespace cairn::shards
