#!/bin/sh
# Static analysis, run by ctest (lint.cppcheck, lint.clang-tidy):
#   scripts/lint.sh cppcheck
#   scripts/lint.sh clang-tidy BUILD_DIR   (needs BUILD_DIR/compile_commands.json)
# Any finding fails.  .clang-tidy holds the clang-tidy checks and naming
# rules; cppcheck runs its warning, performance and portability checks.
set -eu
cd "$(dirname "$0")/.."
case "${1:-}" in
  cppcheck)
    exec cppcheck --std=c11 --enable=warning,performance,portability \
      --inline-suppr --error-exitcode=1 -q -I src -D_DEFAULT_SOURCE \
      --suppress=missingIncludeSystem --suppress=unknownMacro src
    ;;
  clang-tidy)
    build=${2:?build dir}
    [ -f "$build/compile_commands.json" ] || {
      echo "lint: $build/compile_commands.json missing"; exit 1; }
    out=$(find src -name '*.c' | sort | xargs -P2 -n6 \
      clang-tidy -p "$build" --quiet 2>/dev/null | grep -E 'error:|warning:' || true)
    if [ -n "$out" ]; then
      echo "$out"
      exit 1
    fi
    echo "clang-tidy: clean"
    ;;
  *)
    echo "usage: lint.sh cppcheck | clang-tidy BUILD_DIR" >&2
    exit 2
    ;;
esac
