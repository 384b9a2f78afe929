#!/usr/bin/env bash
# bench/pull: cold pulls of the same ~140 MB, 3-layer image (random, compressible text,
# 20 000 small files) from a local registry, by berthd and by dockerd, in one run; plus the
# serial `curl | tar -xz` floor, berthd's idle RSS and /images/json latency with 100 images.
# Usage: bench/pull.sh            (BENCH_RUNS=N repeats each pull, best time counts)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init pull
runs=${BENCH_RUNS:-2}

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

echo "building release binaries..." >&2
(cd "$root" && cargo build --release -q -p berthd)
berthd=$root/target/release/berthd

python3 "$root/bench/make_image.py" "$work/image.tar"

port=$(free_port)
mkdir -p "$work/registry"
cat > "$work/registry.yml" <<YML
version: 0.1
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
log: {level: error}
YML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 & track $!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
image=127.0.0.1:$port/bench/pull:1
skopeo copy -q --dest-tls-verify=false --dest-compress --dest-compress-format gzip \
  "docker-archive:$work/image.tar" "docker://$image"
manifest=$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://127.0.0.1:$port/v2/bench/pull/manifests/1")
compressed=$(echo "$manifest" | jq '[.layers[].size] | add')
echo "image: $image, $((compressed / 1000000)) MB compressed" >&2

# Floor: each layer fetched and unpacked serially by curl | tar -xz.
floor=999999
for _ in $(seq "$runs"); do
  rm -rf "$work/floor"; mkdir -p "$work/floor"; sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  t0=$(now)
  for d in $(echo "$manifest" | jq -r '.layers[].digest'); do
    mkdir -p "$work/floor/$d"
    curl -sf "http://127.0.0.1:$port/v2/bench/pull/blobs/$d" | tar -xz -C "$work/floor/$d"
  done
  t=$(since "$t0"); floor=$(echo "if ($t < $floor) $t else $floor" | bc)
done
rm -rf "$work/floor"

# One daemon's best cold pull time. $1: name, $2: start command (uses $sock and $dir).
pull_time() {
  local best=999999
  for i in $(seq "$runs"); do
    local dir=$work/$1-$i sock=$work/$1-$i/api.sock
    mkdir -p "$dir"
    # eval in this shell, so $! is the daemon's own PID (not a subshell's).
    eval "$2 > \"\$dir/log\" 2>&1 &"; local pid=$!; track "$pid"
    wait_sock "$sock"
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    local t0; t0=$(now)
    DOCKER_HOST=unix://$sock docker pull -q "$image" >/dev/null
    local t; t=$(since "$t0"); best=$(echo "if ($t < $best) $t else $best" | bc)
    # The first daemon of each kind stays up for the listing benchmark.
    if [ "$i" = 1 ]; then echo "$pid" > "$work/$1-pid"; echo "$sock" > "$work/$1-sock"; else kill "$pid"; wait "$pid" 2>/dev/null || true; fi
  done
  echo "$best"
}

echo '{}' > "$work/daemon.json"
docker_t=$(pull_time docker 'dockerd --data-root $dir/data --exec-root $dir/exec -H unix://$sock --pidfile $dir/pid --bridge none --iptables=false --ip6tables=false --config-file $work/daemon.json')
berth_t=$(pull_time berth '$berthd --data-root $dir/data --exec-root $dir/exec -H unix://$sock --config-file $work/daemon.json')

# Idle RSS of a fresh berthd, and /images/json latency with 100 images on each daemon.
idle_dir=$work/berth-idle; mkdir -p "$idle_dir"
$berthd --data-root "$idle_dir/data" --exec-root "$idle_dir/exec" -H "unix://$idle_dir/api.sock" --config-file "$work/daemon.json" > "$idle_dir/log" 2>&1 & idle_pid=$!; track $idle_pid
wait_sock "$idle_dir/api.sock"; sleep 1
idle_rss=$(awk '/VmRSS/ {print $2}' "/proc/$idle_pid/status")

tiny=$work/tiny.tar; mkdir -p "$work/tiny"; echo x > "$work/tiny/x"; tar -C "$work/tiny" -cf "$tiny" x
list_latency() {
  local sock=$1
  for i in $(seq 100); do DOCKER_HOST=unix://$sock docker import -c "LABEL n=$i" "$tiny" "many/img:$i" >/dev/null; done
  local t0; t0=$(now)
  for _ in $(seq 50); do curl -sf --unix-socket "$sock" http://d/v1.41/images/json >/dev/null; done
  echo "scale=2; ($(since "$t0")) * 1000 / 50" | bc
}
berth_list=$(list_latency "$(cat "$work/berth-sock")")
docker_list=$(list_latency "$(cat "$work/docker-sock")")
busy_rss=$(awk '/VmRSS/ {print $2}' "/proc/$(cat "$work/berth-pid")/status")

mb=$(echo "scale=1; $compressed / 1000000" | bc)
echo
echo "bench/pull — $mb MB compressed, 3 layers, best of $runs cold pulls"
printf '  %-28s %7.2f s  %6.1f MB/s\n' "curl | tar -xz (serial)" "$floor" "$(echo "$mb / $floor" | bc -l)"
printf '  %-28s %7.2f s  %6.1f MB/s\n' "dockerd $(dockerd --version | awk '{print $3}' | tr -d ,)" "$docker_t" "$(echo "$mb / $docker_t" | bc -l)"
printf '  %-28s %7.2f s  %6.1f MB/s\n' "berthd" "$berth_t" "$(echo "$mb / $berth_t" | bc -l)"
printf '  throughput ratio berth/docker: %.2fx (goal >= 2x); berth vs floor: %.2fx (goal > 1x)\n' \
  "$(echo "$docker_t / $berth_t" | bc -l)" "$(echo "$floor / $berth_t" | bc -l)"
echo "  berthd idle RSS: $((idle_rss / 1024)) MB (goal <= 20 MB); after the pull and 100 imports: $((busy_rss / 1024)) MB"
echo "  GET /images/json with 100 images: berthd ${berth_list} ms, dockerd ${docker_list} ms (goal: berth <= docker)"
