//! Request paths to typed routes, and the validation of what they carry (pure functions).
//!
//! Repository names contain `/`, so routes are recognised from the end of the path:
//! `/v2/<name>/manifests/<reference>`, `/v2/<name>/blobs/<digest>`,
//! `/v2/<name>/blobs/uploads/[<id>]`, `/v2/<name>/tags/list`, `/v2/<name>/referrers/<digest>`.

use berth_image::Digest;

use super::error::{ApiError, Code};

/// Longest repository name accepted (the spec's limit for the whole name).
pub const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    Tags {
        name: String,
    },
    Manifest {
        name: String,
        reference: String,
    },
    Blob {
        name: String,
        digest: String,
    },
    UploadStart {
        name: String,
    },
    Upload {
        name: String,
        id: String,
    },
    Referrers {
        name: String,
        digest: String,
    },
}

impl Route {
    /// The repository the route is about, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Tags { name }
            | Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Referrers { name, .. } => Some(name),
        }
    }
}

/// Parses a request path (without the query). `None`: not a Distribution route.
pub fn parse(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    let segments: Vec<String> = rest.split('/').map(percent_decode).collect::<Option<_>>()?;
    let n = segments.len();
    let seg = |i: usize| segments[i].as_str();
    let name_of = |len: usize| (len > 0).then(|| segments[..len].join("/"));
    if n >= 3 && seg(n - 2) == "tags" && seg(n - 1) == "list" {
        return Some(Route::Tags {
            name: name_of(n - 2)?,
        });
    }
    if n >= 4 && seg(n - 3) == "blobs" && seg(n - 2) == "uploads" {
        let name = name_of(n - 3)?;
        return Some(if seg(n - 1).is_empty() {
            Route::UploadStart { name }
        } else {
            Route::Upload {
                name,
                id: seg(n - 1).to_string(),
            }
        });
    }
    if n >= 3 && seg(n - 2) == "blobs" && seg(n - 1) == "uploads" {
        return Some(Route::UploadStart {
            name: name_of(n - 2)?,
        });
    }
    if n >= 3 && !seg(n - 1).is_empty() {
        let last = seg(n - 1).to_string();
        match seg(n - 2) {
            "blobs" => {
                return Some(Route::Blob {
                    name: name_of(n - 2)?,
                    digest: last,
                });
            }
            "manifests" => {
                return Some(Route::Manifest {
                    name: name_of(n - 2)?,
                    reference: last,
                });
            }
            "referrers" => {
                return Some(Route::Referrers {
                    name: name_of(n - 2)?,
                    digest: last,
                });
            }
            _ => {}
        }
    }
    None
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Checks a repository name: `/`-separated components of `[a-z0-9]+` joined by `.`, `_`,
/// `__` or runs of `-`, at most [`MAX_NAME_LEN`] bytes in all.
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.len() <= MAX_NAME_LEN && name.split('/').all(valid_component) {
        Ok(())
    } else {
        Err(ApiError::new(Code::NameInvalid)
            .detail(name.chars().take(MAX_NAME_LEN).collect::<String>()))
    }
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let sep = match b[i] {
            b'.' => 1,
            b'_' if b.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            b'-' => b[i..].iter().take_while(|&&x| x == b'-').count(),
            _ => return false,
        };
        i += sep;
        if !b.get(i).is_some_and(alnum) {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A digest from a path or query; `DIGEST_INVALID` otherwise (only sha256 is supported).
pub fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    s.parse().map_err(|_| {
        ApiError::new(Code::DigestInvalid).detail(s.chars().take(100).collect::<String>())
    })
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

pub fn parse_reference(s: &str) -> Result<Reference, ApiError> {
    if s.contains(':') {
        parse_digest(s).map(Reference::Digest)
    } else if valid_tag(s) {
        Ok(Reference::Tag(s.to_string()))
    } else {
        Err(ApiError::new(Code::ManifestInvalid).detail("invalid tag"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn routes_are_recognised_from_the_end() {
        assert_eq!(parse("/v2/"), Some(Route::Base));
        assert_eq!(parse("/v2"), Some(Route::Base));
        assert_eq!(parse("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(
            parse("/v2/a/b/tags/list"),
            Some(Route::Tags { name: name("a/b") })
        );
        assert_eq!(
            parse("/v2/acme/blobs/uploads/"),
            Some(Route::UploadStart { name: name("acme") })
        );
        assert_eq!(
            parse("/v2/acme/blobs/uploads"),
            Some(Route::UploadStart { name: name("acme") })
        );
        assert_eq!(
            parse("/v2/acme/blobs/uploads/abc"),
            Some(Route::Upload {
                name: name("acme"),
                id: name("abc")
            })
        );
        // A repository may itself be called `blobs` or `manifests`.
        assert_eq!(
            parse("/v2/acme/blobs/manifests/v1"),
            Some(Route::Manifest {
                name: name("acme/blobs"),
                reference: name("v1")
            })
        );
        assert_eq!(
            parse("/v2/a/blobs/sha256%3Aab"),
            Some(Route::Blob {
                name: name("a"),
                digest: name("sha256:ab")
            })
        );
        assert_eq!(
            parse("/v2/a/referrers/sha256:ab"),
            Some(Route::Referrers {
                name: name("a"),
                digest: name("sha256:ab")
            })
        );
        for none in [
            "/",
            "/v3/",
            "/v2/tags/list",
            "/v2/blobs/x",
            "/v2/a/b",
            "/v2/a/manifests/",
        ] {
            assert_eq!(parse(none), None, "{none}");
        }
    }

    #[test]
    fn names_follow_the_reference_grammar() {
        for ok in ["a", "acme/app", "a0/b.c/d_e/f__g/h---i", "x/y/z"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        let long = format!("acme/{}", "a".repeat(MAX_NAME_LEN));
        for bad in [
            "",
            "Acme/app",
            "acme/../x",
            "acme//x",
            "-a",
            "a-",
            "a___b",
            "a/.b",
            "é",
            &long,
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_and_tags() {
        assert_eq!(
            parse_reference("v1.0-rc_1").unwrap(),
            Reference::Tag(name("v1.0-rc_1"))
        );
        assert!(parse_reference(".hidden").is_err());
        assert!(parse_reference(&"a".repeat(129)).is_err());
        assert_eq!(
            parse_reference("sha256:00").unwrap_err().code,
            Code::DigestInvalid
        );
        let d = Digest::of(b"x");
        assert_eq!(
            parse_reference(&d.to_string()).unwrap(),
            Reference::Digest(d)
        );
    }
}
