//! Errors of the registry client, each with a kind the engine maps to an HTTP status.

use berth_image::Digest;
use serde::Deserialize;

/// What sort of failure an error is, for the daemon's status mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Unauthorized,
    Forbidden,
    InvalidArgument,
    Unavailable,
    Internal,
}

/// Errors of the registry client. Messages follow docker's wording where users know it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistributionError {
    #[error("manifest for {reference} not found: {cause}")]
    ManifestUnknown { reference: String, cause: String },
    #[error("repository {name} not found: {cause}")]
    RepositoryUnknown { name: String, cause: String },
    #[error("blob {digest} not found in repository {name}: {cause}")]
    BlobUnknown {
        name: String,
        digest: Digest,
        cause: String,
    },
    #[error(
        "pull access denied for {name}, repository does not exist or may require 'docker login': {cause}"
    )]
    PullAccessDenied { name: String, cause: String },
    /// The registry or its token server refused the credentials.
    #[error("unauthorized: {message}")]
    Unauthorized { registry: String, message: String },
    /// A push the registry refused: docker's `denied: requested access to the resource is
    /// denied`, or the registry's own words.
    #[error("{message}")]
    Denied { registry: String, message: String },
    #[error("access to {name} denied by registry {registry}: {cause}")]
    Forbidden {
        registry: String,
        name: String,
        cause: String,
    },
    /// Any other unexpected HTTP status; 5xx and 429 are `Unavailable`.
    #[error("registry {registry} answered {status} to {method} {url}: {cause}")]
    Status {
        registry: String,
        method: String,
        url: String,
        status: u16,
        cause: String,
    },
    /// Connection refused, DNS, TLS, timeouts: the request got no HTTP answer.
    #[error("cannot reach registry {registry}: {cause}")]
    Connection { registry: String, cause: String },
    /// The body of a blob broke off or failed while it was being read.
    #[error("reading {what} from registry {registry}: {cause}")]
    Read {
        registry: String,
        what: String,
        cause: String,
    },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("invalid manifest for {reference}: {reason}")]
    InvalidManifest { reference: String, reason: String },
    #[error("unsupported media type {media_type} for {what}{hint}")]
    UnsupportedMediaType {
        what: String,
        media_type: String,
        hint: &'static str,
    },
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingManifest { platform: String },
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform { input: String, reason: String },
    #[error("invalid registry configuration: {0}")]
    InvalidConfig(String),
    /// The registry or token server answered something the protocol does not allow.
    #[error("invalid response from {what}: {reason}")]
    Protocol { what: String, reason: String },
    #[error("creating http client: {0}")]
    Client(String),
    /// Reading what is to be uploaded failed on this side.
    #[error("reading {what}: {cause}")]
    Local { what: String, cause: String },
}

impl DistributionError {
    pub fn kind(&self) -> ErrorKind {
        use DistributionError as E;
        match self {
            E::ManifestUnknown { .. }
            | E::RepositoryUnknown { .. }
            | E::BlobUnknown { .. }
            | E::PullAccessDenied { .. }
            | E::NoMatchingManifest { .. } => ErrorKind::NotFound,
            E::Unauthorized { .. } => ErrorKind::Unauthorized,
            E::Forbidden { .. } | E::Denied { .. } => ErrorKind::Forbidden,
            E::Status { status, .. } => match *status {
                401 => ErrorKind::Unauthorized,
                403 => ErrorKind::Forbidden,
                404 => ErrorKind::NotFound,
                429 | 500..=599 => ErrorKind::Unavailable,
                400..=499 => ErrorKind::InvalidArgument,
                _ => ErrorKind::Internal,
            },
            E::Connection { .. } | E::Read { .. } => ErrorKind::Unavailable,
            E::InvalidManifest { .. }
            | E::UnsupportedMediaType { .. }
            | E::TooLarge { .. }
            | E::InvalidPlatform { .. }
            | E::InvalidConfig(_) => ErrorKind::InvalidArgument,
            E::DigestMismatch { .. } | E::Protocol { .. } | E::Client(_) | E::Local { .. } => {
                ErrorKind::Internal
            }
        }
    }

