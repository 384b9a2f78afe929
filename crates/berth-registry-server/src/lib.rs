//! berth-registry: an OCI Distribution registry with multi-tenant authorisation.
//!
//! - [`storage`]: where blobs, manifests, tags and upload sessions live (a filesystem driver
//!   and an `object_store` driver for S3/GCS/Azure, so stateless replicas share one bucket);
//! - [`server`]: the Distribution API (`/v2/…`) over a storage driver and an [`auth::Authorizer`];
//! - [`auth`]: organisations, users, robot tokens, the Docker token flow (JWT), audit log;
//! - [`config`]: the TOML configuration of `berth-registry serve`;
//! - [`gc`]: mark-and-sweep of blobs no manifest references.

pub mod auth;
pub mod config;
pub mod gc;
pub mod server;
pub mod storage;
