#!/bin/sh
# Downloads Debian 13 ("trixie") packages by name and unpacks them under tools/debs/<package>,
# without touching the system's apt sources: a private apt state under tools/apt is used for the
# download only. Debian 12 lacks what Kubernel takes from these (nats-server 2.10; the Kubernetes
# 1.32 API protobuf definitions). Usage: sh scripts/fetch-debian-package.sh PACKAGE...
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)/tools/apt
mkdir -p "$root/lists/partial" "$root/cache/archives/partial" tools/debs
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$root/sources.list"
opts="-o Dir::Etc::SourceList=$root/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$root/lists -o Dir::Cache=$root/cache -o Debug::NoLocking=1"
# shellcheck disable=SC2086
apt-get $opts -qq update
for pkg in "$@"; do
  rm -f "$root/${pkg}"_*.deb
  # shellcheck disable=SC2086
  (cd "$root" && apt-get $opts -qq download "$pkg" 2>/dev/null)
  rm -rf "tools/debs/$pkg"
  dpkg -x "$root/${pkg}"_*.deb "tools/debs/$pkg"
  ls "$root/${pkg}"_*.deb | sed -e 's/.*\///' > "tools/debs/$pkg/.deb"
  rm -f "$root/${pkg}"_*.deb
  echo "fetch-debian-package: $(cat "tools/debs/$pkg/.deb") -> tools/debs/$pkg" >&2
done
rm -rf "$root/lists"
