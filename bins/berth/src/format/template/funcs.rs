//! Template functions: Go's builtins plus docker's (`json`, `join`, `split`, `upper`, `lower`,
//! `title`, `pad`, `truncate`), and the header variants docker uses for table headers.

use std::collections::HashMap;
use std::rc::Rc;

use super::value::Value;

pub type Func = Rc<dyn Fn(&[Value]) -> Result<Value, String>>;

pub fn builtins() -> HashMap<String, Func> {
    let mut m: HashMap<String, Func> = HashMap::new();
    let mut add = |name: &str, f: fn(&[Value]) -> Result<Value, String>| {
        m.insert(name.to_string(), Rc::new(f));
    };
    add("and", |a| {
        need(a, 1)?;
        Ok(a.iter()
            .find(|v| !v.truth())
            .unwrap_or(&a[a.len() - 1])
            .clone())
    });
    add("or", |a| {
        need(a, 1)?;
        Ok(a.iter()
            .find(|v| v.truth())
            .unwrap_or(&a[a.len() - 1])
            .clone())
    });
    add("not", |a| {
        exact(a, 1)?;
        Ok(Value::Bool(!a[0].truth()))
    });
    add("len", |a| {
        exact(a, 1)?;
        match &a[0] {
            Value::Str(s) => Ok(Value::Int(s.len() as i64)),
            Value::List(l) => Ok(Value::Int(l.len() as i64)),
            Value::Map(m) => Ok(Value::Int(m.entries.len() as i64)),
            other => Err(format!("len of type {}", other.type_name())),
        }
    });
    add("index", index);
    add("slice", slice);
    add("eq", |a| {
        need(a, 2)?;
        let mut found = false;
        for other in &a[1..] {
            if equal(&a[0], other)? {
                found = true;
            }
        }
        Ok(Value::Bool(found))
    });
    add("ne", |a| {
        exact(a, 2)?;
        Ok(Value::Bool(!equal(&a[0], &a[1])?))
    });
    add("lt", |a| order(a, |o| o.is_lt()));
    add("le", |a| order(a, |o| o.is_le()));
    add("gt", |a| order(a, |o| o.is_gt()));
    add("ge", |a| order(a, |o| o.is_ge()));
    add("print", |a| Ok(Value::Str(sprint(a))));
    add("println", |a| {
        let items: Vec<String> = a.iter().map(Value::print_arg).collect();
        Ok(Value::Str(format!("{}\n", items.join(" "))))
    });
    add("printf", |a| {
        need(a, 1)?;
        let fmt = a[0].as_str().ok_or("printf format must be a string")?;
        Ok(Value::Str(sprintf(fmt, &a[1..])))
    });
    add("html", |a| {
        let s = sprint(a);
        Ok(Value::Str(
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;"),
        ))
    });
    add("urlquery", |a| {
        let s = sprint(a);
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        Ok(Value::Str(out))
    });
    // docker's functions (cli/templates).
    add("json", |a| {
        exact(a, 1)?;
        Ok(Value::Str(a[0].to_json()))
    });
    add("split", |a| {
        exact(a, 2)?;
        let (s, sep) = (string_arg(&a[0])?, string_arg(&a[1])?);
        let parts: Vec<Value> = if sep.is_empty() {
            s.chars().map(|c| Value::Str(c.to_string())).collect()
        } else {
            s.split(sep.as_str())
                .map(|p| Value::Str(p.to_string()))
                .collect()
        };
        Ok(Value::List(parts))
    });
    add("join", |a| {
        exact(a, 2)?;
        let sep = string_arg(&a[1])?;
        match &a[0] {
            Value::List(l) => Ok(Value::Str(
                l.iter()
                    .map(Value::print_arg)
                    .collect::<Vec<_>>()
                    .join(&sep),
            )),
            Value::Nil => Ok(Value::Str(String::new())),
            other => Err(format!(
                "wrong type for value; expected []string; got {}",
                other.type_name()
            )),
        }
    });
    add("title", |a| {
        exact(a, 1)?;
        Ok(Value::Str(title(&string_arg(&a[0])?)))
    });
    add("lower", |a| {
        exact(a, 1)?;
        Ok(Value::Str(string_arg(&a[0])?.to_lowercase()))
    });
    add("upper", |a| {
        exact(a, 1)?;
        Ok(Value::Str(string_arg(&a[0])?.to_uppercase()))
    });
    add("pad", |a| {
        exact(a, 3)?;
        let s = string_arg(&a[0])?;
        if s.is_empty() {
            return Ok(Value::Str(s));
        }
        let (pre, post) = (int_arg(&a[1])?, int_arg(&a[2])?);
        Ok(Value::Str(format!(
            "{}{s}{}",
            " ".repeat(pre),
            " ".repeat(post)
        )))
    });
    add("truncate", |a| {
        exact(a, 2)?;
        let s = string_arg(&a[0])?;
        let n = int_arg(&a[1])?;
        if s.len() < n {
            return Ok(Value::Str(s));
        }
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Ok(Value::Str(s[..end].to_string()))
    });
    m
}

