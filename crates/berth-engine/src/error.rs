use berth_image::ImageError;

/// What went wrong, as a class that berthd maps to an HTTP status in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    Unauthorized,
    Forbidden,
    Unavailable,
    Internal,
    /// The request changes nothing (starting a running container): HTTP 304, no body.
    NotModified,
}

/// An engine error: a kind and the message the client shows (docker's wording where it has one).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    pub kind: ErrorKind,
    pub message: String,
}

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> EngineError {
        EngineError {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::NotFound, message)
    }
    pub fn invalid(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::InvalidArgument, message)
    }
    pub fn conflict(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::Internal, message)
    }
    pub fn not_modified() -> EngineError {
        EngineError::new(ErrorKind::NotModified, "not modified")
    }
}

impl From<ImageError> for EngineError {
    fn from(e: ImageError) -> EngineError {
        let kind = match &e {
            ImageError::NotFound(_) => ErrorKind::NotFound,
            ImageError::Conflict(_) => ErrorKind::Conflict,
            ImageError::InvalidArgument(_)
            | ImageError::InvalidReference(_)
            | ImageError::InvalidDigest(_) => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        };
        EngineError::new(kind, e.to_string())
    }
}

impl From<tokio::task::JoinError> for EngineError {
    fn from(e: tokio::task::JoinError) -> EngineError {
        EngineError::internal(format!("task failed: {e}"))
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
