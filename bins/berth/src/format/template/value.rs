//! The data a template runs on: decoded JSON (kept in key order) and docker's formatter
//! contexts, printed the way Go's `fmt` prints them.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::format::json::quote;
use crate::format::units::format_float;

const METHOD: &str = "func(string) string";

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A JSON number too large for `i64`, kept as its text (Go's `json.Number`).
    Number(String),
    Str(String),
    List(Vec<Value>),
    Map(Map),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Map {
    pub kind: MapKind,
    pub entries: Vec<(String, Value)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MapKind {
    /// A decoded JSON object (Go `map[string]any`): prints as `map[k:v]` with sorted keys, and
    /// a missing key is an error (docker runs inspect templates with `missingkey=error`).
    Json,
    /// A Go struct: prints as `{v1 v2}`, JSON in field order, a missing field names the type.
    Struct(String),
    /// A docker formatter context: like a struct, but its JSON (`MarshalJSON`) has sorted keys
    /// and HTML escaping.
    Context(String),
}

impl Map {
    pub fn new(kind: MapKind) -> Map {
        Map {
            kind,
            entries: Vec::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_ignore_case(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.entries.push((key, value)),
        }
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Map {
        self.insert(key, value.into());
        self
    }

    pub fn sorted(&self) -> Vec<&(String, Value)> {
        let mut entries: Vec<_> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    pub fn type_name(&self) -> &str {
        match &self.kind {
            MapKind::Json => "map[string]interface {}",
            MapKind::Struct(name) | MapKind::Context(name) => name,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Value {
        Value::Map(m)
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}

impl Value {
    /// Decodes JSON text, keeping object keys in their order.
    pub fn from_json(text: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// A string field of an object, or "".
    pub fn str_at(&self, key: &str) -> &str {
        self.get(key).and_then(Value::as_str).unwrap_or("")
    }

    /// An integer field of an object, or 0.
    pub fn i64_at(&self, key: &str) -> i64 {
        self.get(key).and_then(Value::as_i64).unwrap_or(0)
    }

    /// A list field of an object, or an empty slice.
    pub fn list_at(&self, key: &str) -> &[Value] {
        match self.get(key) {
            Some(Value::List(l)) => l,
            _ => &[],
        }
    }

    /// Go's truth: false, 0, nil and empty strings, lists and maps are false; structs are true.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Number(n) => n.parse::<f64>().map(|f| f != 0.0).unwrap_or(true),
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => match m.kind {
                MapKind::Json => !m.entries.is_empty(),
                _ => true,
            },
        }
    }

    /// A method that takes one string argument (`.Label "key"` of docker's contexts): a
    /// lookup table, left out of the context's JSON.
    pub fn method(table: Vec<(String, Value)>) -> Value {
        Value::Map(Map {
            kind: MapKind::Struct(METHOD.into()),
            entries: table,
        })
    }

    pub fn is_method(&self) -> bool {
        matches!(self, Value::Map(m) if m.kind == MapKind::Struct(METHOD.into()))
    }

    /// Go's name for the value's type, as it appears in template errors.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::Number(_) => "json.Number".into(),
            Value::Str(_) => "string".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(m) => m.type_name().to_string(),
        }
    }

    /// Go's `%v` of a value at the top of an action (`<no value>` for nil).
    pub fn print(&self) -> String {
        match self {
            Value::Nil => "<no value>".to_string(),
            other => other.print_nested(),
        }
    }

    fn print_nested(&self) -> String {
        match self {
            Value::Nil => "<nil>".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float(*f),
            Value::Number(n) => n.clone(),
            Value::Str(s) => s.clone(),
            Value::List(l) => {
                let items: Vec<String> = l.iter().map(Value::print_nested).collect();
                format!("[{}]", items.join(" "))
            }
            Value::Map(m) => match m.kind {
                MapKind::Json => {
                    let items: Vec<String> = m
                        .sorted()
                        .iter()
                        .map(|(k, v)| format!("{k}:{}", v.print_nested()))
                        .collect();
                    format!("map[{}]", items.join(" "))
                }
                _ => {
                    let items: Vec<String> =
                        m.entries.iter().map(|(_, v)| v.print_nested()).collect();
                    format!("{{{}}}", items.join(" "))
                }
            },
        }
    }

    /// The value as docker's `json` template function writes it (no HTML escaping, except
    /// inside formatter contexts, whose own `MarshalJSON` escapes).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out, false);
        out
    }

    fn write_json(&self, out: &mut String, escape_html: bool) {
        match self {
            Value::Nil => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&f.to_string()),
            Value::Number(n) => out.push_str(n),
            Value::Str(s) => out.push_str(&quote(s, escape_html)),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out, escape_html);
                }
                out.push(']');
            }
            Value::Map(m) => {
                let (entries, escape): (Vec<&(String, Value)>, bool) = match m.kind {
                    MapKind::Context(_) => (m.sorted(), true),
                    // A decoded object keeps the daemon's order, which is its Go struct order.
                    MapKind::Json | MapKind::Struct(_) => (m.entries.iter().collect(), escape_html),
                };
                out.push('{');
                let entries: Vec<_> = entries
                    .into_iter()
                    .filter(|(_, v)| !v.is_method())
                    .collect();
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&quote(k, escape));
                    out.push(':');
                    v.write_json(out, escape);
                }
                out.push('}');
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v)
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Number(v.to_string())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new(MapKind::Json);
        while let Some((k, v)) = access.next_entry::<String, Value>()? {
            map.insert(k, v);
        }
        Ok(Value::Map(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_key_order() {
        let v = Value::from_json(r#"{"b":1,"a":[true,null,"x"],"c":{"z":1,"y":2}}"#).unwrap();
        assert_eq!(
            v.to_json(),
            r#"{"b":1,"a":[true,null,"x"],"c":{"z":1,"y":2}}"#
        );
        assert_eq!(v.print(), "map[a:[true <nil> x] b:1 c:map[y:2 z:1]]");
    }

    #[test]
    fn contexts_marshal_sorted_and_escaped() {
        let m = Map::new(MapKind::Context("*formatter.imageContext".into()))
            .with("Tag", "<none>")
            .with("ID", "abc");
        assert_eq!(
            Value::Map(m).to_json(),
            r#"{"ID":"abc","Tag":"\u003cnone\u003e"}"#
        );
    }

    #[test]
    fn structs_marshal_in_field_order() {
        let m = Map::new(MapKind::Struct("x".into()))
            .with("B", "<b>")
            .with("A", 1i64);
        assert_eq!(Value::Map(m).to_json(), r#"{"B":"<b>","A":1}"#);
    }

    #[test]
    fn truthiness() {
        assert!(!Value::Str(String::new()).truth());
        assert!(Value::Str("x".into()).truth());
        assert!(!Value::Nil.truth());
        assert!(!Value::Int(0).truth());
        assert!(!Value::List(vec![]).truth());
        assert!(Value::Map(Map::new(MapKind::Struct("s".into()))).truth());
    }
}
