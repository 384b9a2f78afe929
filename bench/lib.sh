# Shared by the bench scripts (sourced, not run). `bench_init NAME` sets $root (the
# checkout) and $work (a fresh temporary directory), and arranges that on exit every
# tracked process is stopped (SIGTERM, then SIGKILL), every mount below $work is
# unmounted, and $work is removed. A script may define `before_cleanup` (for example to
# remove its containers while their daemon still runs).

bench_init() {
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  work=$(mktemp -d "/tmp/berth-bench-$1.XXXXXX")
  pidfile=$work/pids
  trap bench_cleanup EXIT
}

# Remembers a PID to stop at exit (daemons started inside $(…) subshells too).
track() { echo "$1" >> "$pidfile"; }

bench_cleanup() {
  declare -F before_cleanup >/dev/null && { before_cleanup || true; }
  local pids p alive
  pids=$(cat "$pidfile" 2>/dev/null || true)
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0; for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
  # Daemons leave overlay and tmpfs mounts below their roots: unmount everything below $work.
  awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}

# Removes every container of the Docker API daemon at unix socket $1 (if it answers).
remove_containers() {
  [ -S "$1" ] || return 0
  local ids; ids=$(DOCKER_HOST=unix://$1 docker ps -aq 2>/dev/null || true)
  [ -z "$ids" ] || DOCKER_HOST=unix://$1 docker rm -f $ids >/dev/null 2>&1 || true
}

# Waits for a Docker API daemon on unix socket $1.
wait_sock() {
  for _ in $(seq 300); do DOCKER_HOST=unix://$1 docker version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "daemon at $1 did not start" >&2; return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A busybox root file system in $1 with the applets named after it, root in
# /etc/passwd and /etc/group, and its tar beside it ($1.tar).
busybox_rootfs() {
  local dir=$1; shift
  mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp"
  cp /bin/busybox "$dir/bin/"
  for a in "$@"; do ln -s busybox "$dir/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/etc/passwd"
  echo 'root:x:0:' > "$dir/etc/group"
  tar -C "$dir" -cf "$dir.tar" .
}

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Runs a command and prints how long it took in ms, or FAIL (its stderr shown).
ms() { python3 -c 'import sys,time,subprocess
cmd=sys.argv[1:]
t=time.perf_counter(); r=subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); d=(time.perf_counter()-t)*1000
if r.returncode: sys.stderr.write(r.stderr.decode())
print(f"{d:.2f}" if r.returncode==0 else "FAIL")' "$@"; }

# $1 / $2 with $3 decimals (default 2).
ratio() { python3 -c "print(f'{$1/$2:.${3:-2}f}')"; }

# Rows of timings: `row NAME PAUSE COMMAND…` appends one measurement (after a pause,
# so one command's after-work does not land on the next); `row_median NAME` prints
# their median.
declare -A bench_times
row() {
  local name=$1 pause=$2; shift 2
  sleep "$pause"
  local t; t=$(ms "$@")
  [ "$t" = FAIL ] && { echo "$name failed: $*" >&2; exit 1; }
  bench_times[$name]+="$t "
}
row_median() { echo "${bench_times[$1]}" | tr ' ' '\n' | grep -v '^$' | median; }
