#!/usr/bin/env bash
# Interoperability test with an independent Flight stack: Node.js, @grpc/grpc-js and Apache Arrow
# JS (tests/interop/flight_js). Starts `WIGEON serve` on a free port with an in-memory database,
# runs `node --test tests/interop/flight_js/interop_test.mjs` against it, stops the server with
# SIGTERM and exits with node's status (non-zero also if the server died or exited badly).
#
#   tests/interop/run_flight_js.sh path/to/wigeon
#
# Needs node (>= 18, for node:test) and npm; installs the pinned packages with `npm ci` into
# tests/interop/flight_js/node_modules when it is missing or package-lock.json changed.
set -euo pipefail

die() { echo "run_flight_js.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 path/to/wigeon"
WIGEON=$1
[ -x "$WIGEON" ] || die "$WIGEON is not an executable (build it: cmake --build BUILD --target wigeon)"
case $WIGEON in /*) ;; *) WIGEON=$PWD/$WIGEON ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
JS=$ROOT/tests/interop/flight_js

command -v node >/dev/null 2>&1 || die "node is not installed: this test needs Node.js >= 18 and npm (Debian: apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm is not installed: this test needs Node.js >= 18 and npm (Debian: apt-get install npm)"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 18 ] || die "node $(node --version) is too old: node:test needs Node.js >= 18"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wigeon-flight-js.XXXXXX")
NAME=run_flight_js.sh
. "$ROOT/tests/interop/server.sh"

# --- packages: npm ci when node_modules is missing or the lock file changed -------------------
STAMP=$JS/node_modules/.wigeon-lock.sha256
LOCK_SUM=$(cat "$JS/package.json" "$JS/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$LOCK_SUM" ]; then
  echo "run_flight_js.sh: npm ci in tests/interop/flight_js"
  if ! (cd "$JS" && npm ci --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1; then
    cat "$TMP/npm.log" >&2
    die "npm ci failed in $JS (is the npm registry reachable?)"
  fi
  echo "$LOCK_SUM" >"$STAMP"
fi

# --- server ------------------------------------------------------------------------------------
interop_server_start

# --- the test ------------------------------------------------------------------------------------
STATUS=0
TIMEOUT=()
command -v timeout >/dev/null 2>&1 && TIMEOUT=(timeout --kill-after=10 600)
(cd "$ROOT" && WG_SERVER=$ADDRESS "${TIMEOUT[@]}" node --test --test-reporter=tap tests/interop/flight_js/interop_test.mjs) || STATUS=$?

interop_server_finish "$STATUS"
