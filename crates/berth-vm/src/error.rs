use std::io;
use std::path::PathBuf;

/// Everything that can go wrong on the host side of a micro-VM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation failed; the path says which.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// An external program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: io::Error },
    /// An external program ran and failed.
    #[error("{program} failed ({status}): {stderr}")]
    Command {
        program: String,
        status: String,
        stderr: String,
    },
    /// No guest kernel could be found.
    #[error("no guest kernel: {0}")]
    KernelNotFound(String),
    /// A kernel image that cannot be used.
    #[error("kernel image {path}: {reason}")]
    BadKernel { path: PathBuf, reason: String },
    /// A kernel module named for the initramfs is not in the modules directory.
    #[error("kernel module {module} not found under {dir}")]
    ModuleNotFound { module: String, dir: PathBuf },
    /// The static guest init binary is missing, not static, or failed to build.
    #[error("berth-init: {0}")]
    Init(String),
    /// A cache key that is not a safe file name.
    #[error("invalid cache key {0:?}")]
    InvalidKey(String),
    /// A VM configuration the chosen VMM cannot run.
    #[error("invalid vm config: {0}")]
    InvalidConfig(String),
    /// The host↔guest link broke or carried something unexpected.
    #[error("guest link: {0}")]
    Link(#[source] io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the operation and path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.into(),
            source,
        })
    }
}
