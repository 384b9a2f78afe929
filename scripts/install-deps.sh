#!/usr/bin/env bash
# Installs every system package berth's build and test suite need (Debian 12).
# Idempotent: skips apt entirely when everything is already present.
set -euo pipefail

packages=(
  build-essential pkg-config libseccomp-dev
  busybox-static docker-registry skopeo
  e2fsprogs cpio qemu-system-x86 qemu-utils xz-utils
  iproute2 nftables util-linux python3 curl jq podman
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The docker CLI ships on the machine image; Debian's docker.io is the fallback client
# (and provides dockerd for the interoperability tests).
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # docker.io may want to replace a docker CLI that did not come from apt: keep ours if present.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Installing Debian's qemu-system-x86 removes a newer qemu-utils (from backports) that a
# machine may have had, so check the commands themselves once more.
declare -A provides=(
  [qemu-img]=qemu-utils [qemu-system-x86_64]=qemu-system-x86 [mkfs.ext4]=e2fsprogs
  [busybox]=busybox-static [skopeo]=skopeo [cpio]=cpio
)
again=()
for cmd in "${!provides[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || again+=("${provides[$cmd]}")
done
if [ ${#again[@]} -gt 0 ]; then
  echo "installing again: ${again[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${again[@]}" >/dev/null
fi
# docker-registry's package starts a system service on :5000 which the tests never use.
systemctl disable --now docker-registry >/dev/null 2>&1 || true
echo "system dependencies ready"
