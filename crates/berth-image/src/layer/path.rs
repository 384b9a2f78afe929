//! Lexical handling of the paths in a layer tar: cleaning, splitting and whiteout names.

/// Prefix of a whiteout entry: `dir/.wh.NAME` deletes `dir/NAME` of the layers below.
pub(super) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Prefix of AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`), which has no meaning here.
pub(super) const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// `dir/.wh..wh..opq` hides everything the layers below have in `dir`.
pub(super) const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";

/// Cleans a tar path lexically, like Go's `filepath.Clean` on a path made relative: leading
/// slashes are stripped, empty and `.` components dropped and `..` removes the component before
/// it. The result goes to `out` (components joined with `/`, empty for the layer root).
/// Returns `false` if a `..` would climb above the root, the path Docker calls a breakout.
pub(super) fn clean(raw: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return false;
                }
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            name => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(name);
            }
        }
    }
    true
}

/// Splits a cleaned path into its parent directory and its last component
/// (`"a/b/c"` → `("a/b", "c")`, `"c"` → `("", "c")`).
pub(super) fn split(clean: &[u8]) -> (&[u8], &[u8]) {
    match clean.iter().rposition(|&b| b == b'/') {
        Some(i) => (&clean[..i], &clean[i + 1..]),
        None => (&[], clean),
    }
}

/// What a cleaned entry path means for the layer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kind<'a> {
    /// The layer root itself (`/`, `.`, `./`).
    Root,
    /// An ordinary entry to create at `parent/name`.
    Entry,
    /// `parent/.wh.NAME`: `parent/NAME` becomes an overlay whiteout.
    Whiteout(&'a [u8]),
    /// `parent/.wh..wh..opq`: `parent` becomes opaque.
    Opaque,
    /// AUFS metadata, skipped.
    AufsMeta,
    /// A whiteout whose target is not a single plain name (`.wh.`, `.wh..`, `.wh...`).
    BadWhiteout,
}

/// Classifies a cleaned path by its last component.
pub(super) fn classify(clean: &[u8]) -> Kind<'_> {
    if clean.is_empty() {
        return Kind::Root;
    }
    // Docker skips everything under a top-level AUFS metadata directory.
    if clean.starts_with(WHITEOUT_META_PREFIX) && clean != WHITEOUT_OPAQUE {
        return Kind::AufsMeta;
    }
    let (_, name) = split(clean);
    if name == WHITEOUT_OPAQUE {
        Kind::Opaque
    } else if name.starts_with(WHITEOUT_META_PREFIX) {
        Kind::AufsMeta
    } else if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
        // `name` holds no `/`, so the target can only go wrong by being empty, `.` or `..`.
        match target {
            b"" | b"." | b".." => Kind::BadWhiteout,
            _ => Kind::Whiteout(target),
        }
    } else {
        Kind::Entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(raw: &str) -> Option<String> {
        let mut out = Vec::new();
        clean(raw.as_bytes(), &mut out).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn clean_normalises_and_rejects_escapes() {
        assert_eq!(cleaned("a/b/c").as_deref(), Some("a/b/c"));
        assert_eq!(cleaned("./a//b/./c/").as_deref(), Some("a/b/c"));
        assert_eq!(cleaned("/abs/path").as_deref(), Some("abs/path"));
        assert_eq!(cleaned("a/../b").as_deref(), Some("b"));
        assert_eq!(cleaned("a/b/../../c").as_deref(), Some("c"));
        assert_eq!(cleaned("./").as_deref(), Some(""));
        assert_eq!(cleaned("/").as_deref(), Some(""));
        assert_eq!(cleaned("a/..").as_deref(), Some(""));
        assert_eq!(cleaned("..."), Some("...".into()));
        assert_eq!(cleaned("../x"), None);
        assert_eq!(cleaned("sub/../../x"), None);
        assert_eq!(cleaned("/../x"), None);
        assert_eq!(cleaned(".."), None);
    }

    #[test]
    fn split_last_component() {
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"c"), (&b""[..], &b"c"[..]));
    }

    #[test]
    fn classify_whiteouts() {
        assert_eq!(classify(b""), Kind::Root);
        assert_eq!(classify(b"a/b"), Kind::Entry);
        assert_eq!(classify(b"a/.wh.b"), Kind::Whiteout(b"b"));
        assert_eq!(classify(b".wh.b"), Kind::Whiteout(b"b"));
        assert_eq!(classify(b"a/.wh..wh..opq"), Kind::Opaque);
        assert_eq!(classify(b".wh..wh..opq"), Kind::Opaque);
        assert_eq!(classify(b".wh..wh.plnk"), Kind::AufsMeta);
        assert_eq!(classify(b".wh..wh.plnk/123.45"), Kind::AufsMeta);
        assert_eq!(classify(b"a/.wh..wh.aufs"), Kind::AufsMeta);
        assert_eq!(classify(b"a/.wh."), Kind::BadWhiteout);
        assert_eq!(classify(b"a/.wh.."), Kind::BadWhiteout);
        assert_eq!(classify(b".wh..."), Kind::BadWhiteout);
        assert_eq!(classify(b"a/.wh...."), Kind::Whiteout(b"..."));
    }
}
