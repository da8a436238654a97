#!/bin/sh
# Makes this checkout ready to run: system packages (apt, as root), npm dependencies (npm ci)
# and the TypeScript build. Idempotent and quick when nothing changed, so `npm test` and
# `npm run up` call it every time.
# Usage: sh scripts/ensure-deps.sh [--quiet] [--bench]   (--bench adds what the benchmarks need)
set -eu
cd "$(dirname "$0")/.."
quiet=""
bench=""
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --bench) bench=1 ;;
    *) echo "ensure-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done
say() { [ -n "$quiet" ] || echo "ensure-deps: $*" >&2; }

# 1. Node.js >= 20.19 (require(esm) and the npm pins in ../shared/ENVIRONMENT.md assume it).
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' || {
  echo "ensure-deps: Node.js >= 20.19 is required (found $(node --version))" >&2
  exit 1
}

# 2. System packages, one per line in scripts/system-packages.txt (and bench-packages.txt with
#    --bench); '#' starts a comment.
missing=""
lists=scripts/system-packages.txt
[ -z "$bench" ] || lists="$lists scripts/bench-packages.txt"
for pkg in $(cat $lists | sed -e 's/#.*//'); do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ensure-deps: missing system packages:$missing (run this script as root, or apt-get install them)" >&2
    exit 1
  fi
  say "installing system packages:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# 3. nats-server 2.10 (fsync per write) from Debian trixie, into tools/bin (see the script).
if ! tools/bin/nats-server --version 2>/dev/null | grep -q 'v2\.10\.'; then
  say "fetching nats-server 2.10 into tools/bin"
  sh scripts/fetch-nats-server.sh
fi

# 4. The Kubernetes 1.32 API protobuf definitions (Debian trixie), for protobuf request bodies.
if [ ! -f core/generated/proto/SOURCES ] || [ ! -d core/generated/go ]; then
  say "fetching the Kubernetes API protobuf definitions into core/generated/proto"
  sh scripts/fetch-k8s-protos.sh
fi

# 5. npm dependencies, reinstalled when package-lock.json changed since the last install.
stamp=node_modules/.kubernel-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# 6. Build: the Kubernetes schemas (regenerated only when their inputs change), then tsc -b
#    (incremental: a no-op when nothing changed).
say "building"
node tools/gen-k8s-schemas.mjs
node tools/gen-k8s-go-facts.mjs
npx tsc -b
