#!/usr/bin/env bash
# Usage: gen-manpage.sh CAIRN_BINARY VERSION OUT
# Writes the cairn(1) man page from the CLI's own help: `cairn --help`, then
# the `--help` of every subcommand (and of their subcommands), so the page
# says what the binary it ships with does.
set -euo pipefail
cairn="$1" version="$2" out="$3"

# Subcommand names listed in a CLI11 help text (the "Subcommands:" block).
subcommands() {
  awk 'tolower($0) ~ /^subcommands:/ {on=1; next}
       on && /^[^ \t]/ {on=0}
       on && /^[ \t]+[a-z][a-z0-9-]*/ {print $1}'
}

# Help text as roff: a preformatted block, with backslashes, and dots or
# quotes that would start a request, escaped.
roff_block() {
  echo ".nf"
  sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
  echo ".fi"
}

section() {  # section PATH...: one .SS block per command, depth first
  local help
  help="$(env -i PATH=/usr/bin:/bin HOME=/nonexistent COLUMNS=80 "$cairn" "$@" --help)"
  echo ".SS \"cairn $*\""
  printf '%s\n' "$help" | roff_block
  local sub
  for sub in $(printf '%s\n' "$help" | subcommands); do
    section "$@" "$sub"
  done
}

top="$(env -i PATH=/usr/bin:/bin HOME=/nonexistent COLUMNS=80 "$cairn" --help)"
{
  echo ".TH CAIRN 1 \"\" \"cairn $version\" \"User Commands\""
  echo ".SH NAME"
  echo "cairn \\- peer-to-peer storage rollup node and client"
  echo ".SH SYNOPSIS"
  echo ".B cairn"
  echo ".I COMMAND"
  echo "[\\fIOPTIONS\\fR]"
  echo ".SH DESCRIPTION"
  printf '%s\n' "$top" | roff_block
  echo ".SH COMMANDS"
  for sub in $(printf '%s\n' "$top" | subcommands); do
    section "$sub"
  done
  echo ".SH EXIT STATUS"
  echo "0 ok, 1 failed, 2 bad usage, 3 local environment, 4 corrupt data, 5 unavailable."
  echo ".SH FILES"
  echo ".TP"
  echo ".I /etc/cairn/cairn.toml"
  echo "configuration of the packaged service (settings: /usr/share/doc/cairn/config.md)"
  echo ".TP"
  echo ".I /var/lib/cairn"
  echo "data directory of the packaged service: identity.key, store/, devchain/"
  echo ".SH SEE ALSO"
  echo "/usr/share/doc/cairn/operations.md, /usr/share/doc/cairn/cli.md"
} >"$out.tmp"
mv "$out.tmp" "$out"
