#!/usr/bin/env bash
# Builds the Fabric binaries the native network needs (peer, orderer, configtxgen, cryptogen,
# osnadmin) into fabric-network/bin/, once: a cold build takes minutes, so an existing build of
# the pinned version is reused.
#
# Fabric v3.1.5 is commit 86c1172bec37. Its go.mod has no /v3 suffix, so Go can only name it by
# the pseudo-version pinned in ./go.mod, whose `tool` directives name the five commands; the
# source comes from the Go module proxy (module mode), and the first build records go.sum.
set -euo pipefail

readonly FABRIC_VERSION=3.1.5
readonly FABRIC_COMMIT=86c1172bec37
readonly FABRIC_MODULE=github.com/hyperledger/fabric
readonly FABRIC_PSEUDO=v1.4.0-rc1.0.20260618074816-86c1172bec37
readonly TOOLS=(peer orderer configtxgen cryptogen osnadmin)

here="$(cd "$(dirname "$0")" && pwd)"
bin="${FABRIC_BIN:-$here/bin}"
ldflags="-X $FABRIC_MODULE/common/metadata.Version=$FABRIC_VERSION -X $FABRIC_MODULE/common/metadata.CommitSHA=$FABRIC_COMMIT"

log() { echo "[fabric build] $*" >&2; }

# A build is reusable only when every tool is there and stamped with the pinned version.
complete() {
  local dir="$1" t
  for t in "${TOOLS[@]}"; do [[ -x "$dir/$t" ]] || return 1; done
  "$dir/peer" version 2>/dev/null | grep -q "Version: $FABRIC_VERSION\$"
}

if complete "$bin"; then
  log "reusing $bin (Fabric $FABRIC_VERSION)"
  exit 0
fi
mkdir -p "$bin"

# CGO off: static binaries, no C toolchain; the default Go-only crypto is all the network uses.
export CGO_ENABLED=0
started=$SECONDS
log "building ${TOOLS[*]} from $FABRIC_MODULE@$FABRIC_PSEUDO (Go module proxy); a cold build takes minutes"
# -mod=mod lets the first build record go.sum; the `tool` directives in go.mod name the tools.
if ! (cd "$here" && GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$bin/" tool); then
  cat >&2 <<MSG
[fabric build] could not obtain Fabric $FABRIC_VERSION ($FABRIC_MODULE@$FABRIC_PSEUDO) from the
  Go module proxy. The proxy this project reaches answers 403 for it; the native network needs a
  proxy that serves $FABRIC_MODULE and its dependencies (or prebuilt binaries in $bin).
MSG
  exit 1
fi
complete "$bin" || { log "build finished but $bin is incomplete"; exit 1; }
log "built Fabric $FABRIC_VERSION into $bin in $((SECONDS - started)) s"
