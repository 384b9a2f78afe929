//! Layer blob compression: choosing the decompressor from the media type or the magic bytes.

use std::io::{self, BufRead, BufReader, Cursor, Read};

/// The compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// From an OCI or Docker layer media type: `…tar`, `…tar+gzip`, `…tar.gzip` (Docker's
    /// `rootfs.diff.tar.gzip`), `…tar+zstd`. Parameters (`; foo=bar`) are ignored. `None` if the
    /// media type is not a layer tar.
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        let essence = mt
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        // "application/x-tar" and "application/tar" are what some tools write for plain tars.
        if essence.ends_with(".tar")
            || essence == "application/x-tar"
            || essence == "application/tar"
        {
            return Some(Compression::None);
        }
        for (suffix, compression) in [
            (".tar+gzip", Compression::Gzip),
            (".tar.gzip", Compression::Gzip),
            (".tar+zstd", Compression::Zstd),
            (".tar.zstd", Compression::Zstd),
        ] {
            if essence.ends_with(suffix) {
                return Some(compression);
            }
        }
        None
    }

    /// Sniffs the magic bytes at the start of a blob: gzip `1f 8b`, zstd `28 b5 2f fd`, anything
    /// else is taken as an uncompressed tar.
    pub fn sniff(prefix: &[u8]) -> Compression {
        if prefix.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if prefix.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Wraps `r` with the decompressor for `c`; `Compression::None` passes the reader through.
/// Concatenated gzip members and zstd frames are read as one stream, as Docker does.
pub fn decompress<'a, R: Read + 'a>(r: R, c: Compression) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
    })
}

/// Peeks at the first bytes of `r`, picks the decompressor with [`Compression::sniff`] and
/// wraps `r` with it, without copying `r` into another buffer.
pub fn decompress_auto<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let peeked = loop {
        match r.fill_buf() {
            Ok(buf) => break buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if peeked.len() >= ZSTD_MAGIC.len() || peeked.is_empty() {
        let compression = Compression::sniff(peeked);
        return decompress_buffered(r, compression);
    }
    // The buffer holds fewer bytes than the longest magic (a reader that returns short chunks):
    // read the prefix out and put it back in front of the rest.
    let mut prefix = Vec::with_capacity(ZSTD_MAGIC.len());
    (&mut r)
        .take(ZSTD_MAGIC.len() as u64)
        .read_to_end(&mut prefix)?;
    let compression = Compression::sniff(&prefix);
    decompress_buffered(BufReader::new(Cursor::new(prefix).chain(r)), compression)
}

fn decompress_buffered<'a, R: BufRead + 'a>(
    r: R,
    c: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    })
}
