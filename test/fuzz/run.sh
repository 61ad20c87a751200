#!/bin/sh
# Runs one libFuzzer target for SECONDS on a scratch copy of its seed corpus
# (new inputs it finds are not written into the repository).
# usage: run.sh FUZZER SEED_DIR SECONDS
set -eu
fuzzer=$1 seeds=$2 secs=$3
[ -x "$fuzzer" ] || { echo "fuzz: $fuzzer not built"; exit 1; }
[ -d "$seeds" ] || { echo "fuzz: no seed corpus at $seeds"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work"/
cd "$work"
# -rss_limit_mb keeps a leak from eating the machine; any crash, leak or
# sanitizer report makes libFuzzer exit non-zero.
exec "$fuzzer" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="$work/" "$work"
