#!/bin/sh
# Installs what the comparative benchmarks need (Debian 12 package names):
# the anchors' brokers and client libraries, and perf for profiling.
# Idempotent: installs only missing packages, and runs `apt-get update`
# once, only when something is missing. Needs root (or sudo) then.
# Note: Debian starts the mosquitto and redis-server system services on
# their default ports; bench.py runs its own brokers on free ports.
set -eu

PKGS="libzmq3-dev libnng-dev nats-server libnats-dev mosquitto libmosquitto-dev
redis-server libhiredis-dev linux-perf"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "bench: all benchmark packages are installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "bench: installing$missing"
$SUDO apt-get update -o DPkg::Lock::Timeout=300
# shellcheck disable=SC2086 # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -o DPkg::Lock::Timeout=300 $missing
