//! Docker's `filters` query parameter: JSON `{"key":{"value":true}}` or the older
//! `{"key":["value"]}`.

use std::collections::BTreeMap;

use crate::error::{EngineError, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(raw: Option<&str>) -> Result<Filters> {
        let raw = match raw {
            None => return Ok(Filters::default()),
            Some(r) if r.trim().is_empty() => return Ok(Filters::default()),
            Some(r) => r,
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| EngineError::invalid(format!("invalid filter: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| EngineError::invalid("invalid filter: expected an object"))?;
        let mut out = BTreeMap::new();
        for (k, v) in obj {
            let values: Vec<String> = match v {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
                _ => return Err(EngineError::invalid(format!("invalid filter '{k}'"))),
            };
            out.insert(k.clone(), values);
        }
        Ok(Filters(out))
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Rejects keys outside `allowed` with docker's message.
    pub fn validate(&self, allowed: &[&str]) -> Result<()> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(EngineError::invalid(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    /// A boolean filter (`dangling=true`); an invalid value is docker's error.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            [] => Ok(None),
            [v] if v.eq_ignore_ascii_case("true") || v == "1" => Ok(Some(true)),
            [v] if v.eq_ignore_ascii_case("false") || v == "0" => Ok(Some(false)),
            other => Err(EngineError::invalid(format!(
                "invalid filter '{key}={}'",
                other.join(",")
            ))),
        }
    }

    /// `label=key` or `label=key=value` against a label map; all given must match.
    pub fn match_labels(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(key).iter().all(|want| match want.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(want),
        })
    }
}

/// Shell-style glob (`*`, `?`, `[…]`) as Go's path.Match, used by `reference=` filters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn inner(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != '/')
                .any(|i| inner(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && t[0] != '/' && inner(&p[1..], &t[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else {
                    return false;
                };
                let Some(&c) = t.first() else { return false };
                let class = &p[1..end];
                let (negate, class) = match class.first() {
                    Some('^') | Some('!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != negate && inner(&p[end + 1..], &t[1..])
            }
            Some(&c) => t.first() == Some(&c) && inner(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    inner(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let f = Filters::parse(Some(r#"{"dangling":{"true":true},"label":["a=b"]}"#)).unwrap();
        assert_eq!(f.bool("dangling").unwrap(), Some(true));
        assert_eq!(f.get("label"), ["a=b"]);
        assert!(f.validate(&["dangling"]).is_err());
        assert!(Filters::parse(Some("nope")).is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:*", "busybox:latest"));
        assert!(!glob_match("busy*", "busy/box"));
        assert!(glob_match("b?sy[a-c]ox", "busybox"));
        assert!(!glob_match("alpine", "alpine:3"));
    }
}
