#!/usr/bin/env bash
# wigeon setup: installs what the build needs on Debian 12, fetches DuckDB 1.4.4 (prebuilt
# libduckdb.so and duckdb.h from the npm registry, checksums verified) into .deps/duckdb, and
# makes the Python test clients' virtual environment .deps/venv (pinned versions from PyPI).
# Re-running is fast: each step is skipped when already done.
# Set DUCKDB_ROOT (a folder with include/duckdb.h and lib/libduckdb.so) to use your own DuckDB.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config libgrpc-dev libprotobuf-c-dev protobuf-c-compiler
      liblz4-dev libzstd-dev zlib1g-dev libcjson-dev libsodium-dev clang libclang-rt-14-dev npm
      python3 python3-venv)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# node's npm may come from elsewhere than Debian; only install Debian's npm when none is there.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm/}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Python test clients (pyarrow, duckdb, pandas, pytest; pinned in
# tests/interop/python/requirements.txt) in the git-ignored virtual environment .deps/venv.
# Skipped when the venv already holds exactly that file's pins.
setup_venv() {
  local venv=.deps/venv req=tests/interop/python/requirements.txt
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.ok" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  rm -rf "$venv"
  local py
  for py in python3 /usr/bin/python3; do
    if "$py" -m venv "$venv" >/dev/null 2>&1 && [ -x "$venv/bin/pip" ]; then break; fi
    rm -rf "$venv"
  done
  if [ ! -x "$venv/bin/pip" ]; then
    echo "setup: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
  echo "setup: installing the Python test clients into $venv ($(tr '\n' ' ' < "$req"))"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: -r "$req"
  echo "$want" > "$venv/.ok"
}
setup_venv

if [ -n "${DUCKDB_ROOT:-}" ]; then
  echo "setup: using DuckDB from DUCKDB_ROOT=$DUCKDB_ROOT"
  exit 0
fi

dest=.deps/duckdb
if [ -f "$dest/lib/libduckdb.so" ] && [ -f "$dest/include/duckdb.h" ] && [ -f "$dest/.ok" ]; then
  exit 0
fi
fetch() { # name@version sha256 -> path of the verified tarball
  local spec=$1 sum=$2 dir=.deps/npm
  mkdir -p "$dir"
  local file
  file=$(ls "$dir"/*.tgz 2>/dev/null | while read -r f; do
    [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$sum" ] && echo "$f"; done | head -n1)
  if [ -z "$file" ]; then
    echo "setup: npm pack $spec" >&2
    file="$dir/$(cd "$dir" && npm pack --silent "$spec" | tail -n1)"
  fi
  local got
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then
    echo "setup: checksum mismatch for $spec: got $got, want $sum" >&2
    rm -f "$file"
    exit 1
  fi
  echo "$file"
}
lib_tgz=$(fetch @duckdb/node-bindings-linux-x64@1.4.4-r.4 \
  732fac4dc6b8f198870b9c4bb6ddf13544466daca00ad28ba2f1d80de5d7aa4b)
hdr_tgz=$(fetch duckdb@1.4.4 5bb967dcbcd517670ba5f169f238fb9d6787e53752c60ebe24386169d76941ed)
rm -rf "$dest" && mkdir -p "$dest/lib" "$dest/include"
tar -xzf "$lib_tgz" -O package/libduckdb.so > "$dest/lib/libduckdb.so"
tar -xzf "$hdr_tgz" -O package/src/duckdb/src/include/duckdb.h > "$dest/include/duckdb.h"
touch "$dest/.ok"
echo "setup: DuckDB 1.4.4 in $dest"
