//! The registry's TOML configuration (`berth-registry serve --config FILE`); command-line
//! flags override the file.
//!
//! ```toml
//! addr = "0.0.0.0:5000"
//! root = "/var/lib/berth-registry"   # filesystem storage, and the auth module's state
//!
//! [tls]                              # absent: plain HTTP
//! cert = "/etc/berth-registry/cert.pem"
//! key = "/etc/berth-registry/key.pem"
//!
//! [storage]
//! driver = "filesystem"              # "filesystem" | "s3" | "gcs" | "azure" | "memory"
//!
//! [auth]                             # read by the auth module (see `auth::AuthConfig`)
//! mode = "token"
//! ```
//!
//! # Object storage (several replicas sharing one bucket)
//!
//! With `driver = "s3"`, `"gcs"` or `"azure"` every replica is stateless: blobs, manifests,
//! tags and upload sessions are objects, so a load balancer may send each request of a push
//! to a different replica. Credentials come from the usual environment of each cloud's SDK
//! (they are read by `object_store`'s `from_env` builders), never from this file:
//!
//! ```toml
//! [storage]
//! driver = "s3"
//! bucket = "registry"
//! region = "eu-west-1"                  # or AWS_REGION / AWS_DEFAULT_REGION
//! endpoint = "https://minio.internal:9000"  # optional: S3-compatible services
//! prefix = "prod"                       # optional: keys under prod/ in the bucket
//! allow_http = false                    # set true only for a plain-HTTP endpoint
//! ```
//!
//! - S3: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), or the
//!   instance / web-identity credentials `object_store` finds on its own. The credentials
//!   need `s3:GetObject`, `s3:PutObject`, `s3:DeleteObject`, `s3:ListBucket` and multipart
//!   uploads (`s3:AbortMultipartUpload`, `s3:ListMultipartUploadParts`). A bucket lifecycle
//!   rule that aborts incomplete multipart uploads after a day cleans up interrupted pushes.
//! - GCS: `bucket`; `GOOGLE_SERVICE_ACCOUNT` (path to a key file) or the metadata server.
//! - Azure: `bucket` is the container; `AZURE_STORAGE_ACCOUNT_NAME` and
//!   `AZURE_STORAGE_ACCOUNT_KEY` (or a SAS / workload identity); `endpoint` for Azurite.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use serde::{Deserialize, Serialize};

use crate::storage::{Driver, FsDriver, ObjectDriver};

pub const DEFAULT_ADDR: &str = "0.0.0.0:5000";
pub const DEFAULT_ROOT: &str = "/var/lib/berth-registry";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid listen address {0:?}")]
    Addr(String),
    #[error("[tls] needs both cert and key")]
    TlsIncomplete,
    #[error("storage driver {0} needs a bucket")]
    NoBucket(&'static str),
    #[error("storage root {path}: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("[auth]: {0}")]
    Auth(#[source] toml::de::Error),
}

/// The whole file. Every field is optional; see [`Config::addr`] and [`Config::root`] for
/// the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: Option<String>,
    pub root: Option<PathBuf>,
    pub tls: Option<TlsFiles>,
    pub storage: StorageConfig,
    /// The `[auth]` section, passed whole to the auth module ([`Config::auth_section`]).
    pub auth: toml::Table,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageDriver {
    #[default]
    Filesystem,
    S3,
    Gcs,
    Azure,
    /// In memory, lost on exit: tests and demos.
    Memory,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub driver: StorageDriver,
    /// Bucket (S3, GCS) or container (Azure).
    pub bucket: Option<String>,
    pub region: Option<String>,
    /// A custom endpoint (MinIO, Azurite, …).
    pub endpoint: Option<String>,
    /// Keep every key under this prefix of the bucket.
    pub prefix: Option<String>,
    /// Allow a plain-HTTP endpoint.
    pub allow_http: bool,
}

/// Command-line flags that override the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub addr: Option<String>,
    pub root: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Config {
    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })
    }

    /// Applies command-line flags over the file's values.
    pub fn apply(&mut self, flags: Overrides) -> Result<(), ConfigError> {
        if let Some(addr) = flags.addr {
            self.addr = Some(addr);
        }
        if let Some(root) = flags.root {
            self.root = Some(root);
        }
        match (flags.tls_cert, flags.tls_key) {
            (None, None) => {}
            (Some(cert), Some(key)) => self.tls = Some(TlsFiles { cert, key }),
            (cert, key) => {
                let current = self.tls.take();
                let cert = cert.or_else(|| current.as_ref().map(|t| t.cert.clone()));
                let key = key.or_else(|| current.as_ref().map(|t| t.key.clone()));
                match (cert, key) {
                    (Some(cert), Some(key)) => self.tls = Some(TlsFiles { cert, key }),
                    _ => return Err(ConfigError::TlsIncomplete),
                }
            }
        }
        Ok(())
    }

    /// The listen address (default [`DEFAULT_ADDR`]).
    pub fn addr(&self) -> Result<SocketAddr, ConfigError> {
        let addr = self.addr.as_deref().unwrap_or(DEFAULT_ADDR);
        addr.parse()
            .map_err(|_| ConfigError::Addr(addr.to_string()))
    }

    /// The data root (default [`DEFAULT_ROOT`]).
    pub fn root(&self) -> PathBuf {
        self.root
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
    }

    /// The `[auth]` section as the auth module's own type.
    pub fn auth_section<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        self.auth.clone().try_into().map_err(ConfigError::Auth)
    }

    /// Opens the configured storage.
    pub fn storage_driver(&self) -> Result<Arc<dyn Driver>, ConfigError> {
        self.storage.open(&self.root())
    }
}

