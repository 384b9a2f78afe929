#!/usr/bin/env bash
# The main job on a fresh Debian machine, in one command: build berth, then — with no
# network needed — run the built-in hello-world image in a container. The first `berth`
# command starts the daemon (berthd) on /run/berth/berth.sock by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

needed=(build-essential pkg-config libseccomp-dev)
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cargo build --release --bins -q
scripts/build-static.sh target/release
export PATH="$PWD/target/release:$PATH"

berth run --rm hello-world
