//! The Distribution spec's error codes and JSON body, mapped to HTTP in one place.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::json;

use crate::auth::AuthError;
use crate::storage::StorageError;

/// The error codes of the OCI Distribution Spec (plus the Docker registry's
/// `TOOMANYREQUESTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// Not a spec code: a storage failure (500), logged, with no detail sent.
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::Internal => "UNKNOWN",
        }
    }

    /// The spec's message for the code.
    fn message(self) -> &'static str {
        match self {
            Code::BlobUnknown => "blob unknown to registry",
            Code::BlobUploadInvalid => "blob upload invalid",
            Code::BlobUploadUnknown => "blob upload unknown to registry",
            Code::DigestInvalid => "provided digest did not match uploaded content",
            Code::ManifestBlobUnknown => {
                "manifest references a manifest or blob unknown to registry"
            }
            Code::ManifestInvalid => "manifest invalid",
            Code::ManifestUnknown => "manifest unknown to registry",
            Code::NameInvalid => "invalid repository name",
            Code::NameUnknown => "repository name not known to registry",
            Code::SizeInvalid => "provided length did not match content length",
            Code::Unauthorized => "authentication required",
            Code::Denied => "requested access to the resource is denied",
            Code::Unsupported => "the operation is unsupported",
            Code::TooManyRequests => "too many requests",
            Code::Internal => "internal server error",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => StatusCode::NOT_FOUND,
            Code::BlobUploadInvalid
            | Code::DigestInvalid
            | Code::ManifestBlobUnknown
            | Code::ManifestInvalid
            | Code::NameInvalid
            | Code::SizeInvalid => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answer: a code, an optional detail (only ever the client's own input or a
/// fixed text, never what storage holds) and extra headers.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub status: StatusCode,
    pub detail: Option<serde_json::Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(code: Code) -> ApiError {
        ApiError {
            code,
            status: code.status(),
            detail: None,
            headers: Vec::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<serde_json::Value>) -> ApiError {
        self.detail = Some(detail.into());
        self
    }

    pub fn status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> ApiError {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }
}

impl From<Code> for ApiError {
    fn from(code: Code) -> ApiError {
        ApiError::new(code)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Unauthorized { challenge, message } => ApiError::new(Code::Unauthorized)
                .detail(message)
                .header(header::WWW_AUTHENTICATE, &challenge),
            AuthError::Denied { challenge } => {
                ApiError::new(Code::Denied).header(header::WWW_AUTHENTICATE, &challenge)
            }
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        match e {
            StorageError::Body(err) => {
                tracing::debug!(error = %err, "request body failed");
                ApiError::new(Code::BlobUploadInvalid).detail("the request body ended early")
            }
            e => {
                tracing::error!(error = %e, "storage failure");
                ApiError::new(Code::Internal)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code.as_str(), "message": self.code.message() });
        if let Some(detail) = self.detail {
            error["detail"] = detail;
        }
        let body = serde_json::to_vec(&json!({ "errors": [error] })).unwrap_or_default();
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = self.status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn body_has_the_spec_shape() {
        let resp = ApiError::new(Code::BlobUnknown)
            .detail("sha256:00")
            .into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(v["errors"][0]["message"], "blob unknown to registry");
        assert_eq!(v["errors"][0]["detail"], "sha256:00");
    }
}
