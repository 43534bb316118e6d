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
  # The style check (tools/dev/format-check, ctest test FormatCheck.TreeMatchesClangFormat).
  clang-format-14
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
  # npm fetches the test tools into the build (cairn_install_ganache). It
  # may come with a Node.js from elsewhere (nodesource's nodejs carries its
  # own npm and conflicts with Debian's): Debian's only when there is none.
  command -v npm >/dev/null 2>&1 || missing+=(npm)
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

cairn_ccache_env() {
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
  export CCACHE_BASEDIR="$CAIRN_ROOT"
  # Build directories differ between clones and worktrees: keep the working
  # directory out of the hash so they share one cache.
  export CCACHE_NOHASHDIR=true
}

cairn_build() {
  local werror=OFF
  [ "${CI:-}" = "true" ] && werror=ON
  local jobs="${CAIRN_JOBS:-$(nproc)}"
  cairn_ccache_env
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

# The sanitizer trees of tools/run-tests' default run. Each tree rebuilds the
# tests that ctest selects with CAIRN_SANITIZER_LABELS (the unit tests, and the
# simulations once tests are labelled "sim...") minus CAIRN_SANITIZER_EXCLUDE,
# with CMake's CAIRN_SANITIZE, and runs them there; the runtime options and
# suppressions come from tests/sanitizers/ (ctest sets them). Which targets to
# build is read from the main tree's ctest listing (the executable each
# selected test runs), so a new test binary joins without a list to update,
# and no tree builds the cairn binary, the benches or the header checks.
#
# CAIRN_SANITIZERS picks the trees: "asan tsan", "asan", "tsan", or 0 (the
# default, until a cold build of both fits CI's time budget). Needs the main tree ($CAIRN_BUILD) built. Runs every tree even
# after a failure; returns 1 if any build or test failed.
CAIRN_SANITIZER_LABELS='^(unit|sim)'
CAIRN_SANITIZER_UNITY_BATCH=8
# Left out of both trees: the build and link checks (the same in every tree:
# the main run has them), and Challenge.* (tests/node/challenge_test.cpp:
# three nodes on real TCP must walk their replicas within the 400 ms
# real-time deadline; instrumented walks took 460-1,250 ms on the 2-core
# machine and missed it). The epoch driver runs instrumented on the manual
# clock in EpochDriverTest.* and SimChallenge.*, where no deadline is real time.
CAIRN_SANITIZER_EXCLUDE='^(HeaderCheck\.|verify_links_|FormatCheck\.|Challenge\.)'
# Tests left out of the TSan tree only, each for a stated reason (too slow
# under TSan's 5-15x); a race is never a reason: fix it.
CAIRN_TSAN_EXCLUDE=()

cairn_sanitizer_tests() {
  local which="${CAIRN_SANITIZERS:-0}"
  [ "$which" = "0" ] && return 0
  local jobs="${CAIRN_JOBS:-$(nproc)}"
  cairn_ccache_env
  local targets
  targets="$(ctest --test-dir "$CAIRN_BUILD" -N --show-only=json-v1 \
      -L "$CAIRN_SANITIZER_LABELS" -E "$CAIRN_SANITIZER_EXCLUDE" |
    python3 -c 'import json, os, sys
print(" ".join(sorted({os.path.basename(t["command"][0]) for t in json.load(sys.stdin)["tests"]})))')"
  [ -n "$targets" ] || { echo "cairn: no tests match $CAIRN_SANITIZER_LABELS in $CAIRN_BUILD" >&2; return 1; }
  local failed=0 name sanitize exclude dir start
  for name in $which; do
    case "$name" in
      asan) sanitize=address,undefined; exclude="$CAIRN_SANITIZER_EXCLUDE" ;;
      tsan) sanitize=thread; exclude="$CAIRN_SANITIZER_EXCLUDE"
        if [ "${#CAIRN_TSAN_EXCLUDE[@]}" -gt 0 ]; then
          exclude+="|^($(IFS='|'; echo "${CAIRN_TSAN_EXCLUDE[*]}"))\$"
        fi ;;
      *) echo "cairn: CAIRN_SANITIZERS: unknown tree '$name' (asan, tsan or 0)" >&2; return 2 ;;
    esac
    dir="$CAIRN_BUILD-$name"
    echo "cairn: $name tree ($dir): -fsanitize=$sanitize; building $targets" >&2
    start=$SECONDS
    # Warnings stay warnings here: the instrumentation changes what gcc
    # inlines, and its flow warnings (-Wmaybe-uninitialized in libstdc++'s
    # <regex>, ...) then fire on library code. The main tree has -Werror.
    # Unity builds (CAIRN_SANITIZER_UNITY_BATCH sources per compiler run)
    # parse the shared headers and emit their inline code once per batch:
    # a cold tree builds in a fraction of the time. So names at file
    # scope (anonymous namespaces, statics) must be unique within a target;
    # a clash is a compile error in these trees, fixed by a more specific
    # name or by sharing the one definition.
    # shellcheck disable=SC2086
    if ! { cmake -S "$CAIRN_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
             -DCAIRN_SANITIZE="$sanitize" -DCAIRN_WERROR=OFF -DCAIRN_BUILD_BENCH=OFF \
             -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE="$CAIRN_SANITIZER_UNITY_BATCH" >&2 &&
           cmake --build "$dir" -j "$jobs" --target $targets >&2; }; then
      echo "cairn: $name tree: build failed" >&2
      failed=1
      continue
    fi
    echo "cairn: $name tree: built in $((SECONDS - start)) s" >&2
    start=$SECONDS
    ctest --test-dir "$dir" --output-on-failure --timeout 900 -j "${CAIRN_TEST_JOBS:-2}" \
      -L "$CAIRN_SANITIZER_LABELS" -E "$exclude" || failed=1
    echo "cairn: $name tree: tests took $((SECONDS - start)) s" >&2
  done
  return "$failed"
}
