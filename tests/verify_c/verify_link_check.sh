#!/usr/bin/env bash
# The proof verifier links without Asio, RocksDB, ISA-L and zstd
# (docs/design.md section 1: an outside program embeds cairn_verify).
#
# usage: verify_link_check.sh CLOSURE_FILE PROBE
#   CLOSURE_FILE  the CMake link closure of cairn_verify, one item a line
#                 (written at configure time by tests/CMakeLists.txt)
#   PROBE         cairn_verify_link_probe: a C program linked with every
#                 object of cairn_verify and with --no-as-needed, so each
#                 library on its link line is a DT_NEEDED entry
# Fails, naming each offender, when any of the three views mentions one of
# the forbidden libraries: the closure, the probe's DT_NEEDED entries, or a
# symbol the probe defines or imports.
set -euo pipefail
closure="$1"
probe="$2"

# Library names (closure items and DT_NEEDED entries) and symbols (C names of
# ISA-L and zstd, C++ namespaces of Asio and RocksDB) of what is forbidden.
names='asio|rocksdb|isal|isa-l|zstd'
c_symbols='^(ec_encode_data[a-z0-9_]*|ec_init_tables|gf_[a-z0-9_]+|crc(16|32|64)_[a-z0-9_]+|ZSTD_[A-Za-z0-9_]+|ZDICT_[A-Za-z0-9_]+)(@.*)?$'
cxx_symbols='(^|[^A-Za-z0-9_])(asio|rocksdb)::'

failed=0
report() {
  echo "verify_link_check: $1:" >&2
  sed 's/^/  /' >&2
  failed=1
}

# Each view is collected whole (no early exit under pipefail), then judged.
hits="$(grep -Ei "$names" "$closure" || true)"
[ -n "$hits" ] && report "cairn_verify's CMake link closure ($closure) names a forbidden library" <<<"$hits"
hits="$(readelf -d "$probe" | { grep -F '(NEEDED)' || true; } | { grep -Ei "$names" || true; })"
[ -n "$hits" ] && report "$probe needs a forbidden shared library" <<<"$hits"
hits="$({ nm "$probe" | awk '{print $NF}' | { grep -E "$c_symbols" || true; }
          nm -C "$probe" | { grep -E "$cxx_symbols" || true; }; } | sort -u | awk 'NR <= 20')"
[ -n "$hits" ] && report "$probe defines or imports symbols of a forbidden library (first 20)" <<<"$hits"
# The probe itself must work: it refuses an empty proof.
"$probe" >/dev/null || { echo "verify_link_check: $probe failed" >&2; failed=1; }

if [ "$failed" -ne 0 ]; then exit 1; fi
echo "verify_link_check: cairn_verify needs none of asio, rocksdb, isa-l, zstd"
echo "closure: $(tr '\n' ' ' <"$closure")"
