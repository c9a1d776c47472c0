//! The `Ready` summary of the four aspects.

use super::report::{ConditionStatus, ConditionType, DeviceCondition, Reason};
use super::text::condition;

/// The first False aspect (in contract order) decides; else the first Unknown one, where
/// `PingSkipped` does not count (ping may be switched off); else Ready.
pub(crate) fn ready(aspects: &[DeviceCondition]) -> DeviceCondition {
    let pick = |wanted: ConditionStatus| {
        ConditionType::ASPECTS.iter().find_map(|type_| {
            aspects.iter().find(|c| {
                c.type_ == *type_
                    && c.status == wanted
                    && !(c.status == ConditionStatus::Unknown && c.reason == Reason::PingSkipped)
            })
        })
    };
    if let Some(c) = pick(ConditionStatus::False).or_else(|| pick(ConditionStatus::Unknown)) {
        return condition(
            ConditionType::Ready,
            c.status,
            c.reason,
            format!("{}: {}", c.type_.as_str(), c.message),
        );
    }
    let ping_skipped = aspects.iter().any(|c| c.reason == Reason::PingSkipped);
    let message = if ping_skipped {
        "modules healthy, deployment in sync, report current (ping skipped)"
    } else {
        "reachable, modules healthy, deployment in sync, report current"
    };
    condition(
        ConditionType::Ready,
        ConditionStatus::True,
        Reason::Ready,
        message.to_owned(),
    )
}
