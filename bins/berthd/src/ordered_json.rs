//! JSON answers with Go's map semantics: structs keep their field order, maps are
//! sorted by key. Our API types carry some maps as `HashMap`s, whose order changes from
//! one answer to the next; [`sorted_maps`] re-orders the objects at the given paths.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value whose objects keep their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Scalar(serde_json::Value),
}

impl Ordered {
    fn sort_at(&mut self, path: &[&str]) {
        match (self, path) {
            (Ordered::Object(fields), []) => fields.sort_by(|a, b| a.0.cmp(&b.0)),
            (Ordered::Object(fields), [first, rest @ ..]) => {
                for (key, value) in fields.iter_mut() {
                    if first == &"*" || key == first {
                        value.sort_at(rest);
                    }
                }
            }
            (Ordered::Array(items), _) => {
                for item in items {
                    item.sort_at(path);
                }
            }
            _ => {}
        }
    }
}

/// `value` as JSON with the objects at `paths` (`*` matches any key; arrays are
/// looked through) sorted by key.
pub fn sorted_maps<T: Serialize>(value: &T, paths: &[&[&str]]) -> serde_json::Result<Vec<u8>> {
    let text = serde_json::to_vec(value)?;
    let mut ordered: Ordered = serde_json::from_slice(&text)?;
    for path in paths {
        ordered.sort_at(path);
    }
    serde_json::to_vec(&ordered)
}

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ordered::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Ordered::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Ordered::Scalar(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_string<E>(self, v: String) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(serde_json::Value::Null))
            }
            fn visit_none<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(serde_json::Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
                    fields.push((k, v));
                }
                Ok(Ordered::Object(fields))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_objects_are_sorted() {
        let value = serde_json::json!({"B": 1, "A": {"z": 1, "y": 2}, "L": [{"k2": 1, "k1": 2}]});
        let out = sorted_maps(&value, &[&["A"], &["L"]]).unwrap();
        // serde_json's own map is sorted already; the point is that nothing else moves.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"A":{"y":2,"z":1},"B":1,"L":[{"k1":2,"k2":1}]}"#
        );
        let ordered: Ordered = serde_json::from_str(r#"{"b":1,"a":{"d":1,"c":2}}"#).unwrap();
        let mut o = ordered.clone();
        o.sort_at(&["a"]);
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            r#"{"b":1,"a":{"c":2,"d":1}}"#
        );
    }
}
