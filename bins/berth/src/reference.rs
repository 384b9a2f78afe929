//! Image references normalized like docker's `reference.ParseNormalizedNamed`: `alpine` is
//! `docker.io/library/alpine`, `localhost:5000/x` keeps its registry.

pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The key docker's config.json uses for Docker Hub credentials.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn invalid() -> String {
    "invalid reference format".to_string()
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_lowercase() || b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "."
            || sep == "_"
            || sep == "__"
            || (!sep.is_empty() && sep.bytes().all(|x| x == b'-'));
        if !ok || i >= b.len() || !(b[i].is_ascii_lowercase() || b[i].is_ascii_digit()) {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host.len() > 2
            && host[1..host.len() - 1]
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b':');
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

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some((alg, hex)) => {
            !alg.is_empty()
                && alg.as_bytes()[0].is_ascii_alphabetic()
                && alg
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'+' | b'.'))
                && hex.len() >= 32
                && hex.bytes().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

impl Reference {
    pub fn parse_normalized(s: &str) -> Result<Reference, String> {
        if s.len() == 64 && s.bytes().all(|c| matches!(c, b'a'..=b'f' | b'0'..=b'9')) {
            return Err(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            ));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder
            .split_once(':')
            .map_or(remainder.as_str(), |(r, _)| r);
        let remote = remote.split_once('@').map_or(remote, |(r, _)| r);
        if remote.to_lowercase() != remote {
            return Err(format!(
                "invalid reference format: repository name ({remote}) must be lowercase"
            ));
        }
        let (rest, digest) = match remainder.split_once('@') {
            Some((r, d)) => (r.to_string(), Some(d.to_string())),
            None => (remainder.clone(), None),
        };
        let (path, tag) = match rest.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p.to_string(), Some(t.to_string())),
            _ => (rest, None),
        };
        if !valid_domain(&domain) || path.is_empty() || !path.split('/').all(valid_component) {
            return Err(invalid());
        }
        if domain.len() + 1 + path.len() > 255 {
            return Err("repository name must not be more than 255 characters".to_string());
        }
        if tag.as_deref().is_some_and(|t| !valid_tag(t))
            || digest.as_deref().is_some_and(|d| !valid_digest(d))
        {
            return Err(invalid());
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `docker.io/library/alpine`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `alpine` for Docker Hub's official images, `user/x` for Hub users, else the full name.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    fn suffix(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// `docker.io/library/alpine:latest`.
    pub fn full(&self) -> String {
        format!("{}{}", self.name(), self.suffix())
    }

    /// `alpine:latest`.
    pub fn familiar(&self) -> String {
        format!("{}{}", self.familiar_name(), self.suffix())
    }

    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// `reference.TagNameOnly`: adds `:latest` to a bare name.
    pub fn with_default_tag(mut self) -> Reference {
        if self.is_name_only() {
            self.tag = Some("latest".to_string());
        }
        self
    }

    /// The key under which config.json holds this registry's credentials.
    pub fn auth_key(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            INDEX_SERVER.to_string()
        } else {
            self.domain.clone()
        }
    }
}

fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first
            {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            } else {
                (first.to_string(), name[i + 1..].to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    (domain, remainder)
}

/// docker's `credentials.ConvertToHostname`: `https://host:5000/v2/` → `host:5000`.
pub fn convert_to_hostname(url: &str) -> String {
    let stripped = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    stripped.split('/').next().unwrap_or(stripped).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap()
    }

    #[test]
    fn normalizes_like_docker() {
        let r = p("alpine");
        assert_eq!(r.full(), "docker.io/library/alpine");
        assert_eq!(
            r.clone().with_default_tag().full(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(r.familiar_name(), "alpine");
        assert_eq!(r.auth_key(), INDEX_SERVER);
        let r = p("user/app:1.0");
        assert_eq!(r.full(), "docker.io/user/app:1.0");
        assert_eq!(r.familiar(), "user/app:1.0");
        let r = p("localhost:5000/foo/bar:1.0");
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(r.familiar(), "localhost:5000/foo/bar:1.0");
        assert_eq!(r.auth_key(), "localhost:5000");
        let r = p(
            "index.docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        );
        assert_eq!(r.familiar_name(), "busybox");
        assert!(r.digest.is_some());
        assert_eq!(p("localhost/x").domain, "localhost");
    }

    #[test]
    fn rejects_bad_references() {
        assert!(
            Reference::parse_normalized("UPPER")
                .unwrap_err()
                .contains("must be lowercase")
        );
        assert_eq!(
            Reference::parse_normalized("a:b:c").unwrap_err(),
            "invalid reference format"
        );
        assert!(Reference::parse_normalized("foo@sha256:xyz").is_err());
        assert!(
            Reference::parse_normalized(&"a".repeat(64))
                .unwrap_err()
                .contains("64-byte")
        );
        assert!(Reference::parse_normalized("").is_err());
        assert!(Reference::parse_normalized("a/-b").is_err());
    }

    #[test]
    fn hostnames() {
        assert_eq!(convert_to_hostname("https://reg:5000/v2/"), "reg:5000");
        assert_eq!(convert_to_hostname("reg.example.com"), "reg.example.com");
    }
}
