#!/usr/bin/env python3
"""Writes the seed tars of the layer_apply fuzz target into seeds/layer_apply/.

Small layers that each reach one path of apply_layer (files, directories, symlinks and
hardlinks aimed outside, whiteouts, PAX and GNU long names, xattrs, devices). Run from fuzz/:
    python3 seeds/make_layer_seeds.py
"""

import io
import os
import tarfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layer_apply")


def entry(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, uid=0, pax=None, dev=(0, 0)):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data)
    info.linkname = link
    info.mode = mode
    info.uid = uid
    info.gid = uid
    info.mtime = 1500000000
    info.devmajor, info.devminor = dev
    if pax:
        info.pax_headers = pax
    return info, data


def write(name, entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data else None)
    raw = buf.getvalue().rstrip(b"\0")
    raw += b"\0" * (-len(raw) % 512) + b"\0" * 1024
    with open(os.path.join(OUT, name + ".tar"), "wb") as f:
        f.write(raw)


os.makedirs(OUT, exist_ok=True)
write("tree", [
    entry("./", tarfile.DIRTYPE, mode=0o755),
    entry("etc/", tarfile.DIRTYPE, mode=0o755),
    entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
    entry("bin/sh", data=b"\x7fELF", mode=0o4755),
])
write("dotdot", [entry("a/../../outside/secret", data=b"pwned")])
write("symlink_root", [entry("evil", tarfile.SYMTYPE, link="/"), entry("evil/x", data=b"x")])
write("symlink_up", [
    entry("up", tarfile.SYMTYPE, link="../../.."),
    entry("up/outside/", tarfile.DIRTYPE, mode=0o777),
    entry("up/outside/secret", data=b"pwned"),
])
write("symlink_abs_tmp", [
    entry("t", tarfile.SYMTYPE, link="/tmp"),
    entry("t/.wh.x", data=b""),
    entry("t/.wh..wh..opq", data=b""),
])
write("hardlink", [
    entry("f", data=b"data"),
    entry("h", tarfile.LNKTYPE, link="f"),
    entry("s", tarfile.SYMTYPE, link="/etc/shadow"),
    entry("hs", tarfile.LNKTYPE, link="s"),
    entry("bad", tarfile.LNKTYPE, link="../outside/secret"),
])
write("replace", [
    entry("a/", tarfile.DIRTYPE),
    entry("a/x", data=b"x"),
    entry("a", tarfile.SYMTYPE, link="/"),
    entry("a/y", data=b"y"),
    entry("a", data=b"file now"),
    entry("a/", tarfile.DIRTYPE, mode=0o700),
])
write("whiteouts", [
    entry("d/.wh.gone", data=b""),
    entry("d/.wh..wh..opq", data=b""),
    entry(".wh..wh.plnk/1.2", data=b""),
    entry("d/.wh...", data=b""),
])
write("pax_xattrs", [
    entry("f", data=b"x", pax={
        "SCHILY.xattr.user.a": "1",
        "SCHILY.xattr.trusted.overlay.opaque": "y",
        "SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
        "mtime": "-1.5",
        "atime": "1700000000.123456789",
    }),
    entry("d", tarfile.DIRTYPE, pax={"path": "../escape", "SCHILY.xattr.user.b": "2"}),
])
write("long_names", [
    entry("l" * 120 + "/" + "m" * 120, data=b"x"),
    entry("s", tarfile.SYMTYPE, link="/" + "n" * 200),
], fmt=tarfile.GNU_FORMAT)
write("devices", [
    entry("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
    entry("dev/sda", tarfile.BLKTYPE, dev=(8, 0)),
    entry("fifo", tarfile.FIFOTYPE),
    entry("dev/.wh.null", data=b""),
], fmt=tarfile.USTAR_FORMAT)
