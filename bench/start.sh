#!/usr/bin/env bash
# bench/start: how long `run --rm busybox true` takes, end to end, in one run:
#   berth CLI -> berthd          vs  docker CLI -> dockerd (started here, --network none)
#   docker CLI -> berthd         (the same client against both daemons)
#   berth-runtime run BUNDLE     vs  runc run BUNDLE (same bundle; the runtime alone)
#   unshare + chroot             (the floor: namespaces and a root, no runtime)
# Usage: bench/start.sh   (BENCH_RUNS=N runs per row, default 20; medians are printed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${BENCH_RUNS:-20}
work=$(mktemp -d /tmp/berth-bench-start.XXXXXX)
pidfile=$work/pids
track() { echo "$1" >> "$pidfile"; }
cleanup() {
  local pids; pids=$(cat "$pidfile" 2>/dev/null || true)
  for s in "$work"/*.sock; do
    [ -S "$s" ] && DOCKER_HOST=unix://$s docker rm -f $(DOCKER_HOST=unix://$s docker ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  done
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0; for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
  awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for tool in dockerd runc docker; do
  command -v $tool >/dev/null || { echo "bench/start needs $tool (apt-get install docker.io runc)" >&2; exit 1; }
done
echo "building release binaries..." >&2
(cd "$root" && cargo build --release -q -p berthd -p berth -p berth-shim-bin -p berth-runtime-cli && scripts/build-static.sh target/release)
bin=$root/target/release

# A busybox root filesystem, as an image tar and as a bundle.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh true echo sleep cat; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

# Runtime state lives on a tmpfs, as /run is on a normal host (it is not on this
# machine): both daemons' exec roots and both runtimes' state roots.
mkdir -p "$work/run" && mount -t tmpfs -o mode=0711 tmpfs "$work/run"

wait_sock() { for _ in $(seq 300); do DOCKER_HOST=unix://$1 docker version >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "daemon at $1 did not start" >&2; return 1; }

"$bin/berthd" --data-root "$work/berth" --exec-root "$work/run/berth" -H "unix://$work/berth.sock" --config-file /dev/null >"$work/berthd.log" 2>&1 & track $!
echo '{}' > "$work/daemon.json"
dockerd --data-root "$work/docker" --exec-root "$work/run/docker" -H "unix://$work/docker.sock" --pidfile "$work/docker.pid" \
  --bridge none --iptables=false --ip6tables=false --config-file "$work/daemon.json" >"$work/dockerd.log" 2>&1 & track $!
wait_sock "$work/berth.sock"; wait_sock "$work/docker.sock"
for s in berth docker; do DOCKER_HOST=unix://$work/$s.sock docker import "$work/busybox.tar" busybox:latest >/dev/null; done

# The bundle for the runtimes.
mkdir -p "$work/bundle"
(cd "$work/bundle" && "$bin/berth-runtime" spec)
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
p = f"{w}/bundle/config.json"
c = json.load(open(p))
c["root"] = {"path": f"{w}/rootfs", "readonly": True}
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["linux"]["cgroupsPath"] = "/berth-bench-start"
json.dump(c, open(p, "w"))
PY

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { python3 -c 'import sys,time,subprocess
cmd=sys.argv[1:]
t=time.perf_counter(); r=subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); d=(time.perf_counter()-t)*1000
if r.returncode: sys.stderr.write(r.stderr.decode())
print(f"{d:.2f}" if r.returncode==0 else "FAIL")' "$@"; }

declare -A times
row() { # name, command...
  local name=$1; shift
  # Each measurement starts on a quiet machine: a daemon's work after its command
  # returned (containerd's task cleanup, events) must not land on the next row.
  sleep 0.1
  local t; t=$(ms "$@")
  [ "$t" = FAIL ] && { echo "$name failed: $*" >&2; exit 1; }
  times[$name]+="$t "
}
# Warm up each path once, then interleave the rows so drift hits all of them alike.
row warm "$bin/berth" -H "unix://$work/berth.sock" run --rm busybox true
row warm docker -H "unix://$work/docker.sock" run --rm --network none busybox true
for i in $(seq "$runs"); do
  row berth "$bin/berth" -H "unix://$work/berth.sock" run --rm busybox true
  row docker docker -H "unix://$work/docker.sock" run --rm --network none busybox true
  row docker_cli_berthd docker -H "unix://$work/berth.sock" run --rm busybox true
  row berth_runtime "$bin/berth-runtime" --root "$work/run/brt" run --bundle "$work/bundle" "brt$i"
  row runc runc --root "$work/run/runc" run --bundle "$work/bundle" "runc$i"
  row floor unshare -fmnpiu --mount-proc chroot "$work/rootfs" /bin/true
done
m() { echo "${times[$1]}" | tr ' ' '\n' | grep -v '^$' | median; }
b=$(m berth); d=$(m docker); dc=$(m docker_cli_berthd); br=$(m berth_runtime); rc=$(m runc); fl=$(m floor)
ratio() { python3 -c "print(f'{$1/$2:.3f}')"; }
echo "run --rm busybox true, median of $runs (ms):"
printf '  %-36s %8.1f\n' "berth CLI -> berthd" "$b" "docker CLI -> dockerd $(dockerd --version | awk '{print $3}' | tr -d ,)" "$d" \
  "docker CLI -> berthd" "$dc" "berth-runtime run (bundle)" "$br" "runc run (bundle) $(runc --version | awk 'NR==1{print $3}')" "$rc" \
  "unshare + chroot (floor)" "$fl"
echo "  berth / docker:               $(ratio "$b" "$d")   (goal <= 0.1)"
echo "  berth / runc run:             $(ratio "$b" "$rc")   (goal <= 1)"
echo "  berth-runtime / runc:         $(ratio "$br" "$rc")"
echo "  berth / floor:                $(ratio "$b" "$fl")"
