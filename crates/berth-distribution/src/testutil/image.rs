//! Small, deterministic test images: tar layers (uncompressed, gzip, zstd), a config, a docker
//! schema 2 or OCI manifest, and indexes over several of them.

use std::io::Write as _;

use berth_image::Digest;
use serde_json::{Value, json};

use crate::manifest::media_types as mt;
use crate::platform::Platform;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Docker schema 2 (manifest list for indexes) or OCI (image index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Docker,
    Oci,
}

/// A layer blob as pushed.
#[derive(Clone, Debug)]
pub struct TestLayer {
    pub media_type: &'static str,
    pub compression: Compression,
    /// The blob (compressed as `compression` says).
    pub data: Vec<u8>,
    pub digest: Digest,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
}

/// A built image: every blob and the manifest, ready to push or serve.
#[derive(Clone, Debug)]
pub struct TestImage {
    pub format: Format,
    pub platform: Platform,
    pub layers: Vec<TestLayer>,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub media_type: &'static str,
}

pub struct TestImageBuilder {
    format: Format,
    platform: Platform,
    layers: Vec<(Compression, Vec<u8>)>,
    container_config: Value,
}

/// A tar of regular files (mode 0644, owner 0, mtime 0); a path ending in `/` is a directory.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, path, &[][..])
                .expect("appending a tar directory");
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, path, *data)
                .expect("appending a tar file");
        }
    }
    b.into_inner().expect("finishing a tar")
}

fn compress(tar: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).expect("gzip");
            e.finish().expect("gzip")
        }
        Compression::Zstd => zstd::encode_all(tar, 3).expect("zstd"),
    }
}

fn layer_media_type(format: Format, c: Compression) -> &'static str {
    match (format, c) {
        (Format::Docker, Compression::Gzip) => mt::DOCKER_LAYER_GZIP,
        (Format::Docker, Compression::None) => "application/vnd.docker.image.rootfs.diff.tar",
        (Format::Oci, Compression::None) => mt::OCI_LAYER,
        (Format::Oci, Compression::Gzip) => mt::OCI_LAYER_GZIP,
        // Docker itself writes zstd layers with the OCI media type, also in schema 2 manifests.
        (_, Compression::Zstd) => mt::OCI_LAYER_ZSTD,
    }
}

impl TestImage {
    /// An image for `linux/amd64` with no layers yet and `Cmd ["/bin/sh"]`.
    pub fn builder(format: Format) -> TestImageBuilder {
        TestImageBuilder {
            format,
            platform: Platform::new("linux", "amd64", None),
            layers: Vec::new(),
            container_config: json!({
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/bin/sh"],
            }),
        }
    }

    /// Every blob of the image (layers, then config) with its digest.
    pub fn blobs(&self) -> Vec<(Digest, &[u8])> {
        let mut out: Vec<(Digest, &[u8])> = self
            .layers
            .iter()
            .map(|l| (l.digest, l.data.as_slice()))
            .collect();
        out.push((self.config_digest, self.config.as_slice()));
        out
    }
}

impl TestImageBuilder {
    pub fn platform(mut self, p: Platform) -> Self {
        self.platform = p;
        self
    }

    /// Adds a layer holding `files` (see [`tar_of`]).
    pub fn layer(self, c: Compression, files: &[(&str, &[u8])]) -> Self {
        self.raw_layer(c, tar_of(files))
    }

    /// Adds a layer from an uncompressed tar.
    pub fn raw_layer(mut self, c: Compression, tar: Vec<u8>) -> Self {
        self.layers.push((c, tar));
        self
    }

    /// Replaces the image config's `config` object (`Cmd`, `Env`, `Entrypoint`, `Labels`, …).
    pub fn container_config(mut self, v: Value) -> Self {
        self.container_config = v;
        self
    }

    pub fn build(self) -> TestImage {
        let format = self.format;
        let layers: Vec<TestLayer> = self
            .layers
            .iter()
            .map(|(c, tar)| {
                let data = compress(tar, *c);
                TestLayer {
                    media_type: layer_media_type(format, *c),
                    compression: *c,
                    digest: Digest::of(&data),
                    diff_id: Digest::of(tar),
                    data,
                }
            })
            .collect();
        let mut config = json!({
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "created": "1970-01-01T00:00:00Z",
            "config": self.container_config,
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
            },
            "history": layers.iter().enumerate().map(|(i, _)| json!({
                "created": "1970-01-01T00:00:00Z",
                "created_by": format!("berth test layer {i}"),
            })).collect::<Vec<_>>(),
        });
        if let Some(v) = &self.platform.variant {
            config["variant"] = json!(v);
        }
        let config = serde_json::to_vec(&config).expect("config json");
        let config_digest = Digest::of(&config);
        let (media_type, config_type) = match format {
            Format::Docker => (mt::DOCKER_MANIFEST, mt::DOCKER_CONFIG),
            Format::Oci => (mt::OCI_MANIFEST, mt::OCI_CONFIG),
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": { "mediaType": config_type, "digest": config_digest.to_string(), "size": config.len() },
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type,
                "digest": l.digest.to_string(),
                "size": l.data.len(),
            })).collect::<Vec<_>>(),
        });
        let manifest = serde_json::to_vec_pretty(&manifest).expect("manifest json");
        TestImage {
            format,
            platform: self.platform,
            layers,
            config_digest,
            config,
            manifest_digest: Digest::of(&manifest),
            manifest,
            media_type,
        }
    }
}

/// A manifest list (docker) or image index (OCI) over images, each entry with its image's
/// platform.
#[derive(Clone, Debug)]
pub struct TestIndex {
    pub images: Vec<TestImage>,
    pub manifest: Vec<u8>,
    pub digest: Digest,
    pub media_type: &'static str,
}

impl TestIndex {
    pub fn new(format: Format, images: Vec<TestImage>) -> TestIndex {
        let media_type = match format {
            Format::Docker => mt::DOCKER_MANIFEST_LIST,
            Format::Oci => mt::OCI_INDEX,
        };
        let entries: Vec<Value> = images
            .iter()
            .map(|img| {
                let mut platform =
                    json!({ "architecture": img.platform.architecture, "os": img.platform.os });
                if let Some(v) = &img.platform.variant {
                    platform["variant"] = json!(v);
                }
                json!({
                    "mediaType": img.media_type,
                    "digest": img.manifest_digest.to_string(),
                    "size": img.manifest.len(),
                    "platform": platform,
                })
            })
            .collect();
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": entries,
        }))
        .expect("index json");
        TestIndex {
            images,
            digest: Digest::of(&manifest),
            manifest,
            media_type,
        }
    }
}