impl StorageConfig {
    /// Opens the storage; the filesystem driver keeps its data in `root`.
    pub fn open(&self, root: &Path) -> Result<Arc<dyn Driver>, ConfigError> {
        let bucket =
            |driver: &'static str| self.bucket.clone().ok_or(ConfigError::NoBucket(driver));
        let store: Arc<dyn ObjectStore> = match self.driver {
            StorageDriver::Filesystem => {
                let driver = FsDriver::new(root).map_err(|source| ConfigError::Root {
                    path: root.into(),
                    source,
                })?;
                return Ok(Arc::new(driver));
            }
            StorageDriver::Memory => Arc::new(InMemory::new()),
            StorageDriver::S3 => {
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket("s3")?)
                    .with_allow_http(self.allow_http);
                if let Some(region) = &self.region {
                    b = b.with_region(region);
                }
                if let Some(endpoint) = &self.endpoint {
                    b = b.with_endpoint(endpoint);
                }
                Arc::new(b.build()?)
            }
            StorageDriver::Gcs => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket("gcs")?)
                    .build()?,
            ),
            StorageDriver::Azure => {
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_container_name(bucket("azure")?)
                    .with_allow_http(self.allow_http);
                if let Some(endpoint) = &self.endpoint {
                    b = b.with_endpoint(endpoint.clone());
                }
                Arc::new(b.build()?)
            }
        };
        let store = match self.prefix.as_deref().map(|p| p.trim_matches('/')) {
            Some(prefix) if !prefix.is_empty() => Arc::new(PrefixStore::new(store, prefix)),
            _ => store,
        };
        Ok(Arc::new(ObjectDriver::new(store)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_flags() {
        let mut c: Config = toml::from_str(
            r#"
            addr = "127.0.0.1:5001"
            [tls]
            cert = "c.pem"
            key = "k.pem"
            [storage]
            driver = "s3"
            bucket = "b"
            prefix = "p"
            [auth]
            mode = "none"
            realm = "https://r/token"
            "#,
        )
        .unwrap();
        assert_eq!(c.storage.driver, StorageDriver::S3);
        assert_eq!(c.auth["mode"].as_str(), Some("none"));
        c.apply(Overrides {
            addr: Some("127.0.0.1:6000".into()),
            tls_key: Some("other.pem".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(c.addr().unwrap().port(), 6000);
        assert_eq!(c.tls.as_ref().unwrap().key, PathBuf::from("other.pem"));
        assert_eq!(c.tls.as_ref().unwrap().cert, PathBuf::from("c.pem"));
        assert_eq!(c.root(), PathBuf::from(DEFAULT_ROOT));

        let mut plain = Config::default();
        let only_cert = Overrides {
            tls_cert: Some("c".into()),
            ..Overrides::default()
        };
        assert!(matches!(
            plain.apply(only_cert),
            Err(ConfigError::TlsIncomplete)
        ));
        assert!(toml::from_str::<Config>("unknown = 1").is_err());
        assert!(toml::from_str::<Config>("[storage]\ndriver = \"ftp\"").is_err());
    }

    #[test]
    fn drivers_open() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StorageConfig::default().open(dir.path()).unwrap();
        assert!(fs.describe().starts_with("filesystem"));
        let mem = StorageConfig {
            driver: StorageDriver::Memory,
            ..Default::default()
        };
        assert!(
            mem.open(dir.path())
                .unwrap()
                .describe()
                .contains("InMemory")
        );
        let s3 = StorageConfig {
            driver: StorageDriver::S3,
            ..Default::default()
        };
        assert!(matches!(
            s3.open(dir.path()),
            Err(ConfigError::NoBucket("s3"))
        ));
    }
}
