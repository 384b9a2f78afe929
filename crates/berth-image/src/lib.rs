//! Images on disk: references, the content-addressed blob store, safe layer apply, the
//! metadata database and the archive formats (docker-archive, OCI layout, rootfs import).

pub mod builtin;
pub mod config;
pub mod content;
pub mod digest;
pub mod error;
pub mod layer;
pub mod metadata;
pub mod reference;
pub mod store;

pub use digest::Digest;
pub use error::ImageError;
pub use reference::Reference;
pub use store::ImageStore;
