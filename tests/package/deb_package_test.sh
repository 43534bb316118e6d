#!/usr/bin/env bash
# Usage: deb_package_test.sh BUILD_DIR
#
# The install as an operator meets it (docs/operations.md): stages
# cmake --install under another prefix and checks what went where; builds the
# Debian package with cpack from BUILD_DIR, installs it with dpkg -i on this
# machine, checks the cairn user, /var/lib/cairn, the conffile and the enabled
# unit, runs the installed /usr/bin/cairn as the cairn user against
# /etc/cairn/cairn.toml (loopback, kernel-chosen ports) until /v1/status
# answers, stops it with SIGTERM (exit 0 expected), lints the unit with
# systemd-analyze verify, purges the package and checks what is left.
# Everything it created is removed on any exit. Needs root: exits 77 (a ctest
# skip) otherwise, and when this machine already has a cairn package, user,
# /etc/cairn or /var/lib/cairn.
set -euo pipefail

build="$(cd "${1:?usage: deb_package_test.sh BUILD_DIR}" && pwd)"

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i, a system user); run tools/run-tests as root"
for tool in cpack dpkg dpkg-deb setpriv flock curl systemd-analyze; do
  command -v "$tool" >/dev/null || skip "$tool not found (CAIRN_APT_PACKAGES in tools/dev/common.sh)"
done
# One run per machine: runs from other build trees (another checkout's
# ctest) install and purge the same package, user and directories.
exec 9>/run/lock/cairn-package-test.lock
flock -w 120 9 || fail "another package test held /run/lock/cairn-package-test.lock for 2 minutes"
# Never touch a real installation.
if dpkg-query -W -f='${Status}' cairn 2>/dev/null | grep -q "installed"; then
  skip "a cairn package is installed on this machine"
fi
getent passwd cairn >/dev/null && skip "a cairn user exists on this machine"
[ -e /var/lib/cairn ] && skip "/var/lib/cairn exists on this machine"
[ -e /etc/cairn ] && skip "/etc/cairn exists on this machine"

# dpkg with its arguments, waiting up to 2 minutes while another apt or dpkg
# run holds the dpkg lock (the machine's own package installs).
dpkg_waiting() {
  local log
  log="$(mktemp)"
  for _ in $(seq 1 120); do
    if dpkg "$@" >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; return 0; fi
    grep -q "lock" "$log" || { cat "$log" >&2; rm -f "$log"; return 1; }
    sleep 1
  done
  cat "$log" >&2
  rm -f "$log"
  return 1
}

work="$(mktemp -d /tmp/cairn-package-test.XXXXXX)"
node_pid=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -KILL "$node_pid"
    wait "$node_pid" 2>/dev/null
  fi
  if dpkg-query -W -f='${Status}' cairn 2>/dev/null | grep -q "installed\|config-files"; then
    dpkg_waiting --purge cairn >/dev/null 2>&1
  fi
  # Purge keeps the data directory and the user (as Debian does): this test
  # made them, so it removes them.
  rm -rf /var/lib/cairn /etc/cairn
  getent passwd cairn >/dev/null && userdel cairn
  getent group cairn >/dev/null && groupdel cairn
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

step "cmake --install --strip --prefix /opt/cairn (DESTDIR)"
DESTDIR="$work/stage" cmake --install "$build" --strip --prefix /opt/cairn >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "cmake --install failed"; }
for f in opt/cairn/bin/cairn opt/cairn/share/man/man1/cairn.1.gz opt/cairn/share/doc/cairn/README.md \
  opt/cairn/share/doc/cairn/operations.md etc/cairn/cairn.toml lib/systemd/system/cairn.service; do
  [ -f "$work/stage/$f" ] || fail "cmake --install did not install /$f"
done
grep -qx 'ExecStart=/opt/cairn/bin/cairn node --config /etc/cairn/cairn.toml' \
  "$work/stage/lib/systemd/system/cairn.service" || fail "the unit does not name the installed binary"

