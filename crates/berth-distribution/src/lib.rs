//! Registry client: the Docker registry v2 / OCI Distribution protocol, as `berth pull` and
//! `berth login` use it.
//!
//! [`RegistryClient::resolve`] turns a reference into one image manifest for a platform,
//! [`RegistryClient::fetch_blob`] streams (and resumes) blobs, [`RegistryClient::login`]
//! checks credentials. Errors carry an [`ErrorKind`] for the daemon's status mapping.

mod auth;
mod client;
pub mod endpoint;
mod error;
pub mod manifest;
mod platform;
mod pull;
#[cfg(feature = "testutil")]
pub mod testutil;
mod transport;

pub use auth::Credentials;
pub use client::{ClientConfig, RegistryClient};
pub use error::{DistributionError, ErrorKind};
pub use manifest::{Descriptor, media_types};
pub use platform::Platform;
pub use pull::{BlobStream, MAX_MANIFEST_SIZE, MAX_SMALL_BLOB_SIZE, ResolvedImage};
