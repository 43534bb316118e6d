#pragma once
// Reading objects (files and blobs) by id for NodeService: stat and ranged
// streaming. Uncompressed files are streamed blob by blob with
// FetchSettings::readahead_blobs fetches in flight, skipping whole manifest
// subtrees before the range; compressed files go through
// erasure::decode_file (which must inflate from the start). Every blob is
// checked against its id before its bytes reach the sink; a whole-file read
// also checks the manifest's size and SHA-256 at the end.
//
// Threading: blocking; call from API threads.

#include "node/context.hpp"
#include "node/fetcher.hpp"
#include "node/node_service.hpp"

namespace cairn::node {

class Reader {
 public:
  Reader(NodeContext& ctx, Fetcher& fetcher);

  Result<ObjectInfo> stat(const BlobId& id);
  Status read(const BlobId& id, const ReadRange& range, const ByteSink& sink);

 private:
  struct Opened;
  Result<Opened> open(const BlobId& id);
  Status read_plain_file(const Opened& o, uint64_t offset, uint64_t length, const ByteSink& sink);
  Status read_compressed_file(const Opened& o, uint64_t offset, uint64_t length, const ByteSink& sink);

  NodeContext& ctx_;
  Fetcher& fetcher_;
  metrics::Counter& bytes_read_;
};

}  // namespace cairn::node
