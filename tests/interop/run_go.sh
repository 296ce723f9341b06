#!/usr/bin/env bash
# Interoperability test with Apache Arrow's Go Flight client (github.com/apache/arrow-go/v18,
# arrow/flight over grpc-go; tests/interop/go). Starts `WIGEON serve` on a free port with an
# in-memory database, runs `go test -count=1` in tests/interop/go against it, stops the server
# with SIGTERM and exits with go test's status (non-zero also if the server died or exited badly).
#
#   tests/interop/run_go.sh path/to/wigeon
#
# Needs Go >= 1.26 (arrow-go v18.9.0's minimum). The modules are pinned by go.mod and go.sum;
# the first run downloads them through the Go module proxy into the module cache (GOMODCACHE,
# by default ~/go/pkg/mod), later runs use the cache.
set -euo pipefail

die() { echo "run_go.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 path/to/wigeon"
WIGEON=$1
[ -x "$WIGEON" ] || die "$WIGEON is not an executable (build it: cmake --build BUILD --target wigeon)"
case $WIGEON in /*) ;; *) WIGEON=$PWD/$WIGEON ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GO_DIR=$ROOT/tests/interop/go

command -v go >/dev/null 2>&1 || die "go is not installed: this test needs Go >= 1.26 (https://go.dev/dl/)"
GO_VERSION=$(go env GOVERSION)          # go1.26.8
GO_MINOR=$(echo "$GO_VERSION" | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
[ -n "$GO_MINOR" ] && [ "$GO_MINOR" -ge 26 ] || die "$GO_VERSION is too old: arrow-go v18.9.0 needs Go >= 1.26"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wigeon-go.XXXXXX")
NAME=run_go.sh
. "$ROOT/tests/interop/server.sh"

# Without HOME (some CI sandboxes) go has no default module and build cache: use .deps/go.
if [ -z "${HOME:-}" ]; then
  export GOPATH=${GOPATH:-$ROOT/.deps/go} GOCACHE=${GOCACHE:-$ROOT/.deps/go/cache}
fi

# --- modules and build, before the server starts: a cold cache costs ~10 s of downloads and
# ~90 s of compiling arrow-go and grpc-go on 2 cores; `go test` below then reuses the build ------
if ! (cd "$GO_DIR" && go mod download) >"$TMP/build.log" 2>&1; then
  cat "$TMP/build.log" >&2
  die "go mod download failed in $GO_DIR (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
fi
if ! (cd "$GO_DIR" && go test -c -o "$TMP/interop.test" .) >"$TMP/build.log" 2>&1; then
  cat "$TMP/build.log" >&2
  die "building the Go test in $GO_DIR failed"
fi

# --- server ------------------------------------------------------------------------------------
# TZ: a zone other than UTC, so TestServerZoneIsUTC proves the answers do not follow the host.
interop_server_start TZ=America/New_York

# --- the test ------------------------------------------------------------------------------------
STATUS=0
TIMEOUT=()
command -v timeout >/dev/null 2>&1 && TIMEOUT=(timeout --kill-after=10 600)
(cd "$GO_DIR" && WG_SERVER=$ADDRESS "${TIMEOUT[@]}" go test -count=1 -v -timeout 540s .) || STATUS=$?

interop_server_finish "$STATUS"