step "cpack -G DEB from $build"
# The package and cpack's staging tree go to a directory of this test, not
# into the build tree other tests read.
(cd "$build" && cpack -G DEB -B "$work/pkg" --config "$build/CPackConfig.cmake") >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack failed"; }
deb="$(ls "$work"/pkg/cairn_*.deb)"
dpkg-deb -I "$deb" | sed -n '/Depends:/p;/Installed-Size:/p'
dpkg-deb -f "$deb" Depends | grep -q "librocksdb" || fail "Depends does not name RocksDB's runtime library"
size="$(dpkg-deb --fsys-tarfile "$deb" | tar -tvf - ./usr/bin/cairn | awk '{print $3}')"
echo "installed /usr/bin/cairn: $size bytes"
[ "$size" -lt 40000000 ] || fail "/usr/bin/cairn is $size bytes: not stripped"

step "dpkg -i"
dpkg_waiting -i "$deb" 2>"$work/dpkg-i.log" || { cat "$work/dpkg-i.log"; fail "dpkg -i failed"; }

step "user, directories, conffile, unit"
passwd_line="$(getent passwd cairn)" ||
  { cat "$work/dpkg-i.log" 2>/dev/null; fail "no cairn user after dpkg -i"; }
IFS=: read -r _ _ uid _ _ home shell <<<"$passwd_line"
[ "$uid" -lt 1000 ] || fail "cairn is not a system user (uid $uid)"
[ "$home" = /var/lib/cairn ] || fail "cairn's home is $home"
[ "$shell" = /usr/sbin/nologin ] || fail "cairn's shell is $shell"
[ "$(stat -c '%U:%G %a' /var/lib/cairn)" = "cairn:cairn 750" ] ||
  fail "/var/lib/cairn is $(stat -c '%U:%G %a' /var/lib/cairn), expected cairn:cairn 750"
dpkg-query -W -f='${Conffiles}\n' cairn | grep -q '^ /etc/cairn/cairn.toml ' ||
  fail "/etc/cairn/cairn.toml is not a conffile"
[ "$(stat -c '%U:%G %a' /etc/cairn/cairn.toml)" = "root:cairn 640" ] ||
  fail "/etc/cairn/cairn.toml is $(stat -c '%U:%G %a' /etc/cairn/cairn.toml), expected root:cairn 640"
grep -qx 'data_dir = "/var/lib/cairn"' /etc/cairn/cairn.toml || fail "cairn.toml does not set data_dir"
[ -x /usr/bin/cairn ] || fail "/usr/bin/cairn missing"
[ -f /usr/share/man/man1/cairn.1.gz ] || fail "man page missing"
zcat /usr/share/man/man1/cairn.1.gz | grep -q '^\.SS "cairn localnet up"' || fail "man page lacks cairn localnet up"
[ -f /usr/share/doc/cairn/operations.md ] || fail "docs missing from /usr/share/doc/cairn"
unit=/lib/systemd/system/cairn.service
[ -f "$unit" ] || fail "$unit missing"
grep -qx 'ExecStart=/usr/bin/cairn node --config /etc/cairn/cairn.toml' "$unit" || fail "unit's ExecStart"
doc="$(sed -nE 's|^Documentation=.*file://([^ ]+).*|\1|p' "$unit")"
[ -n "$doc" ] && [ -f "$doc" ] || fail "the unit's Documentation= names '$doc', not an installed file"
[ -L /etc/systemd/system/multi-user.target.wants/cairn.service ] || fail "cairn.service is not enabled"
# systemd must wait longer than the node's own stop budget before SIGKILL.
stop_ms="$(sed -nE 's|^# stop_timeout_ms = ([0-9]+)$|\1|p' /etc/cairn/cairn.toml)"
stop_unit_s="$(sed -nE 's|^TimeoutStopSec=([0-9]+)s$|\1|p' "$unit")"
[ -n "$stop_ms" ] && [ -n "$stop_unit_s" ] || fail "no stop_timeout_ms default or TimeoutStopSec"
[ "$((stop_unit_s * 1000))" -gt "$stop_ms" ] ||
  fail "TimeoutStopSec=${stop_unit_s}s is not above the node's stop_timeout_ms ($stop_ms)"
# Nothing runs as cairn: the unit is enabled, not started (/proc, as procps
# need not be installed).
cairn_uid="$(id -u cairn)"
for p in /proc/[0-9]*; do
  [ "$(stat -c %u "$p" 2>/dev/null)" != "$cairn_uid" ] ||
    fail "process ${p#/proc/} runs as cairn right after install (the unit must not start)"
done

