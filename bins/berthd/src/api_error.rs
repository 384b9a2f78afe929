//! The one place where engine errors become HTTP statuses and Docker's `{"message": …}` body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::ErrorResponse;
use berth_engine::{EngineError, ErrorKind};

#[derive(Debug)]
pub struct ApiError(pub EngineError);

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError(EngineError::invalid(message))
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        ApiError(e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError(EngineError::from(e))
    }
}

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.0.kind);
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        if status.is_server_error() {
            tracing::error!(error = %self.0.message, "request failed");
        } else {
            tracing::debug!(error = %self.0.message, status = status.as_u16(), "request refused");
        }
        (
            status,
            Json(ErrorResponse {
                message: self.0.message,
            }),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
