#!/bin/sh
# Installs the Kubernetes 1.32 API definitions from Debian 13's golang-k8s-api-dev and
# golang-k8s-apimachinery-dev: the generated.proto files under core/generated/proto (the API
# server decodes the protobuf request bodies of kubectl's typed clients with them), and the Go
# type files under core/generated/go (tools/gen-k8s-go-facts.mjs reads their field tags: pointer
# fields, omitempty, patch strategies and merge keys).
# Usage: sh scripts/fetch-k8s-protos.sh
set -eu
cd "$(dirname "$0")/.."
sh scripts/fetch-debian-package.sh golang-k8s-api-dev golang-k8s-apimachinery-dev
out=core/generated/proto
go=core/generated/go
rm -rf "$out" "$go"
for pkg in golang-k8s-api-dev golang-k8s-apimachinery-dev; do
  src="tools/debs/$pkg/usr/share/gocode/src"
  (cd "$src" && find k8s.io -name generated.proto) | while read -r f; do
    mkdir -p "$out/$(dirname "$f")"
    cp "$src/$f" "$out/$f"
  done
  (cd "$src" && find k8s.io/api k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime -maxdepth 3 -name 'types*.go' ! -name '*_test.go' ! -name '*swagger*' 2>/dev/null) | while read -r f; do
    mkdir -p "$go/$(dirname "$f")"
    cp "$src/$f" "$go/$f"
  done
  cat "tools/debs/$pkg/.deb" >> "$out/SOURCES"
  rm -rf "tools/debs/$pkg"
done
echo "fetch-k8s-protos: $(find "$out" -name generated.proto | wc -l) proto files in $out" >&2
