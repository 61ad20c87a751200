#!/usr/bin/env bash
# Build the dashboard front end (web/dashboard) into web/dashboard/dist, which
# parley-index serves under /dashboard/. Idempotent: does nothing when dist/ is
# newer than every input. Prints the dist path on stdout (all tool output goes
# to stderr), so `DIST=$(scripts/build-web.sh)` works.
#
#   scripts/build-web.sh           build if needed, print the dist path
#   scripts/build-web.sh --test    also run the unit tests (vitest)
#   scripts/build-web.sh --force   rebuild even if dist/ looks current
#
# Needs Node.js >= 18.18 and npm (Debian 12's own nodejs is enough); packages come from the npm registry only
# (pinned by package-lock.json), nothing from a CDN. If node/npm are missing,
# Debian's nodejs/npm packages are installed with apt-get.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP="$ROOT/web/dashboard"
DIST="$APP/dist"
RUN_TESTS=0
FORCE=0

for arg in "$@"; do
  case "$arg" in
    --test) RUN_TESTS=1 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-web.sh: unknown option: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "build-web: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root to run: $*"; return 1
  fi
}

ensure_node() {
  local missing=()
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
  # Vite 6 and Vitest 3 (pinned) run on Node >= 18.18: Debian 12's nodejs.
  if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>18||(a===18&&b>=18)?0:1)'; then
    log "Node.js $(node --version) is too old: the dashboard build needs >= 18.18."
    exit 1
  fi
}

# True when $1 is missing or older than any input of the build.
stale() {
  local target="$1"
  [ -e "$target" ] || return 0
  [ "$APP/package-lock.json" -nt "$target" ] && return 0
  for f in "$APP/package.json" "$APP/index.html" "$APP/vite.config.js"; do
    [ "$f" -nt "$target" ] && return 0
  done
  [ -n "$(find "$APP/src" "$APP/public" -type f -newer "$target" -print -quit 2>/dev/null)" ] && return 0
  return 1
}

ensure_deps() {
  # npm writes node_modules/.package-lock.json on every install: use it as the stamp.
  if [ ! -e "$APP/node_modules/.package-lock.json" ] || [ "$APP/package-lock.json" -nt "$APP/node_modules/.package-lock.json" ]; then
    log "npm ci (packages pinned by package-lock.json)"
    # npm 11 omits other platforms' optional packages (rollup's native
    # builds) from a lock written on this machine, and then `npm ci` refuses
    # the lock as "out of sync".  `npm install --no-save` installs the same
    # pinned versions without touching the lock.
    (cd "$APP" && { npm ci --no-audit --no-fund >&2 2>/dev/null ||
      npm install --no-audit --no-fund --no-save >&2; })
  fi
}

cd "$APP"
# Serialise concurrent runs (two builds writing dist/ at once would clash).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$APP/.build.lock"
  flock 9
fi

if [ "$FORCE" -eq 1 ] || stale "$DIST/index.html"; then
  ensure_node
  ensure_deps
  log "vite build"
  (cd "$APP" && npm run --silent build >&2)
  touch "$DIST/index.html"
else
  log "dist is up to date"
fi

if [ "$RUN_TESTS" -eq 1 ]; then
  ensure_node
  ensure_deps
  log "npm test"
  (cd "$APP" && npm test >&2)
fi

echo "$DIST"