/// docker's `HeaderFunctions`: formatting functions leave header names untouched.
pub fn header_overrides() -> HashMap<String, Func> {
    let mut m: HashMap<String, Func> = HashMap::new();
    for name in [
        "json", "split", "join", "title", "lower", "upper", "truncate",
    ] {
        m.insert(
            name.to_string(),
            Rc::new(|a: &[Value]| Ok(a.first().cloned().unwrap_or(Value::Nil))),
        );
    }
    m
}

fn need(a: &[Value], n: usize) -> Result<(), String> {
    if a.len() < n {
        return Err(format!(
            "wrong number of args: want at least {n} got {}",
            a.len()
        ));
    }
    Ok(())
}

fn exact(a: &[Value], n: usize) -> Result<(), String> {
    if a.len() != n {
        return Err(format!("wrong number of args: want {n} got {}", a.len()));
    }
    Ok(())
}

fn string_arg(v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.clone()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

fn int_arg(v: &Value) -> Result<usize, String> {
    v.as_i64()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| format!("wrong type for value; expected int; got {}", v.type_name()))
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

fn index(a: &[Value]) -> Result<Value, String> {
    need(a, 1)?;
    let mut item = a[0].clone();
    for key in &a[1..] {
        item = match (&item, key) {
            (Value::Nil, _) => return Err("index of untyped nil".into()),
            (Value::List(l), k) => {
                let i = k
                    .as_i64()
                    .ok_or("cannot index slice/array with non-integer")?;
                let elem = usize::try_from(i).ok().and_then(|i| l.get(i));
                elem.cloned()
                    .ok_or_else(|| format!("index out of range: {i}"))?
            }
            (Value::Str(s), k) => {
                let i = k.as_i64().ok_or("cannot index string with non-integer")?;
                let byte = usize::try_from(i).ok().and_then(|i| s.as_bytes().get(i));
                Value::Int(i64::from(
                    *byte.ok_or_else(|| format!("index out of range: {i}"))?,
                ))
            }
            (Value::Map(m), Value::Str(k)) => m.get(k).cloned().unwrap_or(Value::Nil),
            (Value::Map(_), k) => {
                return Err(format!(
                    "value has type {}; should be string",
                    k.type_name()
                ));
            }
            (other, _) => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice(a: &[Value]) -> Result<Value, String> {
    need(a, 1)?;
    let bounds: Vec<usize> = a[1..].iter().map(int_arg).collect::<Result<_, _>>()?;
    let len = match &a[0] {
        Value::Str(s) => s.len(),
        Value::List(l) => l.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let lo = bounds.first().copied().unwrap_or(0);
    let hi = bounds.get(1).copied().unwrap_or(len);
    if lo > hi || hi > len {
        return Err(format!("index out of range: {hi}"));
    }
    Ok(match &a[0] {
        Value::Str(s) => Value::Str(s.get(lo..hi).unwrap_or_default().to_string()),
        Value::List(l) => Value::List(l[lo..hi].to_vec()),
        _ => Value::Nil,
    })
}

fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Str(x), Value::Number(y)) | (Value::Number(y), Value::Str(x)) => x == y,
        (Value::List(_), _) | (Value::Map(_), _) | (_, Value::List(_)) | (_, Value::Map(_)) => {
            return Err("non-comparable type".into());
        }
        (x, y) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => return Err("incompatible types for comparison".into()),
        },
    })
}

