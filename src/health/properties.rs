//! Custom module property drift: the desired keys a module twin must echo in its
//! reported section. Keys are top-level; values compare as JSON (numbers by value, so
//! `30` equals `30.0`). A key whose desired value changed within the grace period is
//! in progress rather than drifted, judged by that key's own `$metadata.$lastUpdated`.

use jiff::Timestamp;
use serde_json::Value;

use super::policy::{Policy, PropertySelection};
use super::report::{DriftItem, Reason};
use super::text::{after, human, render, twin_time};
use crate::twin::{ModuleTwin, PropertyValue, TwinTime};

pub(crate) fn drift(
    module: &ModuleTwin,
    selection: &PropertySelection,
    policy: &Policy,
    now: Timestamp,
) -> Vec<DriftItem> {
    let keys: Vec<&str> = match selection {
        PropertySelection::AllDesired => module.desired_properties.keys().collect(),
        PropertySelection::Keys(keys) => keys.iter().map(String::as_str).collect(),
    };
    keys.into_iter()
        .filter_map(|key| {
            let desired = module.desired_properties.get(key)?;
            let reported = module.reported_properties.get(key);
            if reported.is_some_and(|r| json_equal(&r.value, &desired.value)) {
                return None;
            }
            Some(item(module.name(), key, desired, reported, policy, now))
        })
        .collect()
}

fn item(
    module: &str,
    key: &str,
    desired: &PropertyValue,
    reported: Option<&PropertyValue>,
    policy: &Policy,
    now: Timestamp,
) -> DriftItem {
    let want = render(&desired.value);
    let have = reported.map(|r| render(&r.value));
    let seen = match (&have, reported) {
        (Some(value), Some(r)) => format!("reported {value} (at {})", twin_time(r.last_updated)),
        _ => "not reported".to_owned(),
    };
    let head = format!(
        "module {module} property {key}: desired {want} (set {}), {seen}",
        twin_time(desired.last_updated)
    );
    let in_grace = desired
        .last_updated
        .and_then(TwinTime::timestamp)
        .is_some_and(|at| now < after(at, policy.deployment_grace));
    let (reason, message) = if in_grace {
        let grace = human(policy.deployment_grace);
        (
            Reason::DeploymentInProgress,
            format!("{head}, within the {grace} grace period"),
        )
    } else {
        (Reason::PropertyDrift, head)
    };
    DriftItem {
        reason,
        module: Some(module.to_owned()),
        property: Some(key.to_owned()),
        desired: Some(want),
        reported: have,
        message,
    }
}

/// JSON equality that treats numbers by value (`30 == 30.0`).
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        // Exact on purpose: `30` and `30.0` are the same setting, `30.0001` is not.
        #[allow(clippy::float_cmp)]
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::json_equal;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_equal(&json!(30), &json!(30.0)));
        assert!(json_equal(&json!({"a": [1, 2]}), &json!({"a": [1.0, 2]})));
        assert!(!json_equal(&json!(30), &json!("30")));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }
}
