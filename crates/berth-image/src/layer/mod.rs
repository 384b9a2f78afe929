//! Applying image layers: the "Extracting" step of `docker pull`.
//!
//! A layer blob is a tar stream, usually gzip or zstd compressed ([`decompress`],
//! [`decompress_auto`]). [`apply_layer`] unpacks it into an empty directory that later serves as
//! an overlayfs lowerdir, the way Docker's overlay2 driver and containerd's overlay snapshotter
//! do: ownership, modes (setuid included), nanosecond times, xattrs and device numbers are kept
//! exactly, and OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) become overlayfs whiteouts (a 0:0
//! character device, the `trusted.overlay.opaque` xattr).
//!
//! Whatever the tar holds, nothing outside the destination is created, changed or even
//! chowned: paths whose `..` climb above the root are refused (Docker's "invalid path"), and
//! every directory is resolved with `openat2(RESOLVE_IN_ROOT)`, so symlinks written by the layer
//! resolve as they would inside the container (see `root.rs`).

mod apply;
mod compression;
mod path;
mod root;
#[cfg(test)]
mod tests;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use compression::{Compression, decompress, decompress_auto};

/// What [`apply_layer`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    /// Tar entries applied or skipped (pax global headers are not counted).
    pub entries: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
    /// Whiteouts created, opaque markers included.
    pub whiteouts: u64,
}

/// Errors of applying a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The entry's path or hardlink target leaves the layer, or is not a usable name.
    #[error("invalid path {path:?} in layer: {reason}")]
    UnsafePath { path: PathBuf, reason: &'static str },
    /// A filesystem operation on `path` (inside the destination) failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The tar stream could not be read (truncated, corrupt, or the decompressor failed).
    #[error("read layer tar: {0}")]
    Tar(#[source] io::Error),
    /// A header field of the entry is malformed or out of range.
    #[error("invalid tar header for {path:?}: {source}")]
    Header {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An entry type that has no place in a layer (GNU volume labels, multi-volume parts, …).
    #[error("unsupported tar entry {path:?} of type {:?}", char::from(*typeflag))]
    UnsupportedEntry { path: PathBuf, typeflag: u8 },
}

/// Unpacks an *uncompressed* layer tar stream into `dest`, an existing, empty directory that
/// becomes an overlayfs lowerdir, and returns what it did. Never writes outside `dest`.
///
/// Nothing is fsynced: sync the layer once (`syncfs`) before recording it as complete.
/// On error `dest` holds a partial layer; the caller discards it.
pub fn apply_layer<R: Read>(tar_stream: R, dest: &Path) -> Result<ApplyStats, LayerError> {
    apply::apply(tar_stream, dest)
}
