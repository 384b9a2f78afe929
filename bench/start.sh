#!/usr/bin/env bash
# bench/start: how long `run --rm busybox true` takes, end to end, in one run:
#   berth CLI -> berthd          vs  docker CLI -> dockerd (started here, --network none)
#   docker CLI -> berthd         (the same client against both daemons)
#   berth-runtime run BUNDLE     vs  runc run BUNDLE (same bundle; the runtime alone)
#   unshare + chroot             (the floor: namespaces and a root, no runtime)
# Usage: bench/start.sh   (BENCH_RUNS=N runs per row, default 20; medians are printed)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init start
runs=${BENCH_RUNS:-20}
before_cleanup() { for s in "$work"/*.sock; do remove_containers "$s"; done; }

for tool in dockerd runc docker; do
  command -v $tool >/dev/null || { echo "bench/start needs $tool (apt-get install docker.io runc)" >&2; exit 1; }
done
echo "building release binaries..." >&2
(cd "$root" && cargo build --release -q -p berthd -p berth -p berth-shim-bin -p berth-runtime-cli && scripts/build-static.sh target/release)
bin=$root/target/release

# A busybox root filesystem, as an image tar and as a bundle.
busybox_rootfs "$work/rootfs" sh true echo sleep cat
mv "$work/rootfs.tar" "$work/busybox.tar"

# Runtime state lives on a tmpfs, as /run is on a normal host (it is not on this
# machine): both daemons' exec roots and both runtimes' state roots.
mkdir -p "$work/run" && mount -t tmpfs -o mode=0711 tmpfs "$work/run"

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

# Each measurement starts on a quiet machine (a 0.1 s pause): a daemon's work after its
# command returned (containerd's task cleanup, events) must not land on the next row.
# Warm up each path once, then interleave the rows so drift hits all of them alike.
row warm 0.1 "$bin/berth" -H "unix://$work/berth.sock" run --rm busybox true
row warm 0.1 docker -H "unix://$work/docker.sock" run --rm --network none busybox true
for i in $(seq "$runs"); do
  row berth 0.1 "$bin/berth" -H "unix://$work/berth.sock" run --rm busybox true
  row docker 0.1 docker -H "unix://$work/docker.sock" run --rm --network none busybox true
  row docker_cli_berthd 0.1 docker -H "unix://$work/berth.sock" run --rm busybox true
  row berth_runtime 0.1 "$bin/berth-runtime" --root "$work/run/brt" run --bundle "$work/bundle" "brt$i"
  row runc 0.1 runc --root "$work/run/runc" run --bundle "$work/bundle" "runc$i"
  row floor 0.1 unshare -fmnpiu --mount-proc chroot "$work/rootfs" /bin/true
done
m() { row_median "$1"; }
b=$(m berth); d=$(m docker); dc=$(m docker_cli_berthd); br=$(m berth_runtime); rc=$(m runc); fl=$(m floor)
echo "run --rm busybox true, median of $runs (ms):"
printf '  %-36s %8.1f\n' "berth CLI -> berthd" "$b" "docker CLI -> dockerd $(dockerd --version | awk '{print $3}' | tr -d ,)" "$d" \
  "docker CLI -> berthd" "$dc" "berth-runtime run (bundle)" "$br" "runc run (bundle) $(runc --version | awk 'NR==1{print $3}')" "$rc" \
  "unshare + chroot (floor)" "$fl"
echo "  berth / docker:               $(ratio "$b" "$d" 3)   (goal <= 0.1)"
echo "  berth / runc run:             $(ratio "$b" "$rc" 3)   (goal <= 1)"
echo "  berth-runtime / runc:         $(ratio "$br" "$rc" 3)"
echo "  berth / floor:                $(ratio "$b" "$fl" 3)"
