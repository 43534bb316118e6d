/*
 * cairn replica-count proof verifier, C interface.
 *
 * Checks a replica-count proof file (docs/proof-format.md) against the dev
 * chain's trust root and reports the shard, epoch, challenged blob range and
 * the number of distinct replicas. Link libcairn_verify (with
 * libcairn_chainverify, libcairn_commitment, libsodium, libcrypto and the
 * C++ runtime); it needs neither Asio, RocksDB, ISA-L nor zstd.
 *
 * Thread-safety: every function may be called from any thread, concurrently.
 * No function keeps a pointer it was given after it returns. Nothing throws.
 */
#ifndef CAIRN_VERIFY_H
#define CAIRN_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when a struct below changes layout. */
#define CAIRN_VERIFY_ABI_VERSION 1

/* Results. Stable values: append only. */
typedef enum cairn_verify_status {
  CAIRN_VERIFY_OK = 0,          /* the proof verifies; see the report */
  CAIRN_VERIFY_INVALID = 1,     /* the proof does not verify (reason in report->error) */
  CAIRN_VERIFY_MALFORMED = 2,   /* the bytes are not a well-formed proof */
  CAIRN_VERIFY_UNSUPPORTED = 3, /* a format version this library does not read */
  CAIRN_VERIFY_BAD_ARGUMENT = 4 /* a NULL pointer or a malformed trust root */
} cairn_verify_status;

/* What a verified proof shows. Filled on CAIRN_VERIFY_OK; on any other
 * result only `error` is meaningful. */
typedef struct cairn_replica_report {
  uint32_t shard;
  uint64_t epoch;
  uint64_t start_block; /* e * epoch_blocks */
  uint64_t first_blob;  /* challenged blobs: [first_blob, first_blob + blob_count) */
  uint64_t blob_count;
  uint32_t replicas;  /* distinct node ids with a valid, timely response */
  uint32_t responses; /* responses in the proof, duplicates included */
  uint8_t chain_id[32];
  uint8_t sequencer[32]; /* the key the headers are signed with */
  int trust_pinned;      /* 0 when no trust root was given */
  /* Optional: when non-NULL, up to node_ids_capacity node ids (32 bytes
   * each, ascending) are written here; `replicas` says how many exist. */
  uint8_t* node_ids;
  size_t node_ids_capacity;
  char error[512]; /* NUL-terminated reason when not OK */
} cairn_replica_report;

/* Verifies `proof` (len bytes). Trust root, at most one of:
 *  - sequencer_key: the dev chain's 32-byte sequencer public key;
 *  - genesis / genesis_len: the chain's genesis record (the raw chain info of
 *    docs/chain.md), pinning parameters and genesis time too;
 *  - neither (both NULL): the key inside the proof is used and
 *    report->trust_pinned is 0: the proof is then only self-consistent.
 * `report` must not be NULL; its node_ids / node_ids_capacity are read. */
cairn_verify_status cairn_verify_replica_proof(const uint8_t* proof, size_t len,
                                               const uint8_t* sequencer_key, const uint8_t* genesis,
                                               size_t genesis_len, cairn_replica_report* report);

/* The library version, e.g. "0.1.0". */
const char* cairn_verify_version(void);

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_VERIFY_H */
