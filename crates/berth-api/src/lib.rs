//! Docker Engine API wire types shared by berthd and the CLI: the error body, the JSON
//! progress stream, the response bodies berthd produces (field for field as dockerd's), and
//! Docker's human-readable size format.

pub mod progress;
pub mod types;
pub mod units;

pub use bollard_stubs::models;

/// The newest API version berthd implements, and the oldest it answers.
pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";
/// Versioned paths berthd accepts: `/v1.41/…` through `/v{API_VERSION}/…`.
pub const OLDEST_VERSIONED_PATH: (u32, u32) = (1, 24);

/// Docker's error body: `{"message": "…"}`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ErrorResponse {
    pub message: String,
}

/// Parses `1.41` into (1, 41).
pub fn parse_api_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
