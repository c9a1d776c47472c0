//! Small, forgiving accessors over `serde_json::Value`: a field of the wrong type reads
//! as absent instead of failing the whole document.

use serde_json::{Map, Value};

use super::TwinTime;

pub(crate) fn object(value: Option<&Value>) -> Option<&Map<String, Value>> {
    value.and_then(Value::as_object)
}

pub(crate) fn field<'a>(map: Option<&'a Map<String, Value>>, key: &str) -> Option<&'a Value> {
    map.and_then(|m| m.get(key))
}

pub(crate) fn sub_object<'a>(
    map: Option<&'a Map<String, Value>>,
    key: &str,
) -> Option<&'a Map<String, Value>> {
    object(field(map, key))
}

pub(crate) fn string(map: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    field(map, key).and_then(Value::as_str).map(str::to_owned)
}

/// Integers only; a float with no fractional part (some serialisers write `5.0`) counts.
pub(crate) fn integer(map: Option<&Map<String, Value>>, key: &str) -> Option<i64> {
    let value = field(map, key)?;
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

pub(crate) fn time(map: Option<&Map<String, Value>>, key: &str) -> Option<TwinTime> {
    field(map, key)
        .filter(|v| !v.is_null())
        .map(TwinTime::from_json)
}

/// `$metadata.$lastUpdated` of a section or node.
pub(crate) fn last_updated(metadata: Option<&Map<String, Value>>) -> Option<TwinTime> {
    time(metadata, "$lastUpdated")
}

/// The JSON type name, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a JSON array",
        Value::Object(_) => "an object",
    }
}
