//! Volume bodies as dockerd writes and reads them, and the checks dockerd's `local` driver makes
//! on names and driver options (with its error texts).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// The label dockerd puts on volumes created without a name (`docker run -v /data`,
/// `docker volume create` with no name); `volume prune` only removes those unless `all=true`.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The one driver berth has.
pub const LOCAL_DRIVER: &str = "local";

/// `GET /volumes/{name}` and each entry of `GET /volumes`, field for field as dockerd.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// RFC 3339 in the daemon's time zone, seconds precision (Go's `time.RFC3339`).
    pub created_at: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub mountpoint: String,
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
    pub scope: String,
    /// Only in `system df` (dockerd computes it only when asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<UsageData>,
}

/// How many containers use a volume and how many bytes it holds (`-1` when not computed).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct UsageData {
    pub ref_count: i64,
    pub size: i64,
}

/// `GET /volumes`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeList {
    pub volumes: Vec<Volume>,
    pub warnings: Option<Vec<String>>,
}

/// `POST /volumes/prune`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumePruneReport {
    pub volumes_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// `POST /volumes/create` body (every field optional, `null` included).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateOptions {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

impl CreateOptions {
    /// A volume named `name` (anonymous when `None`) with the default driver.
    pub fn named(name: Option<&str>) -> CreateOptions {
        CreateOptions {
            name: name.map(str::to_string),
            ..CreateOptions::default()
        }
    }
}

/// docker's `RestrictedNamePattern`: `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`.
fn restricted_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Go's `%q` for a string (`strconv.Quote`).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The local driver's name check, with dockerd's messages (without the `create NAME: ` prefix).
pub fn validate_name(name: &str) -> Result<()> {
    if name.chars().count() == 1 {
        return Err(EngineError::invalid(
            "volume name is too short, names should be at least two alphanumeric characters",
        ));
    }
    if !restricted_name(name) {
        return Err(EngineError::invalid(format!(
            "{} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
            go_quote(name)
        )));
    }
    Ok(())
}

/// The local driver's option check: `type`, `device` and `o` (a mount made at first use).
pub fn validate_driver_opts(opts: &BTreeMap<String, String>) -> Result<()> {
    for key in opts.keys() {
        match key.as_str() {
            "type" | "device" | "o" => {}
            "size" => {
                return Err(EngineError::invalid(
                    "quota size requested but no quota support",
                ));
            }
            other => {
                return Err(EngineError::invalid(format!(
                    "invalid option: {}",
                    go_quote(other)
                )));
            }
        }
    }
    let has = |k: &str| opts.contains_key(k);
    if (has("type") || has("o")) && !has("device") {
        return Err(EngineError::invalid("missing required option: \"device\""));
    }
    if has("device") && !has("type") {
        return Err(EngineError::invalid("missing required option: \"type\""));
    }
    Ok(())
}

/// A random 64-hex-digit name, as dockerd gives anonymous volumes.
pub fn random_name() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's `time.RFC3339` in the local zone (`2026-11-23T08:10:00Z`, `…+01:00`).
pub fn rfc3339_local(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// docker's `label=…` / `label!=…` filter values against a label map: `key` or `key=value`.
pub(crate) fn label_matches(want: &str, labels: &BTreeMap<String, String>) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(want),
    }
}

/// docker's `name=` volume filter is a regular expression search; berth supports the forms
/// people use: a substring, optionally anchored with `^` and/or `$`.
pub(crate) fn name_matches(pattern: &str, name: &str) -> bool {
    let (start, rest) = match pattern.strip_prefix('^') {
        Some(r) => (true, r),
        None => (false, pattern),
    };
    let (end, core) = match rest.strip_suffix('$') {
        Some(c) if !c.ends_with('\\') => (true, c),
        _ => (false, rest),
    };
    match (start, end) {
        (true, true) => name == core,
        (true, false) => name.starts_with(core),
        (false, true) => name.ends_with(core),
        (false, false) => name.contains(core),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_docker() {
        assert!(validate_name("ab").is_ok());
        assert!(validate_name("my_vol-1.2").is_ok());
        assert!(validate_name("0x").is_ok());
        let short = validate_name("a").unwrap_err();
        assert_eq!(
            short.message,
            "volume name is too short, names should be at least two alphanumeric characters"
        );
        let bad = validate_name("a/b").unwrap_err();
        assert_eq!(
            bad.message,
            "\"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
        assert!(validate_name("_ab").is_err());
        assert!(validate_name("..").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("é1").is_err());
        assert_eq!(go_quote("a\"b\n\u{1}"), "\"a\\\"b\\n\\x01\"");
    }

    #[test]
    fn driver_opts_like_docker() {
        let m = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(validate_driver_opts(&m(&[])).is_ok());
        assert!(validate_driver_opts(&m(&[("type", "tmpfs"), ("device", "tmpfs")])).is_ok());
        let err = |kv| validate_driver_opts(&m(kv)).unwrap_err().message;
        assert_eq!(err(&[("foo", "bar")]), "invalid option: \"foo\"");
        assert_eq!(
            err(&[("type", "tmpfs")]),
            "missing required option: \"device\""
        );
        assert_eq!(err(&[("o", "bind")]), "missing required option: \"device\"");
        assert_eq!(
            err(&[("device", "/x")]),
            "missing required option: \"type\""
        );
        assert_eq!(
            err(&[("size", "10m")]),
            "quota size requested but no quota support"
        );
    }

    #[test]
    fn random_names_are_64_hex() {
        let n = random_name();
        assert_eq!(n.len(), 64);
        assert!(
            n.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(n, random_name());
    }

    #[test]
    fn name_filter() {
        assert!(name_matches("fo", "foo"));
        assert!(name_matches("^fo", "foo"));
        assert!(!name_matches("^oo", "foo"));
        assert!(name_matches("oo$", "foo"));
        assert!(name_matches("^foo$", "foo"));
        assert!(!name_matches("^fo$", "foo"));
    }

    #[test]
    fn json_like_dockerd() {
        let v = Volume {
            created_at: "2026-11-23T08:10:00Z".into(),
            driver: "local".into(),
            labels: BTreeMap::new(),
            mountpoint: "/v/x/_data".into(),
            name: "x".into(),
            options: None,
            scope: "local".into(),
            usage_data: None,
        };
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"CreatedAt":"2026-11-23T08:10:00Z","Driver":"local","Labels":{},"Mountpoint":"/v/x/_data","Name":"x","Options":null,"Scope":"local"}"#
        );
        let o: CreateOptions =
            serde_json::from_str(r#"{"Name":"a","DriverOpts":null,"Labels":{"k":"v"}}"#).unwrap();
        assert_eq!(o.name.as_deref(), Some("a"));
        assert!(o.driver_opts.is_none());
    }
}
