#pragma once
// A node's identity: an ed25519 key kept in a file in the data dir (mode
// 0600). The node id is the public key.

#include <filesystem>
#include <string>

#include "cairn/core/ed25519.hpp"
#include "cairn/core/result.hpp"

namespace cairn::p2p {

// File format (text, one line each):
//   cairn-ed25519-v1
//   <64 hex digits: the 32-byte secret seed>
// Persisted format: do not change without bumping the first line.
inline constexpr const char* kIdentityHeader = "cairn-ed25519-v1";

// Writes a new identity file with mode 0600. Errc::conflict when the file
// exists and `overwrite` is false; io_error when it cannot be written.
Status save_identity(const SigningKey& key, const std::filesystem::path& path, bool overwrite);

// Reads an identity file. Errc::not_found when missing; invalid_argument when
// malformed; io_error when group or others can read it (like ssh, a
// readable secret key is refused: `chmod 600 FILE`).
Result<SigningKey> load_identity(const std::filesystem::path& path);

// Short printable form of a node id for logs and tables: the first 8 bytes
// in hex (16 digits). Not unique in theory; collisions need 2^32 nodes.
inline std::string short_id(const NodeId& id) { return to_hex(ByteSpan(id.bytes).first(8)); }

// Loads the identity at `path`, creating one when the file does not exist.
Result<SigningKey> load_or_create_identity(const std::filesystem::path& path,
                                           bool* created = nullptr);

}  // namespace cairn::p2p
