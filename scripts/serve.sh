#!/usr/bin/env bash
# wigeon: set up, build and start the server on an embedded default database (./wigeon.duckdb).
# Extra arguments go to `wigeon serve`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$root/build" >/dev/null
cmake --build "$root/build" -j "$(nproc)"
if "$root/build/wigeon" help | grep -q '^  serve'; then
  exec "$root/build/wigeon" serve "$@"
fi
echo "wigeon: the server command is not built yet (see the open issues); this build has:" >&2
exec "$root/build/wigeon" version
