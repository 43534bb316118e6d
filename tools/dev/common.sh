# Shared by tools/run-node and tools/run-tests: install what the build needs,
# then configure and build into ./build. Sourced, not run.
set -euo pipefail

CAIRN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CAIRN_BUILD="${CAIRN_BUILD_DIR:-$CAIRN_ROOT/build}"

# Debian packages the build and the test suite need.
CAIRN_APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git
  libasio-dev libsodium-dev librocksdb-dev libzstd-dev libisal-dev libcli11-dev
  libssl-dev libexpected-dev nlohmann-json3-dev
  libcpp-httplib-dev
  libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # The package test (tests/package/): systemd-analyze, curl.
  systemd curl
  # The dashboard and alert-rules test (tests/prometheus/).
  prometheus python3
  # The status page test in headless Chromium (tests/integration/).
  chromium
)

cairn_missing_packages() {
  local missing=()
  for p in "${CAIRN_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

cairn_install_deps() {
  local missing
  missing="$(cairn_missing_packages)"
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "cairn: installing Debian packages: $missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >&2
  else
    echo "cairn: missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get install -y $missing" >&2
    exit 3
  fi
}

cairn_build() {
  local werror=OFF
  [ "${CI:-}" = "true" ] && werror=ON
  local jobs="${CAIRN_JOBS:-$(nproc)}"
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
  export CCACHE_BASEDIR="$CAIRN_ROOT"
  # Build directories differ between clones and worktrees: keep the working
  # directory out of the hash so they share one cache.
  export CCACHE_NOHASHDIR=true
  cmake -S "$CAIRN_ROOT" -B "$CAIRN_BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_WERROR="$werror" "$@" >&2
  cmake --build "$CAIRN_BUILD" -j "$jobs" >&2
}

# Installs ganache (an Ethereum JSON-RPC node) once into $CAIRN_BUILD/npm for
# the tests labelled "ethereum", when npm is available. Without npm (or the
# npm registry) those tests skip with a message; nothing else needs it.
cairn_install_ganache() {
  [ -x "$CAIRN_BUILD/npm/node_modules/.bin/ganache" ] && return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "cairn: npm not found; the ethereum-labelled tests will be skipped" >&2
    return 0
  fi
  echo "cairn: installing ganache@7 into $CAIRN_BUILD/npm for the ethereum tests" >&2
  npm install --prefix "$CAIRN_BUILD/npm" --no-audit --no-fund --loglevel=error ganache@7 >&2 ||
    echo "cairn: installing ganache failed; the ethereum-labelled tests will be skipped" >&2
}
