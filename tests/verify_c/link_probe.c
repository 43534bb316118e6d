/* The smallest outside program that embeds the proof verifier: linked with
 * cairn_verify alone (every object of it, see tests/CMakeLists.txt), so the
 * check verify_link_check.sh can show what an embedder inherits. Running it
 * verifies an empty proof, which must be refused. */

#include <stdio.h>

#include "cairn/verify.h"

int main(void) {
  cairn_replica_report report = {0};
  const uint8_t empty[1] = {0};
  const cairn_verify_status status = cairn_verify_replica_proof(empty, 0, NULL, NULL, 0, &report);
  printf("cairn_verify %s: empty proof -> %d (%s)\n", cairn_verify_version(), (int)status,
         report.error);
  return status == CAIRN_VERIFY_MALFORMED ? 0 : 1;
}
