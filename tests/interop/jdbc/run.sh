#!/usr/bin/env bash
# Interoperability test with the Apache Arrow Flight SQL JDBC driver
# (org.apache.arrow:flight-sql-jdbc-driver, pinned in tests/interop/jdbc/pom.xml). Builds the
# small Java program in tests/interop/jdbc with Maven, starts `WIGEON serve` on a free port with an
# in-memory database, runs the program against it, stops the server with SIGTERM and exits with
# the program's status (non-zero also if the server died or exited badly).
#
#   tests/interop/jdbc/run.sh path/to/wigeon [CHECK_NAME_SUBSTRING]
#
# Needs Java >= 17 and Maven. The driver and Maven's plugins come from Maven Central into the
# git-ignored .deps/m2 (MAVEN_REPO to override): 67 MB, fetched once per clean clone (fetch and
# compile ~20 s on 2 cores; later runs ~5 s); the classes go to the git-ignored .deps/jdbc-target.
# 18.3.0 is the newest driver Maven Central serves here; it needs
# --add-opens=java.base/java.nio=ALL-UNNAMED on Java 17. The JVM runs in UTC, the server in
# America/New_York.
set -euo pipefail

die() { echo "run.sh (jdbc): $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 path/to/wigeon [CHECK_NAME_SUBSTRING]"
WIGEON=$1
ONLY=${2:-}
[ -x "$WIGEON" ] || die "$WIGEON is not an executable (build it: cmake --build BUILD --target wigeon)"
case $WIGEON in /*) ;; *) WIGEON=$PWD/$WIGEON ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
JDBC_DIR=$ROOT/tests/interop/jdbc
REPO=${MAVEN_REPO:-$ROOT/.deps/m2}
TARGET=$ROOT/.deps/jdbc-target

command -v java >/dev/null 2>&1 || die "java is not installed: this test needs Java >= 17"
command -v mvn >/dev/null 2>&1 || die "mvn is not installed: this test needs Maven (apt-get install maven)"
JAVA_MAJOR=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
[ -n "$JAVA_MAJOR" ] && [ "${JAVA_MAJOR%%.*}" -ge 17 ] || die "Java $JAVA_MAJOR is too old: this test needs Java >= 17"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wigeon-jdbc.XXXXXX")
NAME="run.sh (jdbc)"
. "$ROOT/tests/interop/server.sh"

# --- the driver and the build, before the server starts ---------------------------------------
t0=$(date +%s)
if ! mvn -B -q -f "$JDBC_DIR/pom.xml" -Dmaven.repo.local="$REPO" -Dwg.target="$TARGET" \
     compile dependency:build-classpath -Dmdep.outputFile="$TMP/classpath" >"$TMP/build.log" 2>&1; then
  cat "$TMP/build.log" >&2
  die "the Maven build in $JDBC_DIR failed (is Maven Central reachable? repository $REPO)"
fi
echo "$NAME: driver fetched and program built in $(( $(date +%s) - t0 )) s"
CLASSPATH_JDBC="$TARGET/classes:$(cat "$TMP/classpath")"

VERSION=$("$WIGEON" --version | awk '{print $2}')
[ -n "$VERSION" ] || die "no version from $WIGEON --version"

# --- server: a zone other than UTC, so answers that follow the host's zone show ---------------
interop_server_start TZ=America/New_York

# --- the program ---------------------------------------------------------------------------------
STATUS=0
TIMEOUT=()
command -v timeout >/dev/null 2>&1 && TIMEOUT=(timeout --kill-after=10 600)
"${TIMEOUT[@]}" java -Duser.timezone=UTC --add-opens=java.base/java.nio=ALL-UNNAMED \
  -cp "$CLASSPATH_JDBC" wigeon.JdbcInterop "$ADDRESS" "$VERSION" $ONLY || STATUS=$?

# --- TLS: a second server with test certificates made here (openssl), the Tls checks only ------
tls_pass() {
  local d=$TMP/tls
  mkdir -p "$d"
  (cd "$d" &&
   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
     -days 2 -subj "/CN=wigeon jdbc test CA" -addext basicConstraints=critical,CA:TRUE \
     -addext keyUsage=critical,keyCertSign,cRLSign &&
   for who in server client; do
     openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $who.key \
       -out $who.csr -subj "/CN=wigeon jdbc test $who" &&
     if [ $who = server ]; then
       printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >$who.ext
     else
       printf 'extendedKeyUsage=clientAuth\n' >$who.ext
     fi &&
     openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -set_serial $RANDOM$RANDOM -days 2 \
       -extfile $who.ext -out $who.pem || return 1
   done) >"$TMP/tls.log" 2>&1 || { cat "$TMP/tls.log" >&2; return 1; }
  "$WIGEON" serve --listen 127.0.0.1:0 --db :memory: --tls-cert "$d/server.pem" \
    --tls-key "$d/server.key" --tls-client-ca "$d/ca.pem" >"$TMP/tls.out" 2>"$TMP/tls.err" &
  TLS_PID=$!
  local line=
  for _ in $(seq 1 300); do
    line=$(head -n 1 "$TMP/tls.out")
    case $line in *listening\ on\ grpc+tls://*:*) break ;; esac
    kill -0 "$TLS_PID" 2>/dev/null || break
    sleep 0.1
  done
  case $line in
    *listening\ on\ grpc+tls://*) ;;
    *) cat "$TMP/tls.err" >&2; echo "$NAME: the TLS server did not listen" >&2; return 1 ;;
  esac
  local port=${line##*:}
  echo "$NAME: TLS server pid $TLS_PID on port $port"
  local rc=0
  "${TIMEOUT[@]}" java -Duser.timezone=UTC --add-opens=java.base/java.nio=ALL-UNNAMED \
    -Dwg.tls.address="localhost:$port" -Dwg.tls.ca="$d/ca.pem" -Dwg.tls.cert="$d/client.pem" \
    -Dwg.tls.key="$d/client.key" -cp "$CLASSPATH_JDBC" wigeon.JdbcInterop "localhost:$port" \
    "$VERSION" $ONLY || rc=$?
  kill -TERM "$TLS_PID" 2>/dev/null || true
  wait "$TLS_PID" || { echo "$NAME: the TLS server did not exit 0" >&2; cat "$TMP/tls.err" >&2; rc=1; }
  TLS_PID=
  return $rc
}
# --- authentication: a third server with --users made by `WIGEON passwd`, the Auth checks only --
auth_pass() {
  local users=$TMP/users who
  for who in reader:read writer:write admin:admin; do
    echo "${who%%:*}-secret" | "$WIGEON" passwd --users "$users" "${who%%:*}" --role "${who#*:}" \
      >>"$TMP/auth.log" 2>&1 || { cat "$TMP/auth.log" >&2; return 1; }
  done
  "$WIGEON" serve --listen 127.0.0.1:0 --db :memory: --users "$users" \
    >"$TMP/auth.out" 2>"$TMP/auth.err" &
  AUTH_PID=$!
  local line=
  for _ in $(seq 1 300); do
    line=$(head -n 1 "$TMP/auth.out")
    case $line in *listening\ on\ grpc://*:*) break ;; esac
    kill -0 "$AUTH_PID" 2>/dev/null || break
    sleep 0.1
  done
  case $line in
    *listening\ on\ grpc://*) ;;
    *) cat "$TMP/auth.err" >&2; echo "$NAME: the auth server did not listen" >&2; return 1 ;;
  esac
  local port=${line##*:}
  echo "$NAME: auth server pid $AUTH_PID on port $port"
  local rc=0
  "${TIMEOUT[@]}" java -Duser.timezone=UTC --add-opens=java.base/java.nio=ALL-UNNAMED \
    -Dwg.auth.address="127.0.0.1:$port" -Dwg.auth.reader=reader:reader-secret \
    -Dwg.auth.writer=writer:writer-secret -Dwg.auth.admin=admin:admin-secret \
    -cp "$CLASSPATH_JDBC" wigeon.JdbcInterop "127.0.0.1:$port" "$VERSION" $ONLY || rc=$?
  kill -TERM "$AUTH_PID" 2>/dev/null || true
  wait "$AUTH_PID" || { echo "$NAME: the auth server did not exit 0" >&2; cat "$TMP/auth.err" >&2; rc=1; }
  AUTH_PID=
  return $rc
}
TLS_PID=
AUTH_PID=
trap '[ -z "$TLS_PID" ] || kill -KILL "$TLS_PID" 2>/dev/null || true
      [ -z "$AUTH_PID" ] || kill -KILL "$AUTH_PID" 2>/dev/null || true; interop_cleanup' EXIT
tls_pass || STATUS=1
auth_pass || STATUS=1

interop_server_finish "$STATUS"
