//! The storage layout, in one place. Callers pass validated repository names and tags
//! (see `server::route`); digests are always rendered as 64 lowercase hex characters.

use berth_image::Digest;

pub const BLOBS: &str = "blobs/sha256";
pub const REPOSITORIES: &str = "repositories";
pub const UPLOADS: &str = "uploads";

pub fn blob(digest: &Digest) -> String {
    format!("{BLOBS}/{}", digest.hex())
}

pub fn repository(name: &str) -> String {
    format!("{REPOSITORIES}/{name}")
}

pub fn layers(name: &str) -> String {
    format!("{REPOSITORIES}/{name}/_layers")
}

pub fn layer_link(name: &str, digest: &Digest) -> String {
    format!("{}/{}", layers(name), digest.hex())
}

pub fn revisions(name: &str) -> String {
    format!("{REPOSITORIES}/{name}/_manifests/revisions")
}

pub fn revision(name: &str, digest: &Digest) -> String {
    format!("{}/{}", revisions(name), digest.hex())
}

pub fn tags(name: &str) -> String {
    format!("{REPOSITORIES}/{name}/_manifests/tags")
}

pub fn tag(name: &str, tag: &str) -> String {
    format!("{}/{tag}", tags(name))
}

pub fn referrers(name: &str, subject: &Digest) -> String {
    format!("{REPOSITORIES}/{name}/_referrers/{}", subject.hex())
}

pub fn referrer(name: &str, subject: &Digest, digest: &Digest) -> String {
    format!("{}/{}", referrers(name, subject), digest.hex())
}

pub fn upload(id: &str) -> String {
    format!("{UPLOADS}/{id}")
}

pub fn upload_info(id: &str) -> String {
    format!("{UPLOADS}/{id}/info")
}

/// Splits `repositories/<name>/_layers/<hex>` (or `_manifests/revisions/<hex>`) into the
/// repository name, the link kind and the digest. `None` for other keys.
pub fn parse_link(key: &str) -> Option<(&str, LinkKind, Digest)> {
    let rest = key.strip_prefix(REPOSITORIES)?.strip_prefix('/')?;
    let (head, hex) = rest.rsplit_once('/')?;
    let digest = Digest::from_hex(hex).ok()?;
    if let Some(name) = head.strip_suffix("/_layers") {
        Some((name, LinkKind::Layer, digest))
    } else {
        let name = head.strip_suffix("/_manifests/revisions")?;
        Some((name, LinkKind::Revision, digest))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Layer,
    Revision,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip() {
        let d = Digest::of(b"x");
        assert_eq!(
            parse_link(&layer_link("acme/app", &d)),
            Some(("acme/app", LinkKind::Layer, d))
        );
        assert_eq!(
            parse_link(&revision("a", &d)),
            Some(("a", LinkKind::Revision, d))
        );
        assert_eq!(parse_link(&tag("a", "v1")), None);
        assert_eq!(parse_link(&blob(&d)), None);
    }
}