# The packaged file parses and holds exactly the node's defaults (data_dir
# aside): the commented lines change nothing.
diff <(env -i /usr/bin/cairn node --config /etc/cairn/cairn.toml --print-config) \
  <(env -i /usr/bin/cairn node --data-dir /var/lib/cairn --print-config) ||
  fail "cairn.toml's settings differ from the node's defaults"

step "dpkg -i again (an upgrade in place) keeps an edited conffile"
sed -i 's|^# listen = .*|listen = "127.0.0.1:0"|' /etc/cairn/cairn.toml
dpkg_waiting -i "$deb" || fail "dpkg -i over the installed package failed"
grep -qx 'listen = "127.0.0.1:0"' /etc/cairn/cairn.toml || fail "reinstalling replaced the edited cairn.toml"
[ "$(id -u cairn)" = "$cairn_uid" ] || fail "reinstalling changed the cairn user"
[ "$(stat -c '%U:%G %a' /var/lib/cairn)" = "cairn:cairn 750" ] || fail "reinstalling changed /var/lib/cairn"

step "the installed cairn as the cairn user against /etc/cairn/cairn.toml"
(cd / && exec env -i PATH=/usr/bin:/bin HOME=/var/lib/cairn \
  setpriv --reuid=cairn --regid=cairn --init-groups \
  /usr/bin/cairn node --config /etc/cairn/cairn.toml --listen 127.0.0.1:0 --api 127.0.0.1:0) \
  >"$work/node.log" 2>&1 9>&- &
node_pid=$!
api=""
for _ in $(seq 1 300); do
  kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log"; fail "the node exited during start"; }
  api="$(sed -nE 's|^ +api +http://([0-9.]+:[0-9]+).*|\1|p' "$work/node.log" | head -n1)"
  [ -n "$api" ] && curl -fsS --max-time 2 "http://$api/v1/status" >"$work/status.json" 2>/dev/null && break
  api=""
  sleep 0.2
done
[ -n "$api" ] || { cat "$work/node.log"; fail "no /v1/status within 60 s"; }
echo "node answered on http://$api/v1/status"
node_id="$(sed -nE 's|^ +node id +([0-9a-f]{64}).*|\1|p' "$work/node.log" | head -n1)"
[ -n "$node_id" ] || { cat "$work/node.log"; fail "the node printed no node id"; }
grep -q "\"id\":\"$node_id\"" "$work/status.json" ||
  { cat "$work/status.json"; fail "/v1/status does not name node $node_id"; }
[ "$(stat -c '%U %a' /var/lib/cairn/identity.key)" = "cairn 600" ] ||
  fail "identity.key is $(stat -c '%U %a' /var/lib/cairn/identity.key), expected cairn 600"
[ -d /var/lib/cairn/store ] || fail "no store in /var/lib/cairn"
kill -TERM "$node_pid"
rc=""
for _ in $(seq 1 300); do
  if ! kill -0 "$node_pid" 2>/dev/null; then
    set +e; wait "$node_pid"; rc=$?; set -e
    break
  fi
  sleep 0.2
done
[ -n "$rc" ] || { cat "$work/node.log"; fail "the node did not stop within 60 s of SIGTERM"; }
node_pid=""
[ "$rc" -eq 0 ] || { cat "$work/node.log"; fail "the node exited $rc after SIGTERM"; }
echo "SIGTERM: exit 0"

step "systemd-analyze verify $unit"
man_check=()
command -v man >/dev/null || man_check=(--man=no)  # man:cairn(1) needs man-db to resolve
systemd-analyze verify "${man_check[@]}" "$unit" 2>&1 | tee "$work/verify.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "systemd-analyze verify failed"
[ ! -s "$work/verify.log" ] || fail "systemd-analyze verify warned"

step "dpkg --purge"
dpkg_waiting --purge cairn || fail "dpkg --purge failed"
if dpkg-query -W -f='${Status}' cairn 2>/dev/null | grep -q "installed\|config-files"; then
  fail "cairn still known to dpkg after purge"
fi
for gone in /usr/bin/cairn "$unit" /etc/cairn /etc/systemd/system/multi-user.target.wants/cairn.service \
  /usr/share/man/man1/cairn.1.gz /usr/share/doc/cairn; do
  [ ! -e "$gone" ] && [ ! -L "$gone" ] || fail "$gone left after purge"
done
[ -f /var/lib/cairn/identity.key ] || fail "purge removed the node's identity (the data directory is kept)"
echo "PASS"
