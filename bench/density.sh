#!/usr/bin/env bash
# bench/density: the memory cost of idle containers: 20 `sleep` containers under berthd;
# per container = (berthd's RSS growth + every shim's RSS) / 20, and the same with PSS
# (shared pages split among the processes sharing them). Goals: <= 2 MB per container,
# berthd <= 30 MB RSS. Reference: containerd-shim 12.8 MB, podman's conmon 2.0 MB.
# Usage: bench/density.sh   (BENCH_CONTAINERS=N, default 20)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init density
n=${BENCH_CONTAINERS:-20}
before_cleanup() { remove_containers "$work/berth.sock"; }

echo "building release binaries..." >&2
(cd "$root" && cargo build --release -q -p berthd -p berth -p berth-shim-bin -p berth-runtime-cli && scripts/build-static.sh target/release)
bin=$root/target/release
busybox_rootfs "$work/rootfs" sh sleep

"$bin/berthd" --data-root "$work/data" --exec-root "$work/run" -H "unix://$work/berth.sock" --config-file /dev/null >"$work/berthd.log" 2>&1 &
daemon_pid=$!; track $daemon_pid
export DOCKER_HOST=unix://$work/berth.sock
wait_sock "$work/berth.sock"
docker import "$work/rootfs.tar" busybox:latest >/dev/null
kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/${3:-status}"; }
pss() { awk '$1=="Pss:" {print $2}' "/proc/$1/smaps_rollup"; }
sleep 0.5
before=$(kb "$daemon_pid" VmRSS)
for i in $(seq "$n"); do "$bin/berth" run -d --name "idle$i" busybox sleep 3600 >/dev/null; done
sleep 1
after=$(kb "$daemon_pid" VmRSS)
shim_rss=0; shim_pss=0
for f in "$work"/run/c/*/shim.pid; do
  p=$(cat "$f"); shim_rss=$((shim_rss + $(kb "$p" VmRSS))); shim_pss=$((shim_pss + $(pss "$p")))
done
growth=$((after - before))
echo "$n idle containers:"
echo "  berthd RSS: ${before} kB idle -> ${after} kB (growth ${growth} kB; goal <= 30 MB)"
echo "  shims: RSS ${shim_rss} kB total, PSS ${shim_pss} kB total"
python3 -c "
n=$n; g=$growth; r=$shim_rss; p=$shim_pss
print(f'  per container (RSS): {(g+r)/n/1024:.2f} MB   (goal <= 2 MB; containerd-shim 12.8, conmon 2.0)')
print(f'  per container (PSS): {(g+p)/n/1024:.2f} MB')"
