#!/bin/sh
# Installs the Debian packages Parley needs to build, test and run its demo.
# Idempotent: packages already present are left alone; apt-get runs only if
# something is missing.  The comparative benchmarks' anchors (ZeroMQ, NNG,
# NATS, Mosquitto, Redis) are included: `bench --quick` runs in the test
# command to keep the harness working.  Usage: scripts/install-deps.sh
set -eu

PKGS="build-essential cmake pkg-config git clang libclang-rt-14-dev \
clang-tidy cppcheck \
libuv1-dev libsodium-dev libsqlite3-dev sqlite3 libraft-dev libmicrohttpd-dev \
libcurl4-openssl-dev libjansson-dev libjwt-dev libcmocka-dev \
python3 iproute2 nftables procps chromium \
libzmq3-dev libnng-dev nats-server libnats-dev mosquitto libmosquitto-dev \
redis-server libhiredis-dev"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "install-deps: installing:$missing" >&2
  $SUDO apt-get update -o DPkg::Lock::Timeout=300 -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    -o DPkg::Lock::Timeout=300 --no-install-recommends $missing
fi
