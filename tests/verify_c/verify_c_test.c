/* Embeds the proof verifier through its C interface, compiled as C (not
 * C++): what a program in another language links against. Verifies the
 * committed golden proof (tests/sampling/data/proof_v1.bin) with the
 * sequencer key and with the genesis record, and checks the refusals.
 *
 * usage: cairn_verify_c_test PROOF GENESIS SEQUENCER_HEX */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/verify.h"

static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

static unsigned char* read_all(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  unsigned char* buf;
  long n;
  if (f == NULL) return NULL;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return NULL;
  }
  buf = malloc((size_t)n + 1);
  if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static int parse_hex32(const char* hex, unsigned char out[32]) {
  size_t i;
  if (strlen(hex) != 64) return 0;
  for (i = 0; i < 32; ++i) {
    unsigned int v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) return 0;
    out[i] = (unsigned char)v;
  }
  return 1;
}

int main(int argc, char** argv) {
  size_t proof_len = 0, genesis_len = 0;
  unsigned char *proof, *genesis;
  unsigned char key[32], other_key[32];
  unsigned char nodes[4 * 32];
  cairn_replica_report report;
  cairn_verify_status st;

  if (argc != 4) {
    fprintf(stderr, "usage: %s PROOF GENESIS SEQUENCER_HEX\n", argv[0]);
    return 2;
  }
  proof = read_all(argv[1], &proof_len);
  genesis = read_all(argv[2], &genesis_len);
  if (proof == NULL || genesis == NULL || !parse_hex32(argv[3], key)) {
    fprintf(stderr, "cannot read %s / %s or parse the key\n", argv[1], argv[2]);
    return 2;
  }

  memset(&report, 0, sizeof report);
  report.node_ids = nodes;
  report.node_ids_capacity = 4;
  st = cairn_verify_replica_proof(proof, proof_len, key, NULL, 0, &report);
  CHECK(st == CAIRN_VERIFY_OK);
  CHECK(report.replicas == 2);
  CHECK(report.responses == 2);
  CHECK(report.shard == 0);
  CHECK(report.epoch == 1);
  CHECK(report.first_blob == 0 && report.blob_count == 3);
  CHECK(report.trust_pinned == 1);
  CHECK(memcmp(report.sequencer, key, 32) == 0);
  CHECK(memcmp(nodes, nodes + 32, 32) < 0); /* ascending, distinct */
  if (st != CAIRN_VERIFY_OK) fprintf(stderr, "error: %s\n", report.error);

  memset(&report, 0, sizeof report);
  st = cairn_verify_replica_proof(proof, proof_len, NULL, genesis, genesis_len, &report);
  CHECK(st == CAIRN_VERIFY_OK && report.replicas == 2 && report.trust_pinned == 1);

  memset(&report, 0, sizeof report);
  st = cairn_verify_replica_proof(proof, proof_len, NULL, NULL, 0, &report);
  CHECK(st == CAIRN_VERIFY_OK && report.trust_pinned == 0);

  /* Another sequencer key. */
  memcpy(other_key, key, 32);
  other_key[0] ^= 1;
  st = cairn_verify_replica_proof(proof, proof_len, other_key, NULL, 0, &report);
  CHECK(st == CAIRN_VERIFY_INVALID);
  CHECK(strstr(report.error, "sequencer") != NULL);

  /* One flipped byte in the middle of a response. */
  proof[proof_len / 2] ^= 0x40;
  st = cairn_verify_replica_proof(proof, proof_len, key, NULL, 0, &report);
  CHECK(st != CAIRN_VERIFY_OK);
  CHECK(report.error[0] != '\0');
  proof[proof_len / 2] ^= 0x40;

  /* Not a proof; a bad genesis record; both trust roots; no report. */
  CHECK(cairn_verify_replica_proof(proof, 10, key, NULL, 0, &report) == CAIRN_VERIFY_MALFORMED);
  CHECK(cairn_verify_replica_proof(proof, proof_len, NULL, genesis, 5, &report) ==
        CAIRN_VERIFY_BAD_ARGUMENT);
  CHECK(cairn_verify_replica_proof(proof, proof_len, key, genesis, genesis_len, &report) ==
        CAIRN_VERIFY_BAD_ARGUMENT);
  CHECK(cairn_verify_replica_proof(proof, proof_len, key, NULL, 0, NULL) ==
        CAIRN_VERIFY_BAD_ARGUMENT);
  CHECK(strlen(cairn_verify_version()) > 0);

  free(proof);
  free(genesis);
  if (failures == 0)
    printf("cairn_verify C interface: all checks passed (%s)\n", cairn_verify_version());
  return failures == 0 ? 0 : 1;
}
