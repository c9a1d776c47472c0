//! Reads twin bytes into a `serde_json::Value` without the parts of the `$metadata`
//! trees no rule reads. `$metadata` mirrors every node of a section and is about half of
//! a real twin; the rules need only a section's `$lastUpdated` and, for custom module
//! properties, each top-level key's `$lastUpdated`. Skipping the rest while parsing
//! saves building (and freeing) a map per metadata node.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Where in the document the parser is.
#[derive(Clone, Copy)]
enum Depth {
    /// Ordinary content: kept whole.
    Content,
    /// A `$metadata` object: its `$lastUpdated` and its children's are kept.
    Metadata,
    /// A child of `$metadata`: only its own `$lastUpdated` is kept.
    MetadataChild,
}

struct Pruned(Depth);

pub(crate) fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Pruned(Depth::Content).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

impl<'de> DeserializeSeed<'de> for Pruned {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(Pruned(Depth::Content))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = match (self.0, key.as_str()) {
                (Depth::Content, "$metadata") => Some(Depth::Metadata),
                (Depth::Content, _) => Some(Depth::Content),
                (Depth::Metadata | Depth::MetadataChild, "$lastUpdated") => Some(Depth::Content),
                (Depth::Metadata, other) if other.starts_with('$') => None,
                (Depth::Metadata, _) => Some(Depth::MetadataChild),
                (Depth::MetadataChild, _) => None,
            };
            match child {
                Some(depth) => {
                    let value = map.next_value_seed(Pruned(depth))?;
                    out.insert(key, value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn keeps_content_and_the_timestamps_the_rules_read() {
        let text = json!({
            "properties": {"desired": {
                "SendInterval": {"a": [1, {"b": null}]},
                "$metadata": {
                    "$lastUpdated": "2018-06-06T07:50:36Z",
                    "$lastUpdatedVersion": 6,
                    "SendInterval": {"$lastUpdated": "t1", "$lastUpdatedVersion": 6, "a": {"$lastUpdated": "t2"}}
                },
                "$version": 6
            }}
        });
        let parsed = super::parse(text.to_string().as_bytes()).unwrap();
        assert_eq!(
            parsed,
            json!({"properties": {"desired": {
                "SendInterval": {"a": [1, {"b": null}]},
                "$metadata": {"$lastUpdated": "2018-06-06T07:50:36Z", "SendInterval": {"$lastUpdated": "t1"}},
                "$version": 6
            }}})
        );
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        for bad in [&b"{"[..], b"[1,]", b"{} {}", b"", b"nul"] {
            assert!(
                super::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(super::parse(b" 42 ").unwrap(), json!(42));
    }
}
