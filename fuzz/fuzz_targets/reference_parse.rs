//! Arbitrary UTF-8 as an image reference. Parsing must not panic; a parsed reference must
//! print (`Display`, the fully qualified form) as a string that parses back to an equal value,
//! and its familiar form (`alpine:latest`) must too unless that form is ambiguous the way it
//! is in Docker itself (a Docker Hub repository whose first component looks like a host).

#![no_main]

use berth_image::Reference;
use libfuzzer_sys::fuzz_target;

/// Known bug: `familiar_name` strips `library/` from nested Docker Hub paths too
/// (`docker.io/library/a/b` shows as `a/b`, which is `docker.io/a/b`); Docker strips it only
/// when no `/` follows. Until that is fixed those references skip the familiar check (see
/// `familiar_name_keeps_library_for_nested_paths` in berth-image's layer/tests/randomized.rs).
const NESTED_LIBRARY_FIXED: bool = true;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Reference::parse_normalized_name(s);
    let Ok(r) = Reference::parse_normalized(s) else {
        return;
    };
    let shown = r.to_string();
    let again = Reference::parse_normalized(&shown)
        .unwrap_or_else(|e| panic!("{s:?} parsed to {r:?}, whose Display {shown:?} fails: {e}"));
    assert_eq!(r, again, "{s:?} -> {shown:?} reparses differently");
    assert_eq!(shown, again.to_string());

    let familiar = r.familiar();
    let first = familiar.split('/').next().unwrap_or_default();
    let looks_like_host = familiar.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    let nested_library = r.registry() == "docker.io"
        && r.repository()
            .strip_prefix("library/")
            .is_some_and(|rest| rest.contains('/'));
    if !looks_like_host && (NESTED_LIBRARY_FIXED || !nested_library) {
        let again = Reference::parse_normalized(&familiar).unwrap_or_else(|e| {
            panic!("{s:?} parsed to {r:?}, whose familiar form {familiar:?} fails: {e}")
        });
        assert_eq!(
            r, again,
            "{s:?} -> familiar {familiar:?} reparses differently"
        );
    }
});
