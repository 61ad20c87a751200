#!/bin/sh
# Installs what is missing, builds Parley, and runs a local network: one
# index and four named peers on 127.0.0.1, a short scripted conversation,
# then keeps running until Ctrl-C (or --for SECONDS).
# usage: scripts/demo.sh [--for SECONDS] [--no-build]
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
secs="" build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --for) secs=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "demo: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ $build = 1 ]; then
  scripts/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j2 >/dev/null
  scripts/build-web.sh >/dev/null   # the dashboard the index serves
fi
bin=$top/build
demo=$top/demo-data
INDEX=${PARLEY_DEMO_INDEX:-127.0.0.1:7400}
HTTP=${PARLEY_DEMO_HTTP:-127.0.0.1:7480}
rm -rf "$demo"   # every demo starts from a clean network
mkdir -p "$demo"
pids=""
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

"$bin/parley-index" --listen "$INDEX" --http "$HTTP" --data "$demo/index" \
  >"$demo/index.out" 2>"$demo/index.log" &
pids="$pids $!"
sleep 0.5
for name in alice bob carol dave; do
  "$bin/parleyd" --data "$demo/$name" --index "$INDEX" --name "$name" \
    >"$demo/$name.out" 2>"$demo/$name.log" &
  pids="$pids $!"
done
p() { who=$1; shift; "$bin/parley" --data "$demo/$who" "$@"; }
for name in alice bob carol dave; do
  i=0
  until p "$name" status --json 2>/dev/null | grep -q '"connected":true'; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "demo: $name did not start; see $demo/$name.log" >&2; exit 1; }
    sleep 0.1
  done
done

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
say "bob, carol and dave subscribe to 'lunch'"
for who in bob carol dave; do p $who subscribe lunch >/dev/null; done
p alice topics
say "alice: parley publish --ack lunch 'Pizza at noon?'"
p alice publish --ack lunch "Pizza at noon?"
say "bob subscribes to 'ops'; dave publishes two lines there"
p bob subscribe ops >/dev/null
printf 'deploy 1.4 done\nall green\n' | p dave publish --ack --lines ops -
say "carol sends bob a direct message"
p carol send "$(p bob id)" "Bob, can you bring the slides?"
say "bob: parley history"
p bob history
say "bob: parley history --search pizza"
p bob history --search pizza
say "parley peers"
p alice peers

echo
echo "The network is running.  Talk to a peer with its data directory, e.g.:"
for name in alice bob carol dave; do
  echo "  $bin/parley --data $demo/$name status"
done
echo "  $bin/parley --data $demo/bob listen        # live messages"
token=$("$bin/parley-index" token create --data "$demo/index" --role viewer --ttl 12h)
echo "Dashboard (live): http://$HTTP/dashboard/#token=$token"
echo "Index: $INDEX; its HTTP API needs a token (viewer, 12 h):"
echo "  curl -H 'Authorization: Bearer $token' http://$HTTP/v1/status"
echo "  curl -H 'Authorization: Bearer $token' http://$HTTP/metrics"
echo "Logs in $demo/*.log.  Ctrl-C stops everything."
# Keep some traffic flowing so the dashboard has live figures.
( n=0; while :; do n=$((n + 1))
    p alice publish lunch "tick $n" >/dev/null 2>&1 || true
    p dave publish --ack ops "heartbeat $n" >/dev/null 2>&1 || true
    sleep 1; done ) &
pids="$pids $!"
if [ -n "$secs" ]; then
  sleep "$secs"
else
  while :; do sleep 3600; done
fi
