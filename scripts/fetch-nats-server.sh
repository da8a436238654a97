#!/bin/sh
# Installs nats-server 2.10 (Debian 13's package) as tools/bin/nats-server. Debian 12 ships 2.9.10,
# which cannot fsync each write (sync_interval: always). The binary is static Go and runs on
# Debian 12. Usage: sh scripts/fetch-nats-server.sh
set -eu
cd "$(dirname "$0")/.."
want=2.10
sh scripts/fetch-debian-package.sh nats-server
mkdir -p tools/bin
install -m 0755 tools/debs/nats-server/usr/sbin/nats-server tools/bin/nats-server
rm -rf tools/debs/nats-server
version=$(tools/bin/nats-server --version)
case "$version" in
  *"v$want".*) echo "fetch-nats-server: $version in tools/bin" >&2 ;;
  *) echo "fetch-nats-server: expected v$want.x, got $version" >&2; exit 1 ;;
esac