    /// Whether trying the same request again a moment later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            DistributionError::Connection { .. } | DistributionError::Read { .. } => true,
            DistributionError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// The spec's error body: `{"errors":[{"code":…,"message":…,"detail":…}]}`.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
    // Token servers use their own shapes (Docker Hub: `details`; OAuth2: `error_description`).
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// What a registry said in an error answer: the first error code (uppercase, as sent, may be
/// empty) and a text in docker's form `code in lowercase: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegistryMessage {
    pub code: String,
    pub text: String,
}

impl RegistryMessage {
    /// Reads an error body; falls back to a short plain-text body, then to the status line.
    pub fn parse(status: http::StatusCode, body: &[u8]) -> RegistryMessage {
        let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        if let Some(first) = parsed.errors.first() {
            if parsed.errors.len() > 1 {
                tracing::debug!(
                    count = parsed.errors.len(),
                    "registry sent several errors, showing the first"
                );
            }
            let code_text = first.code.to_lowercase().replace('_', " ");
            let text = match (code_text.is_empty(), first.message.is_empty()) {
                (false, false) => format!("{code_text}: {}", first.message),
                (false, true) => code_text,
                (true, _) => first.message.clone(),
            };
            return RegistryMessage {
                code: first.code.to_uppercase(),
                text,
            };
        }
        if let Some(m) = [parsed.details, parsed.error_description, parsed.message]
            .into_iter()
            .flatten()
            .find(|m| !m.trim().is_empty())
        {
            return RegistryMessage {
                code: String::new(),
                text: m.trim().to_string(),
            };
        }
        let plain = String::from_utf8_lossy(body);
        let plain = plain.trim();
        let looks_like_text = !plain.is_empty()
            && plain.len() <= 200
            && !plain.starts_with('<')
            && !plain.starts_with('{')
            && !plain.contains('\n');
        let text = if looks_like_text {
            plain.to_string()
        } else {
            status_text(status)
        };
        RegistryMessage {
            code: String::new(),
            text,
        }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }
}

/// `404 not found`.
pub(crate) fn status_text(status: http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(r) => format!("{} {}", status.as_u16(), r.to_lowercase()),
        None => status.as_u16().to_string(),
    }
}

/// The whole cause chain of a transport error in one line, without repeating the URL.
pub(crate) fn transport_cause(
    method: &http::Method,
    url: &url::Url,
    err: reqwest::Error,
) -> String {
    let timeout = err.is_timeout();
    let err = err.without_url();
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    if timeout && !parts.iter().any(|p| p.contains("timed out")) {
        parts.push("timed out".to_string());
    }
    format!("{method} {url}: {}", parts.join(": "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn parses_spec_errors_like_docker() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#;
        let m = RegistryMessage::parse(StatusCode::NOT_FOUND, body);
        assert_eq!(m.text, "manifest unknown: manifest unknown");
        assert!(m.is("MANIFEST_UNKNOWN"));
        let body = br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
        let m = RegistryMessage::parse(StatusCode::UNAUTHORIZED, body);
        assert_eq!(m.text, "denied: requested access to the resource is denied");
    }

    #[test]
    fn falls_back_to_token_server_shapes_text_and_status() {
        let m = RegistryMessage::parse(
            StatusCode::UNAUTHORIZED,
            br#"{"details":"incorrect username or password"}"#,
        );
        assert_eq!(m.text, "incorrect username or password");
        assert_eq!(m.code, "");
        let m = RegistryMessage::parse(StatusCode::BAD_GATEWAY, b"upstream timed out\n");
        assert_eq!(m.text, "upstream timed out");
        let m = RegistryMessage::parse(StatusCode::BAD_GATEWAY, b"<html><body>bad</body></html>");
        assert_eq!(m.text, "502 bad gateway");
        let m = RegistryMessage::parse(StatusCode::NOT_FOUND, b"");
        assert_eq!(m.text, "404 not found");
    }

    #[test]
    fn kinds_follow_status() {
        let status = |s| DistributionError::Status {
            registry: "r".into(),
            method: "GET".into(),
            url: "u".into(),
            status: s,
            cause: "c".into(),
        };
        assert_eq!(status(503).kind(), ErrorKind::Unavailable);
        assert_eq!(status(429).kind(), ErrorKind::Unavailable);
        assert_eq!(status(400).kind(), ErrorKind::InvalidArgument);
        assert_eq!(status(302).kind(), ErrorKind::Internal);
        assert!(status(502).is_transient());
        assert!(!status(404).is_transient());
    }
}
