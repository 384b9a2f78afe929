#!/usr/bin/env bash
# bench/microvm: the micro-VM runtime against its floor, in one run.
#   boot:  `berth run --runtime microvm --rm busybox true`, CLI to exit, against a bare
#          QEMU with the same binary, accelerator, machine, memory, kernel and kernel
#          command line booting a minimal initramfs whose init only reboots (QEMU's
#          -no-reboot makes that its exit): the least any VM start costs on this host.
#   build: the root image of a ~200 MB image (first start minus a cached start, the
#          cache emptied between rounds) against `mkfs.ext4 -d` of the same tree into an
#          image of the same size, alone.
# Usage: bench/microvm.sh   (BENCH_RUNS=N boots per row, default 10; BUILD_RUNS=N, default 3;
#        BENCH_VM_KERNEL=FILE BENCH_VM_MODULES=DIR pick the guest kernel; else the host's,
#        else the one the tests fetched into target/tmp, else Debian's, fetched with apt)
# On a KVM host with Firecracker, set BENCH_VM_FIRECRACKER=PATH: berthd then boots its VMs
# on Firecracker, and the boot row is timed alone (the goal there is <= 150 ms to the
# entrypoint; README, "Micro-VMs").
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init microvm
runs=${BENCH_RUNS:-10}
build_runs=${BUILD_RUNS:-3}
before_cleanup() { remove_containers "$work/berth.sock"; }

for tool in qemu-system-x86_64 qemu-img mkfs.ext4 cc cpio; do
  command -v $tool >/dev/null || { echo "bench/microvm needs $tool (scripts/install-deps.sh)" >&2; exit 1; }
done
echo "building release binaries..." >&2
(cd "$root" && cargo build --release -q -p berthd -p berth -p berth-shim-bin -p berth-runtime-cli && scripts/build-static.sh target/release)
bin=$root/target/release

