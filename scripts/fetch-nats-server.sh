#!/bin/sh
# Fetches nats-server 2.10 (Debian 13 "trixie" package) into tools/bin/nats-server, without
# touching the system's apt sources: a private apt state under tools/apt is used for this one
# download. Debian 12 ships 2.9.10, which cannot fsync each write (sync_interval: always).
# The binary is static Go and runs on Debian 12. Usage: sh scripts/fetch-nats-server.sh
set -eu
cd "$(dirname "$0")/.."
want=2.10
root=$(pwd)/tools/apt
mkdir -p "$root/lists/partial" "$root/cache/archives/partial" tools/bin
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$root/sources.list"
opts="-o Dir::Etc::SourceList=$root/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$root/lists -o Dir::Cache=$root/cache -o Debug::NoLocking=1"
# shellcheck disable=SC2086
apt-get $opts -qq update
rm -f "$root"/nats-server_*.deb
# shellcheck disable=SC2086
(cd "$root" && apt-get $opts -qq download nats-server 2>/dev/null)
rm -rf "$root/extract"
dpkg -x "$root"/nats-server_*.deb "$root/extract"
install -m 0755 "$root/extract/usr/sbin/nats-server" tools/bin/nats-server
rm -rf "$root/extract" "$root/lists" "$root"/nats-server_*.deb
version=$(tools/bin/nats-server --version)
case "$version" in
  *"v$want".*) echo "fetch-nats-server: $version in tools/bin" >&2 ;;
  *) echo "fetch-nats-server: expected v$want.x, got $version" >&2; exit 1 ;;
esac
