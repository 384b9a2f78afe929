//! Media types, magic bytes and decompression round trips.

use std::io::{BufReader, Read, Write};

use super::super::{Compression, decompress, decompress_auto};
use super::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

fn payload() -> Vec<u8> {
    (0..200_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect()
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn media_types() {
    use Compression::*;
    for (mt, want) in [
        ("application/vnd.oci.image.layer.v1.tar", Some(None)),
        ("application/vnd.oci.image.layer.v1.tar+gzip", Some(Gzip)),
        ("application/vnd.oci.image.layer.v1.tar+zstd", Some(Zstd)),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Some(Gzip),
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Some(Gzip),
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            Some(Gzip),
        ),
        ("application/vnd.docker.image.rootfs.diff.tar", Some(None)),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip; charset=binary",
            Some(Gzip),
        ),
        ("application/vnd.oci.image.config.v1+json", Option::None),
        ("application/vnd.oci.image.layer.v1.tar+bzip2", Option::None),
        ("", Option::None),
    ] {
        assert_eq!(Compression::from_media_type(mt), want, "{mt}");
    }
}

#[test]
fn sniffing() {
    assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
    assert_eq!(
        Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
        Compression::Zstd
    );
    assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f]), Compression::None);
    assert_eq!(Compression::sniff(b"etc/passwd\0"), Compression::None);
    assert_eq!(Compression::sniff(&[]), Compression::None);
    assert_eq!(Compression::sniff(&gzip(b"x")), Compression::Gzip);
    assert_eq!(Compression::sniff(&zstd(b"x")), Compression::Zstd);
}

#[test]
fn decompress_round_trips() {
    let data = payload();
    let gz = gzip(&data);
    let zs = zstd(&data);
    assert_eq!(
        read_all(decompress(&data[..], Compression::None).unwrap()),
        data
    );
    assert_eq!(
        read_all(decompress(&gz[..], Compression::Gzip).unwrap()),
        data
    );
    assert_eq!(
        read_all(decompress(&zs[..], Compression::Zstd).unwrap()),
        data
    );
    // Concatenated gzip members read as one stream, as Go's gzip reader does.
    let mut two = gzip(&data[..1000]);
    two.extend(gzip(&data[1000..]));
    assert_eq!(
        read_all(decompress(&two[..], Compression::Gzip).unwrap()),
        data
    );
    // A wrong choice fails rather than passing garbage on.
    let mut out = Vec::new();
    assert!(
        decompress(&data[..], Compression::Gzip)
            .unwrap()
            .read_to_end(&mut out)
            .is_err()
    );
}

#[test]
fn decompress_auto_sniffs() {
    let data = payload();
    for blob in [data.clone(), gzip(&data), zstd(&data)] {
        assert_eq!(read_all(decompress_auto(&blob[..]).unwrap()), data);
        // A reader whose buffer holds fewer bytes than the zstd magic.
        let tiny = BufReader::with_capacity(1, &blob[..]);
        assert_eq!(read_all(decompress_auto(tiny).unwrap()), data);
    }
    assert!(read_all(decompress_auto(&b""[..]).unwrap()).is_empty());
}

#[test]
fn applies_a_compressed_layer() {
    if !is_root() {
        return;
    }
    let tar = Tar::new()
        .dir("etc/")
        .file("etc/hostname", b"berth\n")
        .bytes();
    for blob in [gzip(&tar), zstd(&tar)] {
        let sandbox = Sandbox::new();
        let stats = apply_layer(decompress_auto(&blob[..]).unwrap(), &sandbox.dest).unwrap();
        assert_eq!((stats.entries, stats.bytes), (2, 6));
        assert_eq!(
            fs::read(sandbox.dest.join("etc/hostname")).unwrap(),
            b"berth\n"
        );
    }
}