fn order(a: &[Value], test: fn(std::cmp::Ordering) -> bool) -> Result<Value, String> {
    exact(a, 2)?;
    let ord = match (&a[0], &a[1]) {
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (x, y) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
            _ => return Err("incompatible types for comparison".into()),
        },
    };
    Ok(Value::Bool(test(ord)))
}

impl Value {
    /// A value as an argument of `print`/`println`/`join` (`<nil>` for nil).
    pub fn print_arg(&self) -> String {
        match self {
            Value::Nil => "<nil>".to_string(),
            other => other.print(),
        }
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither side is a string.
fn sprint(a: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !matches!(v, Value::Str(_)) && !matches!(a[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&v.print_arg());
    }
    out
}

/// A subset of Go's `fmt.Sprintf`: flags `-`/`0`, width, precision; verbs `v s d q t x f %`.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next_arg = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero) = (false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next_arg += 1;
        let text = match verb {
            'd' => arg
                .as_i64()
                .map_or_else(|| format!("%!d({})", arg.print_arg()), |i| i.to_string()),
            'x' => match arg {
                Value::Str(s) => s.bytes().map(|b| format!("{b:02x}")).collect(),
                other => other
                    .as_i64()
                    .map_or_else(|| other.print_arg(), |i| format!("{i:x}")),
            },
            'f' => arg.as_f64().map_or_else(
                || format!("%!f({})", arg.print_arg()),
                |f| format!("{f:.*}", precision.unwrap_or(6)),
            ),
            'q' => crate::format::json::quote(&arg.print_arg(), false),
            's' => {
                let s = arg.print_arg();
                match precision {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            _ => arg.print_arg(),
        };
        let width: usize = width.parse().unwrap_or(0);
        let len = text.chars().count();
        if len >= width {
            out.push_str(&text);
        } else if left {
            out.push_str(&text);
            out.push_str(&" ".repeat(width - len));
        } else {
            let pad = if zero && verb != 's' { '0' } else { ' ' };
            out.extend(std::iter::repeat_n(pad, width - len));
            out.push_str(&text);
        }
    }
    if next_arg < args.len() {
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), a.print_arg()))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

/// The header text for a field without an explicit header: `CreatedSince` → `CREATED SINCE`.
pub fn derived_header(field: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = field.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase()
                || chars.get(i + 1).is_some_and(|n| n.is_lowercase())
                    && chars[i - 1].is_uppercase());
        if boundary {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_from_field_names() {
        assert_eq!(derived_header("CreatedSince"), "CREATED SINCE");
        assert_eq!(derived_header("ID"), "ID");
        assert_eq!(derived_header("LocalVolumes"), "LOCAL VOLUMES");
        assert_eq!(derived_header("RunningFor"), "RUNNING FOR");
    }

    #[test]
    fn printf_subset() {
        let args = [Value::Str("ab".into()), Value::Int(7)];
        assert_eq!(sprintf("%-4s|%03d|%%", &args), "ab  |007|%");
        assert_eq!(sprintf("%v %q", &args), "ab \"7\"");
    }

    #[test]
    fn title_case() {
        assert_eq!(title("hello wide world"), "Hello Wide World");
    }
}
