use std::path::PathBuf;

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    #[error("invalid reference format: {0}")]
    InvalidReference(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        expected: crate::Digest,
        actual: crate::Digest,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("metadata database: {0}")]
    Database(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Attaches the operation and path to an I/O error, so every failure says which file it was.
pub trait IoContext<T> {
    fn io_context(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T, ImageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T, ImageError> {
        self.map_err(|source| ImageError::Io {
            op,
            path: path.into(),
            source,
        })
    }
}
