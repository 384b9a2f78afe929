//! Manifests and indexes (docker schema 2 and OCI), parsed only as far as pulling needs.

use std::collections::BTreeMap;

use berth_image::Digest;
use serde::{Deserialize, Serialize};

use crate::error::DistributionError;
use crate::platform::Platform;

/// Media types of the formats a pull meets.
pub mod media_types {
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// The `Accept` header of a manifest request: every format we can pull.
    pub const ACCEPT_MANIFESTS: &str = "application/vnd.docker.distribution.manifest.v2+json, \
        application/vnd.docker.distribution.manifest.list.v2+json, \
        application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
}

use media_types as mt;

/// A content descriptor (OCI image spec): what a manifest says about a blob it references.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// Where a foreign / non-distributable layer may be fetched from instead of the registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One entry of a manifest list / OCI index.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct IndexEntry {
    #[serde(flatten)]
    pub descriptor: Descriptor,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug)]
pub(crate) struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug)]
pub(crate) enum Manifest {
    Image(ImageManifest),
    Index(Vec<IndexEntry>),
}

/// Just enough of any manifest to tell which kind it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    fs_layers: Option<serde_json::Value>,
}

const KNOWN: &[&str] = &[
    mt::DOCKER_MANIFEST,
    mt::DOCKER_MANIFEST_LIST,
    mt::OCI_MANIFEST,
    mt::OCI_INDEX,
    mt::DOCKER_SCHEMA1,
    mt::DOCKER_SCHEMA1_SIGNED,
];

const SCHEMA1_HINT: &str = ": docker image manifest version 2, schema 1 is no longer supported; \
    the image's author must push it again in the docker schema 2 or OCI format";

/// Parses a manifest. The media type is the body's `mediaType`, else the `Content-Type` if it
/// names a manifest format, else what the structure shows. Returns it with the manifest.
pub(crate) fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    reference: &str,
) -> Result<(String, Manifest), DistributionError> {
    let invalid = |reason: String| DistributionError::InvalidManifest {
        reference: reference.to_string(),
        reason,
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let header_type = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_lowercase())
        .filter(|c| KNOWN.contains(&c.as_str()));
    let media_type = match (
        probe.media_type.clone().filter(|m| !m.is_empty()),
        header_type,
    ) {
        (Some(body), header) => {
            if header.as_ref().is_some_and(|h| *h != body) {
                tracing::debug!(%body, ?header, "manifest media type differs from Content-Type; using the body's");
            }
            body
        }
        (None, Some(header)) => header,
        (None, None) if probe.schema_version == Some(1) || probe.fs_layers.is_some() => {
            mt::DOCKER_SCHEMA1_SIGNED.to_string()
        }
        (None, None) if probe.manifests.is_some() => mt::OCI_INDEX.to_string(),
        (None, None) if probe.config.is_some() => mt::OCI_MANIFEST.to_string(),
        (None, None) => return Err(invalid("neither a manifest nor an index".into())),
    };
    let manifest = match media_type.as_str() {
        mt::DOCKER_SCHEMA1 | mt::DOCKER_SCHEMA1_SIGNED => {
            return Err(DistributionError::UnsupportedMediaType {
                what: reference.to_string(),
                media_type,
                hint: SCHEMA1_HINT,
            });
        }
        mt::DOCKER_MANIFEST | mt::OCI_MANIFEST => {
            check_schema_version(&probe, reference)?;
            let config: Descriptor = field(probe.config, "config", reference)?;
            if config.media_type != mt::DOCKER_CONFIG && config.media_type != mt::OCI_CONFIG {
                return Err(DistributionError::UnsupportedMediaType {
                    what: format!("the config of {reference}"),
                    media_type: config.media_type,
                    hint: ": it is not a container image",
                });
            }
            let layers: Vec<Descriptor> = field(probe.layers, "layers", reference)?;
            Manifest::Image(ImageManifest { config, layers })
        }
        mt::DOCKER_MANIFEST_LIST | mt::OCI_INDEX => {
            check_schema_version(&probe, reference)?;
            Manifest::Index(field(probe.manifests, "manifests", reference)?)
        }
        _ => {
            return Err(DistributionError::UnsupportedMediaType {
                what: reference.to_string(),
                media_type,
                hint: ": it is not a container image manifest",
            });
        }
    };
    Ok((media_type, manifest))
}

