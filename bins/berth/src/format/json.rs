//! JSON the way Go writes it: `json.Indent` / `json.Compact` over the daemon's raw bytes (so
//! key order and number text survive), and Go's string escaping.

/// Go's `json.Indent(dst, src, prefix, indent)` for valid JSON input.
pub fn indent(src: &str, indent: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut need_indent = false;
    let mut in_string = false;
    let mut escaped = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    };
    for c in src.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if need_indent && c != ']' && c != '}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                need_indent = true;
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            '}' | ']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Go's `json.Compact` for valid JSON input.
pub fn compact(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in src.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !c.is_ascii_whitespace() {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

/// A Go-escaped JSON string literal; `escape_html` as `json.Marshal` (on) or an encoder with
/// `SetEscapeHTML(false)`.
pub fn quote(s: &str, escape_html: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indent_like_go() {
        let raw = r#"[{"Id":"sha256:x","RepoTags":["a:b"],"Empty":[],"Obj":{},"Labels":{"a":"b, c"},"N":1.50}]"#;
        let want = "[\n    {\n        \"Id\": \"sha256:x\",\n        \"RepoTags\": [\n            \"a:b\"\n        ],\n        \"Empty\": [],\n        \"Obj\": {},\n        \"Labels\": {\n            \"a\": \"b, c\"\n        },\n        \"N\": 1.50\n    }\n]";
        assert_eq!(indent(raw, "    "), want);
    }

    #[test]
    fn compact_keeps_strings() {
        assert_eq!(compact("{ \"a b\" : [1, 2] }\n"), "{\"a b\":[1,2]}");
        assert_eq!(compact(r#"{"q":"x \" y"}"#), r#"{"q":"x \" y"}"#);
    }

    #[test]
    fn quote_like_go() {
        assert_eq!(quote("<none>", true), "\"\\u003cnone\\u003e\"");
        assert_eq!(quote("<none>", false), "\"<none>\"");
        assert_eq!(quote("a\"b\\\n\u{1}", false), "\"a\\\"b\\\\\\n\\u0001\"");
    }
}