# The guest kernel.
kernel=${BENCH_VM_KERNEL:-} modules=${BENCH_VM_MODULES:-}
if [ -z "$kernel" ]; then
  if [ -f "/boot/vmlinuz-$(uname -r)" ] && [ -d "/lib/modules/$(uname -r)/kernel" ]; then
    kernel=/boot/vmlinuz-$(uname -r) modules=/lib/modules/$(uname -r)
  else
    cache=$root/target/tmp/berth-vm-boot/kernels
    if ! ls "$cache"/linux-image-*/boot/vmlinuz-* >/dev/null 2>&1; then
      pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
      mkdir -p "$cache/$pkg.dl" && (cd "$cache/$pkg.dl" && apt-get download -q "$pkg")
      dpkg-deb -x "$cache/$pkg.dl"/*.deb "$cache/$pkg" && rm -rf "$cache/$pkg.dl"
    fi
    kernel=$(ls "$cache"/linux-image-*/boot/vmlinuz-* | head -1)
    modules=$(ls -d "$(dirname "$(dirname "$kernel")")"/lib/modules/* | head -1)
  fi
fi
echo "guest kernel: $kernel" >&2

busybox_rootfs "$work/rootfs" sh true echo sleep cat

"$bin/berthd" --data-root "$work/berth" --exec-root "$work/run" -H "unix://$work/berth.sock" --config-file /dev/null \
  --vm-kernel "$kernel" ${modules:+--vm-modules "$modules"} ${BENCH_VM_FIRECRACKER:+--vm-firecracker "$BENCH_VM_FIRECRACKER"} \
  >"$work/berthd.log" 2>&1 & track $!
berth() { "$bin/berth" -H "unix://$work/berth.sock" "$@"; }
for _ in $(seq 300); do berth version >/dev/null 2>&1 && break; sleep 0.1; done
berth import "$work/rootfs.tar" busybox:latest >/dev/null

m() { row_median "$1"; }

# One VM first: it prepares the cached kernel, initramfs and root image, and shows the
# exact QEMU command line berth uses, which the floor copies.
id=$(berth run -d --runtime microvm busybox sleep 30)
for _ in $(seq 100); do pid=$(berth inspect -f '{{.State.Pid}}' "$id"); [ "$pid" -gt 0 ] && break; sleep 0.1; done
mapfile -d '' qemu_args < "/proc/$pid/cmdline"
berth rm -f "$id" >/dev/null
floor_args=()
i=0
while [ $i -lt ${#qemu_args[@]} ]; do
  a=${qemu_args[$i]}
  case $a in
    -initrd) floor_args+=(-initrd "$work/floor.cpio"); i=$((i + 2)); continue ;;
    -serial) floor_args+=(-serial "file:$work/floor-console.log"); i=$((i + 2)); continue ;;
    -drive|-device|-chardev|-netdev|-pidfile|-qmp|-D) i=$((i + 2)); continue ;;
  esac
  floor_args+=("$a"); i=$((i + 1))
done
printf '#include <sys/reboot.h>\n#include <unistd.h>\nint main(void) { sync(); reboot(RB_AUTOBOOT); return 0; }\n' > "$work/floor.c"
mkdir -p "$work/floor-init" && cc -static -O2 -o "$work/floor-init/init" "$work/floor.c"
(cd "$work/floor-init" && echo init | cpio -o -H newc --quiet > "$work/floor.cpio")

qemu=1; case $(basename "${qemu_args[0]}") in qemu*) ;; *) qemu=0 ;; esac
row warm 0.2 "$bin/berth" -H "unix://$work/berth.sock" run --runtime microvm --rm busybox true
[ $qemu = 1 ] && row warm 0.2 "${floor_args[@]}"
for _ in $(seq "$runs"); do
  row berth 0.2 "$bin/berth" -H "unix://$work/berth.sock" run --runtime microvm --rm busybox true
  [ $qemu = 1 ] && row floor 0.2 "${floor_args[@]}"
done
b=$(m berth)
if [ $qemu = 1 ]; then
  f=$(m floor)
  accel=$(printf '%s\n' "${qemu_args[@]}" | grep -A1 -x -- -accel | tail -1)
  echo "micro-VM start to exit, median of $runs (ms), QEMU -accel $accel:"
  printf '  %-52s %8.1f\n' "berth run --runtime microvm --rm busybox true" "$b" \
    "bare QEMU, same kernel, init that only reboots (floor)" "$f"
  echo "  berth / floor:  $(ratio "$b" "$f")   (goal <= 1.2)"
else
  echo "micro-VM start to exit on $(basename "${qemu_args[0]}"), median of $runs (ms):"
  printf '  %-52s %8.1f   (goal: <= 150 to the entrypoint)\n' "berth run --runtime microvm --rm busybox true" "$b"
fi

# The root image of a ~200 MB image: random data, text, and 20 000 small files.
big=$work/big
cp -a "$work/rootfs" "$big"
head -c 100M /dev/urandom > "$big/random.bin"
python3 - "$big" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
with open(os.path.join(root, "text.txt"), "w") as f:
    size = 0
    while size < 50e6:
        line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
        f.write(line); size += len(line)
for i in range(20000):
    d = os.path.join(root, "small", f"{i // 500:03}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.dat"), "wb") as f:
        f.write(rng.randbytes(rng.randint(100, 4000)))
PY
tar -C "$big" -cf "$work/big.tar" .
berth import "$work/big.tar" big:latest >/dev/null
echo "image: $(du -sh "$big" | cut -f1) in $(find "$big" | wc -l) entries" >&2
cache=$work/berth/vm/rootfs
for _ in $(seq "$build_runs"); do
  rm -f "$cache"/*
  row cold 0.2 "$bin/berth" -H "unix://$work/berth.sock" run --runtime microvm --rm big true
  row cached 0.2 "$bin/berth" -H "unix://$work/berth.sock" run --runtime microvm --rm big true
done
image=$(ls -S "$cache"/*.ext4 | head -1)
size=$(stat -c %s "$image")
sync
for _ in $(seq "$build_runs"); do
  rm -f "$work/mkfs.ext4"
  row mkfs 0.2 mkfs.ext4 -q -F -d "$big" "$work/mkfs.ext4" "$((size / 1024))k"
done
c=$(m cold); w=$(m cached); k=$(m mkfs)
build=$(python3 -c "print(f'{$c-$w:.1f}')")
echo "root image of a $((size >> 20)) MB ext4 image, median of $build_runs (ms):"
printf '  %-52s %8.1f\n' "berth: first start minus cached start" "$build" \
  "mkfs.ext4 -d, same tree and size, alone" "$k"
echo "  berth / mkfs.ext4 -d:  $(ratio "$build" "$k")   (goal <= 2)"
