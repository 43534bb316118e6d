#!/usr/bin/env bash
# Usage: gen-config.sh CAIRN_BINARY DATA_DIR VERSION OUT
# Writes the default configuration file installed as /etc/cairn/cairn.toml:
# the node's own `--print-config` output in a clean environment (so it holds
# the real defaults and cannot drift from the code), with every key but
# data_dir commented out, so an upgrade's new defaults still apply.
set -euo pipefail
cairn="$1" data_dir="$2" version="$3" out="$4"
body="$(env -i PATH=/usr/bin:/bin HOME=/nonexistent "$cairn" node --print-config --data-dir "$data_dir")"
{
  echo "# cairn node configuration (TOML). Every setting is described in"
  echo "# docs/config.md (/usr/share/doc/cairn/config.md); CAIRN_* variables and"
  echo "# the flags of \`cairn node\` override this file."
  echo "#"
  echo "# The commented lines show the built-in defaults of cairn $version,"
  echo "# generated from \`cairn node --print-config\`: uncomment a line to change it."
  echo
  printf '%s\n' "$body" | sed -E '/^data_dir = /!s/^([A-Za-z0-9_]+ = )/# \1/'
} >"$out.tmp"
mv "$out.tmp" "$out"
