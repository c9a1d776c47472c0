//! Publishing planned Events through kube's Recorder (`events.k8s.io/v1`).

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::controller::decide::events::{EventSeverity, PlannedEvent};

/// Publishes `events` about the watch `regarding`; stops at the first API error so the
/// caller can count it (the remaining transitions are still visible in the status).
pub(crate) async fn publish_all(
    recorder: &Recorder,
    regarding: &ObjectReference,
    events: &[PlannedEvent],
) -> Result<usize, kube::Error> {
    for event in events {
        let mut reference = regarding.clone();
        reference.field_path = event.field_path();
        recorder.publish(&to_kube_event(event), &reference).await?;
    }
    Ok(events.len())
}

/// The Recorder's view of a planned Event.
pub(crate) fn to_kube_event(event: &PlannedEvent) -> Event {
    Event {
        type_: match event.severity {
            EventSeverity::Normal => EventType::Normal,
            EventSeverity::Warning => EventType::Warning,
        },
        reason: event.reason.as_str().to_owned(),
        note: Some(event.note.clone()),
        action: event.action.to_owned(),
        secondary: None,
    }
}
