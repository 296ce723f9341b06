#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time over a corpus seeded from ../shared (valid gold
# streams and known-bad fuzz files). Usage: fuzz.sh BINARY SECONDS SHARED_DIR CORPUS_DIR
set -euo pipefail
bin=$1 secs=$2 shared=$3 corpus=$4
mkdir -p "$corpus"
cp -n "$shared"/arrow-gold/*/*.stream "$corpus"/ 2>/dev/null || true
for f in "$shared"/arrow-fuzz/*; do [ "$(basename "$f")" = SOURCE.txt ] || cp -n "$f" "$corpus"/; done
# Every known-bad file once, then fuzz for the given time (libFuzzer exits non-zero on a finding).
"$bin" -runs=0 "$corpus" 2>&1 | tail -n 3
exec "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 "$corpus" 2>&1 | tail -n 20
