#!/bin/sh
# Fails when a source file includes a header from a layer above its own,
# when the pure modules pull in I/O, or when banned functions appear
# (the curl checksrc idea).  Run by ctest as lint.layers.
set -u
cd "$(dirname "$0")/.."
fail=0

allowed() {
  case "$1" in
    core) echo "core" ;;
    wire) echo "core wire" ;;
    crypto) echo "core wire crypto" ;;
    net) echo "core wire crypto net" ;;
    store) echo "core wire store" ;;
    metrics) echo "core metrics" ;;
    http) echo "core http" ;;
    index) echo "core wire crypto net http metrics index" ;;
    peer) echo "core wire crypto net store http metrics peer parley" ;;
    apps) echo "core wire crypto net store http metrics index peer apps parley" ;;
    *) echo "" ;;
  esac
}

for f in $(find src -name '*.[ch]'); do
  layer=$(echo "$f" | cut -d/ -f2)
  ok=$(allowed "$layer")
  for inc in $(sed -n 's/^#include "\([a-z]*\)\/.*"/\1/p' "$f"); do
    case " $ok " in
      *" $inc "*) ;;
      *) echo "layering: $f ($layer) includes $inc/"; fail=1 ;;
    esac
  done
done

# The public API (include/parley/, implemented by the peer layer) stands
# alone: system headers only, nothing from src/.
if grep -n '#include "' include/parley/*.h; then
  echo "public headers: include/parley/ may include system headers only"; fail=1
fi

# The codec, the registry state machine and core stay free of I/O.
for f in src/core/*.[ch] src/wire/*.[ch] src/index/registry*.[ch]; do
  if grep -nE '#include <(uv|sqlite3|microhttpd)\.h>' "$f"; then
    echo "purity: $f must not use libuv, SQLite or libmicrohttpd"; fail=1
  fi
done
# libraft stays behind src/index/consensus.c (it could be swapped for its
# maintained fork without touching anything else).
if grep -lnE '#include <raft(\.h|/)' $(find src -name '*.[ch]') | grep -v 'src/index/consensus\.c'; then
  echo "raft: only src/index/consensus.c may include libraft headers"; fail=1
fi
if grep -nE '(^|[^a-z_])(printf|puts)\(|fprintf\(std(out|err)' src/wire/*.c src/crypto/*.c \
    src/net/*.c src/store/*.c src/index/*.c src/peer/*.c src/http/*.c \
    src/metrics/*.c | grep -v 'snprintf\|vsnprintf'; then
  echo "logging: library code prints; use PARLEY_LOG"; fail=1
fi
if grep -nE '\b(sprintf|strcpy|strcat|strtok|strtok_r|atoi|atol|gets)\(' \
    $(find src -name '*.[ch]') | grep -v 'snprintf\|vsnprintf'; then
  echo "checksrc: banned function (use snprintf, parley_parse_u64, ...)"; fail=1
fi
[ $fail = 0 ] && echo "layers, purity and banned functions: clean"
exit $fail
