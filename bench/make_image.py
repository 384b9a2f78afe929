#!/usr/bin/env python3
"""Writes the benchmark image as a docker-archive: three layers of ~140 MB in all —
random bytes, compressible text, and 20 000 small files — deterministic for a given seed."""
import hashlib, io, json, os, random, sys, tarfile, time

out = sys.argv[1]
scale = float(os.environ.get("BENCH_SCALE", "1"))
rng = random.Random(42)

def layer_tar(add):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        add(t)
    return buf.getvalue()

def add_file(t, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 1700000000
    t.addfile(info, io.BytesIO(data))

def random_layer(t):
    add_file(t, "random.bin", rng.randbytes(int(50e6 * scale)))

def text_layer(t):
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    lines = []
    size = 0
    while size < 50e6 * scale:
        line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
        lines.append(line)
        size += len(line)
    add_file(t, "text/corpus.txt", "".join(lines).encode())

def small_files_layer(t):
    n = int(20000 * scale)
    for d in range(100):
        info = tarfile.TarInfo(f"files/{d:03d}")
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1700000000
        t.addfile(info)
    for i in range(n):
        add_file(t, f"files/{i % 100:03d}/f{i:05d}.txt", rng.randbytes(rng.randint(100, 3000)))

layers = [layer_tar(f) for f in (random_layer, text_layer, small_files_layer)]
diff_ids = ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
config = json.dumps({
    "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
    "config": {"Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [{"created_by": f"layer {i}"} for i in range(3)],
}).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
with tarfile.open(out, "w") as t:
    add_file(t, config_name, config)
    paths = []
    for i, l in enumerate(layers):
        p = f"{diff_ids[i][7:]}/layer.tar"
        add_file(t, p, l)
        paths.append(p)
    add_file(t, "manifest.json", json.dumps([{"Config": config_name, "RepoTags": ["bench/pull:1"], "Layers": paths}]).encode())
print(f"wrote {out}: layers {[len(l) for l in layers]}", file=sys.stderr)
