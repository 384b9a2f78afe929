//! Image references with Docker's normalisation rules:
//! `alpine` → `docker.io/library/alpine:latest`, `localhost:5000/a/b@sha256:…` kept as is.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::ImageError;

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A fully qualified image reference: registry, repository, and a tag and/or digest.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference. A reference without tag or digest gets `:latest`.
    pub fn parse_normalized(s: &str) -> Result<Reference, ImageError> {
        let mut r = Reference::parse_normalized_name(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalises a reference, leaving tag and digest absent when not given
    /// (as `docker pull -a` or `docker images NAME` need).
    pub fn parse_normalized_name(s: &str) -> Result<Reference, ImageError> {
        let invalid = || ImageError::InvalidReference(s.to_string());
        if s.is_empty() || s.chars().any(|c| c.is_whitespace()) {
            return Err(invalid());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>().map_err(|_| invalid())?)),
            None => (s, None),
        };
        // A tag is after the last ':' that is not followed by a '/' (a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(invalid());
        }
        let (registry, mut repository) = split_registry(name);
        if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            repository = format!("{OFFICIAL_PREFIX}{repository}");
        }
        if repository.len() > MAX_NAME_LEN || !valid_repository(&repository) {
            return Err(invalid());
        }
        if !valid_registry(&registry) {
            return Err(invalid());
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }
    pub fn repository(&self) -> &str {
        &self.repository
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ImageError> {
        if !valid_tag(tag) {
            return Err(ImageError::InvalidReference(tag.to_string()));
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to a digest, without tag (`name@sha256:…`).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Only the repository, no tag or digest.
    pub fn without_tag(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// `registry/repository` without tag or digest, fully qualified.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short name docker shows: `alpine`, `user/app`, `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            // Only official images (`library/NAME`, no deeper path) lose the prefix, as in
            // docker: `library/a/b` stays as is, since `a/b` names another repository.
            match self.repository.strip_prefix(OFFICIAL_PREFIX) {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The familiar form with tag and digest, as docker prints references.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Reference, ImageError> {
        Reference::parse_normalized(s)
    }
}

fn split_registry(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            let registry = if first == LEGACY_DEFAULT_REGISTRY {
                DEFAULT_REGISTRY
            } else {
                first
            };
            (registry.to_string(), rest.to_string())
        }
        _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
    }
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Path components: `[a-z0-9]+` joined by `.`, `_`, `__` or any run of `-`.
fn valid_repository(repo: &str) -> bool {
    repo.split('/').all(valid_path_component)
}

pub(crate) fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator must be followed by an alphanumeric (guaranteed at the end by the check above).
        let sep_len = match ch {
            b'.' => 1,
            b'_' if b.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            b'-' => b[i..].iter().take_while(|&&x| x == b'-').count(),
            _ => return false,
        };
        i += sep_len;
        if !b
            .get(i)
            .is_some_and(|x| x.is_ascii_lowercase() || x.is_ascii_digit())
        {
            return false;
        }
    }
    true
}

fn valid_registry(host: &str) -> bool {
    // A port follows the last ':' unless that ':' is inside an IPv6 literal's brackets.
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) if !host.starts_with('[') || h.ends_with(']') => (h, Some(p)),
        _ => (host, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[') {
        return inner.strip_suffix(']').is_some_and(|ip| {
            !ip.is_empty() && ip.bytes().all(|c| c.is_ascii_hexdigit() || c == b':')
        });
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// True when `s` looks like an image ID or a prefix of one (hex only), as accepted by
/// `docker image inspect 3f5…`.
pub fn is_id_prefix(s: &str) -> bool {
    let s = s.strip_prefix("sha256:").unwrap_or(s);
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse_normalized(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(norm("alpine:3.19"), "docker.io/library/alpine:3.19");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(norm("localhost/app:v1"), "localhost/app:v1");
        assert_eq!(norm("127.0.0.1:5000/a/b/c:t"), "127.0.0.1:5000/a/b/c:t");
        assert_eq!(norm("ghcr.io/org/img"), "ghcr.io/org/img:latest");
        let d = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(
            norm(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            norm(&format!("busybox:1@{d}")),
            format!("docker.io/library/busybox:1@{d}")
        );
    }

    #[test]
    fn familiar_forms() {
        let r = Reference::parse_normalized("docker.io/library/alpine:3").unwrap();
        assert_eq!(r.familiar(), "alpine:3");
        assert_eq!(r.familiar_name(), "alpine");
        let r = Reference::parse_normalized("localhost:5000/x/y").unwrap();
        assert_eq!(r.familiar(), "localhost:5000/x/y:latest");
    }

    #[test]
    fn name_only_keeps_tag_absent() {
        let r = Reference::parse_normalized_name("alpine").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_string(), "docker.io/library/alpine");
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "Alpine",
            "alpine:",
            "alpine:-x",
            "a//b",
            "a/../b",
            "a/./b",
            "a b",
            "-a",
            "a-",
            "a@sha256:1234",
            "a__-b",
            "localhost:port/a",
            ":tag",
            "a/B",
            "ex..ample.com/a",
        ] {
            assert!(
                Reference::parse_normalized(bad).is_err(),
                "{bad:?} accepted"
            );
        }
        let long = "a".repeat(300);
        assert!(Reference::parse_normalized(&long).is_err());
        assert!(Reference::parse_normalized(&format!("a:{}", "t".repeat(129))).is_err());
    }

    #[test]
    fn ipv6_registries() {
        assert_eq!(norm("[::1]/app"), "[::1]/app:latest");
        assert_eq!(norm("[::1]:5000/app:1"), "[::1]:5000/app:1");
        for bad in ["[zz]:1/app", "[]:1/a", "[fe80::1%eth0]:5000/app"] {
            assert!(
                Reference::parse_normalized(bad).is_err(),
                "{bad:?} accepted"
            );
        }
        let nested = Reference::parse_normalized("docker.io/library/a/b").unwrap();
        assert_eq!(nested.familiar_name(), "library/a/b");
    }

    #[test]
    fn accepts_separators() {
        for ok in [
            "a.b",
            "a_b",
            "a__b",
            "a---b",
            "a-b/c.d_e",
            "my-registry.local:8443/x",
        ] {
            assert!(Reference::parse_normalized(ok).is_ok(), "{ok:?} rejected");
        }
    }

    #[test]
    fn id_prefixes() {
        assert!(is_id_prefix("3f5a"));
        assert!(is_id_prefix("sha256:3f5a"));
        assert!(!is_id_prefix("alpine"));
    }
}
