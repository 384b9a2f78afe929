#!/usr/bin/env bash
# The main job on a fresh Debian machine, in one command: build berth, then — with no
# network needed — get the built-in hello-world image, list it and inspect it. The first
# `berth` command starts the daemon (berthd) on /run/berth/berth.sock by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cc >/dev/null 2>&1 || ! dpkg-query -W -f='${Status}' pkg-config 2>/dev/null | grep -q "ok installed"; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends build-essential pkg-config >/dev/null
fi
cargo build --release --bins -q
export PATH="$PWD/target/release:$PATH"

berth pull hello-world
berth images hello-world
berth image inspect --format '{{.Id}} {{.Os}}/{{.Architecture}} Cmd={{.Config.Cmd}} layers={{len .RootFS.Layers}}' hello-world
