//! Registry client: the Docker registry v2 / OCI Distribution protocol, as `berth pull`,
//! `berth push` and `berth login` use it.
//!
//! [`RegistryClient::resolve`] turns a reference into one image manifest for a platform,
//! [`RegistryClient::fetch_blob`] streams (and resumes) blobs, [`RegistryClient::login`]
//! checks credentials; [`RegistryClient::blob_exists`], [`RegistryClient::mount_blob`],
//! [`RegistryClient::upload_blob`] and [`RegistryClient::put_manifest`] push. Errors carry an
//! [`ErrorKind`] for the daemon's status mapping.

mod auth;
mod client;
pub mod endpoint;
mod error;
pub mod manifest;
mod platform;
mod pull;
mod push;
mod tags;
#[cfg(feature = "testutil")]
pub mod testutil;
mod transport;

pub use auth::Credentials;
pub use client::{ClientConfig, RegistryClient};
pub use error::{DistributionError, ErrorKind};
pub use manifest::{Descriptor, media_types};
pub use platform::Platform;
pub use pull::{BlobStream, MAX_MANIFEST_SIZE, MAX_SMALL_BLOB_SIZE, ResolvedImage};
pub use push::{
    BlobUpload, CHUNKED_UPLOAD_THRESHOLD, MountOutcome, UPLOAD_CHUNK_SIZE, UploadProgress,
    UploadSession,
};

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::{Digest, Reference};

    /// The engine spawns pulls on tokio: the client and its futures must be `Send`.
    #[allow(dead_code)]
    fn futures_are_send(
        c: &RegistryClient,
        r: &Reference,
        p: &Platform,
        d: &Digest,
        cr: &Credentials,
    ) {
        fn send<T: Send>(_: T) {}
        fn shared<T: Send + Sync + Clone + 'static>(_: &T) {}
        shared(c);
        send(c.resolve(r, p, Some(cr)));
        send(c.fetch_blob(r, d, 0, Some(cr)));
        send(c.fetch_blob_bytes(r, d, None));
        send(c.login("docker.io", cr));
        send(c.blob_exists(r, d, Some(cr)));
        send(c.mount_blob(r, d, "team/app", Some(cr)));
        let upload = BlobUpload {
            digest: *d,
            size: 0,
            path: std::path::Path::new("/dev/null"),
            session: None,
        };
        send(c.upload_blob(r, upload, Some(cr), None));
        send(c.put_manifest(
            r,
            "1",
            media_types::DOCKER_MANIFEST,
            bytes::Bytes::new(),
            None,
        ));
    }
}
