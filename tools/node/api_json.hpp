#pragma once
// The JSON bodies of the HTTP API (docs/http-api.md): one encoder per
// NodeService answer. Ids and hashes are lowercase hex; sizes, indexes and
// counters are JSON numbers (exact up to 2^53, beyond any real size).

#include <nlohmann/json.hpp>

#include "node/node_service.hpp"

namespace cairn::node::api_json {

using json = nlohmann::json;

// "cairn://<id hex>"
std::string uri(const BlobId& id);
const char* compression_name(erasure::Compression c);

json put_file(const PutFileResult& r);
json put_blob(const PutBlobResult& r);
// One progress event of a streamed upload (docs/http-api.md, "Upload
// progress"): {"event": "registering" | "replicating" | "acknowledged",
// and every UploadPhase field}.
json upload_phase(const UploadPhase& p);
json object_info(const ObjectInfo& info);
json blob_status(const BlobStatus& s);
json node_status(const NodeStatus& s);

}  // namespace cairn::node::api_json
