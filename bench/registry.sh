#!/usr/bin/env bash
# bench/registry: berth-registry against Debian's docker-registry (CNCF distribution 2.8) on
# the same machine and disk, in one run. For 1, 8 and 64 concurrent clients: push of a
# ~512 MB image (64 layers of 8 MB) and pull of all its blobs; then manifest GET p50/p99
# with 200 concurrent clients. Both registries run without auth, on plain HTTP, on 127.0.0.1.
# Usage: bench/registry.sh   (BENCH_LAYERS, BENCH_LAYER_SIZE, BENCH_CLIENTS, BENCH_RUNS to change it)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init registry
layers=${BENCH_LAYERS:-64}
layer_size=${BENCH_LAYER_SIZE:-8000000}
clients=${BENCH_CLIENTS:-"1 8 64"}
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "$1/v2/" && return 0; sleep 0.1; done; echo "no registry at $1" >&2; return 1; }

echo "building release binaries..." >&2
(cd "$root" && cargo build --release -q -p berth-registry -p registry-load)
load=$root/target/release/registry-load

dport=$(free_port); mkdir -p "$work/distribution"
cat > "$work/distribution.yml" <<YML
version: 0.1
storage: {filesystem: {rootdirectory: $work/distribution}}
http: {addr: 127.0.0.1:$dport}
log: {level: error, accesslog: {disabled: true}}
YML
docker-registry serve "$work/distribution.yml" > "$work/distribution.log" 2>&1 & track $!

bport=$(free_port); mkdir -p "$work/berth"
cat > "$work/berth.toml" <<TOML
[auth]
mode = "none"
TOML
"$root/target/release/berth-registry" serve --addr "127.0.0.1:$bport" --root "$work/berth" --config "$work/berth.toml" \
  > "$work/berth.log" 2>&1 & track $!
wait_http "http://127.0.0.1:$dport"; wait_http "http://127.0.0.1:$bport"

# Best of $runs for each cell, for both registries alike (the machine is shared and small).
runs=${BENCH_RUNS:-3}
run() {
  local best=0
  for i in $(seq "$runs"); do
    local v; v=$("$load" "$1" --url "$2" --repo "$3-r$i" --clients "$4" --layers "$layers" --layer-size "$layer_size" ${5:-} \
      | python3 -c 'import json,sys; print(json.load(sys.stdin).get("mb_per_s", 0))')
    best=$(python3 -c "print(max($best, $v))")
  done
  echo "$best"
}
mb=$(python3 -c "print(round($layers * $layer_size / 1e6))")
echo
echo "bench/registry — $mb MB image ($layers layers), plain HTTP on 127.0.0.1, $(nproc) cores, best of $runs"
printf '  %-22s %14s %14s %8s\n' "" "distribution" "berth" "ratio"
for n in $clients; do
  for mode in push pull; do
    d=$(run "$mode" "http://127.0.0.1:$dport" "bench/c$n" "$n")
    b=$(run "$mode" "http://127.0.0.1:$bport" "bench/c$n" "$n")
    printf '  %-22s %9.1f MB/s %9.1f MB/s %7.2fx\n' "$mode, $n clients" "$d" "$b" "$(python3 -c "print($b / $d)")"
  done
  # The same pull with a client that only counts bytes: the servers' own throughput, without
  # the client's SHA-256 taking one of the two cores.
  d=$(run pull "http://127.0.0.1:$dport" "bench/c$n" "$n" --no-verify)
  b=$(run pull "http://127.0.0.1:$bport" "bench/c$n" "$n" --no-verify)
  printf '  %-22s %9.1f MB/s %9.1f MB/s %7.2fx\n' "pull*, $n clients" "$d" "$b" "$(python3 -c "print($b / $d)")"
done
echo "  pull* = the client counts bytes without hashing them"
first=${clients%% *}
lat() { "$load" manifest --url "$1" --repo "bench/c$first-r1" --clients 200 --requests 20 --layers "$layers" --layer-size "$layer_size"; }
dl=$(lat "http://127.0.0.1:$dport"); bl=$(lat "http://127.0.0.1:$bport")
python3 - "$dl" "$bl" <<'PY'
import json, sys
d, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"  manifest GET, 200 clients   distribution p50 {d['p50_ms']:.2f} ms p99 {d['p99_ms']:.2f} ms | berth p50 {b['p50_ms']:.2f} ms p99 {b['p99_ms']:.2f} ms")
PY
echo "  goals: throughput ratio >= 1.5x, berth p99 below distribution's"
