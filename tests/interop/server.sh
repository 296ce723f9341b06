# Sourced by the interop runners (run_flight_js.sh, run_go.sh): one `wigeon serve` on a free
# loopback port with an in-memory database, stopped by its pid. The runner sets NAME (its name in
# messages), WIGEON (the binary) and TMP (a scratch folder, removed on exit), and defines die().
#
#   interop_server_start [VAR=value ...]   start it (with those environment variables); sets
#                                          SERVER_PID and ADDRESS (HOST:PORT)
#   interop_server_finish STATUS           exit with STATUS, or 1 if the server died during the
#                                          test or did not exit 0 on SIGTERM

SERVER_PID=
interop_cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap interop_cleanup EXIT

interop_server_start() {
  env "$@" "$WIGEON" serve --listen 127.0.0.1:0 --db :memory: >"$TMP/server.out" 2>"$TMP/server.err" &
  SERVER_PID=$!
  local line=
  for _ in $(seq 1 300); do
    if [ "$(wc -l <"$TMP/server.out")" -ge 1 ]; then   # a whole first line
      line=$(head -n 1 "$TMP/server.out")
      break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$TMP/server.err" >&2
      die "the server exited before listening"
    fi
    sleep 0.1
  done
  case $line in
    *listening\ on\ grpc://*) ADDRESS=${line##*grpc://} ;;
    *) cat "$TMP/server.err" >&2; die "no 'listening on grpc://HOST:PORT' line from the server within 30 s (got: '$line')" ;;
  esac
  echo "$NAME: server pid $SERVER_PID at $ADDRESS"
}

interop_server_finish() {
  local status=$1 server_status=0
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    wait "$SERVER_PID" && server_status=0 || server_status=$?
    SERVER_PID=
    echo "$NAME: the server died during the test (exit status $server_status); its stderr:" >&2
    cat "$TMP/server.err" >&2
    exit 1
  fi
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "$NAME: the server did not stop within 30 s of SIGTERM" >&2
    server_status=1
  else
    wait "$SERVER_PID" || server_status=$?
    SERVER_PID=
  fi
  if [ "$server_status" -ne 0 ]; then
    echo "$NAME: the server exited with status $server_status after SIGTERM; its stderr:" >&2
    cat "$TMP/server.err" >&2
    [ "$status" -ne 0 ] || status=1
  fi
  if [ "$status" -ne 0 ]; then
    echo "$NAME: FAILED (test exit status $status); server stderr (last 40 lines):" >&2
    tail -n 40 "$TMP/server.err" >&2
  fi
  exit "$status"
}