fn check_schema_version(probe: &Probe, reference: &str) -> Result<(), DistributionError> {
    match probe.schema_version {
        Some(2) => Ok(()),
        other => Err(DistributionError::InvalidManifest {
            reference: reference.to_string(),
            reason: format!(
                "schemaVersion is {}, expected 2",
                other.map_or("missing".into(), |v| v.to_string())
            ),
        }),
    }
}

fn field<T: serde::de::DeserializeOwned>(
    value: Option<serde_json::Value>,
    name: &str,
    reference: &str,
) -> Result<T, DistributionError> {
    let invalid = |reason: String| DistributionError::InvalidManifest {
        reference: reference.to_string(),
        reason,
    };
    let value = value.ok_or_else(|| invalid(format!("no {name}")))?;
    serde_json::from_value(value).map_err(|e| invalid(format!("{name}: {e}")))
}

/// Whether an index entry is something `resolve` can descend into.
pub(crate) fn is_image_manifest(media_type: &str) -> bool {
    media_type == mt::DOCKER_MANIFEST || media_type == mt::OCI_MANIFEST
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const D: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn image(media_type: Option<&str>, config_type: &str) -> String {
        let mt = media_type
            .map(|m| format!(r#""mediaType":"{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"{config_type}","digest":"{D}","size":5}},
            "layers":[{{"mediaType":"{}","digest":"{D}","size":7,"urls":["https://x/y"]}}]}}"#,
            mt::OCI_LAYER_ZSTD
        )
    }

    #[test]
    fn detects_the_format() {
        let (t, m) = parse(
            image(Some(mt::DOCKER_MANIFEST), mt::DOCKER_CONFIG).as_bytes(),
            None,
            "a",
        )
        .unwrap();
        assert_eq!(t, mt::DOCKER_MANIFEST);
        let Manifest::Image(m) = m else {
            panic!("not an image")
        };
        assert_eq!(m.layers[0].size, 7);
        assert_eq!(m.layers[0].urls, vec!["https://x/y".to_string()]);
        // Without mediaType in the body: the header, then the structure.
        let body = image(None, mt::OCI_CONFIG);
        let (t, _) = parse(
            body.as_bytes(),
            Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            "a",
        )
        .unwrap();
        assert_eq!(t, mt::OCI_MANIFEST);
        let (t, _) = parse(body.as_bytes(), Some("application/octet-stream"), "a").unwrap();
        assert_eq!(t, mt::OCI_MANIFEST);
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{D}","size":3,"platform":{{"os":"linux","architecture":"arm","variant":"v7","os.features":["x"]}}}}]}}"#,
            mt::OCI_MANIFEST
        );
        let (t, m) = parse(index.as_bytes(), None, "a").unwrap();
        assert_eq!(t, mt::OCI_INDEX);
        let Manifest::Index(entries) = m else {
            panic!("not an index")
        };
        assert_eq!(
            entries[0].platform.as_ref().unwrap().to_string(),
            "linux/arm/v7"
        );
    }

    #[test]
    fn refuses_what_it_cannot_pull() {
        let schema1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        let e = parse(schema1, Some(mt::DOCKER_SCHEMA1_SIGNED), "x:y").unwrap_err();
        assert!(e.to_string().contains(mt::DOCKER_SCHEMA1_SIGNED), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            parse(schema1, None, "x:y")
                .unwrap_err()
                .to_string()
                .contains("schema 1")
        );
        let helm = image(
            Some(mt::OCI_MANIFEST),
            "application/vnd.cncf.helm.config.v1+json",
        );
        let e = parse(helm.as_bytes(), None, "chart:1").unwrap_err();
        assert!(e.to_string().contains("not a container image"), "{e}");
        for bad in [&b"{not json"[..], b"[]", br#"{"schemaVersion":2}"#, br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}"#] {
            let e = parse(bad, None, "a").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
            assert!(e.to_string().starts_with("invalid manifest for a: "), "{e}");
        }
        let e = parse(
            image(Some(mt::DOCKER_MANIFEST), mt::DOCKER_CONFIG)
                .replace("\"schemaVersion\":2", "\"schemaVersion\":3")
                .as_bytes(),
            None,
            "a",
        )
        .unwrap_err();
        assert!(e.to_string().contains("schemaVersion is 3"), "{e}");
    }
}
