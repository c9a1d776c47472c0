//! Watch streams: newline-delimited `{"type","object"}` events from a resourceVersion, with
//! bookmarks, timeouts and 410 Expired reported in-stream as the real server does.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures::SinkExt;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::registry::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::server::{Call, SharedState, Target, metadata_view};
use super::store::{Change, ChangeKind};

pub(super) struct WatchRequest {
    rt: ResourceType,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    since: Option<u64>,
    bookmarks: bool,
    timeout: Option<Duration>,
    initial_events_end: bool,
    metadata_only: bool,
}

impl WatchRequest {
    pub(super) fn parse(call: &Call, target: &Target) -> Result<Self, ApiError> {
        let since =
            match call.param("resourceVersion") {
                None | Some("") | Some("0") => None,
                Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
            };
        let timeout = call
            .param("timeoutSeconds")
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {s:?}")))
            })
            .transpose()?
            .map(Duration::from_secs);
        let send_initial = call.flag("sendInitialEvents");
        Ok(Self {
            rt: target.rt.clone(),
            namespace: target.namespace.clone(),
            labels: LabelSelector::parse(call.param("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(call.param("fieldSelector").unwrap_or(""), &target.rt)?,
            since: if send_initial { None } else { since },
            bookmarks: call.flag("allowWatchBookmarks"),
            timeout,
            initial_events_end: send_initial,
            metadata_only: call.metadata_only,
        })
    }

    /// The event this watcher sees for `change`, if any. Like the real watch cache, a
    /// modification that moves an object into or out of the selectors is ADDED or DELETED.
    fn render(&self, change: &Change) -> Option<Bytes> {
        let same_resource = change.group == self.rt.group
            && change.plural == self.rt.plural
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| change.namespace == ns);
        if !same_resource {
            return None;
        }
        let selected = |object: &Value| self.labels.matches(object) && self.fields.matches(object);
        let now = selected(&change.object);
        let before = change.previous.as_ref().is_some_and(selected);
        let (kind, object) = match change.kind {
            ChangeKind::Modified if now && !before => ("ADDED", change.object.clone()),
            ChangeKind::Modified if !now && before => {
                let mut last = change.previous.clone().unwrap_or_default();
                last["metadata"]["resourceVersion"] =
                    change.object["metadata"]["resourceVersion"].clone();
                ("DELETED", last)
            }
            kind if now => (kind.as_str(), change.object.clone()),
            _ => return None,
        };
        let mut object = super::store::present(&object, &self.rt);
        if self.metadata_only {
            object = metadata_view(&object);
        }
        Some(line(&json!({"type": kind, "object": object})))
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(&json!({
            "type": "BOOKMARK",
            "object": {"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata},
        }))
    }
}

pub(super) fn line(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Answer 200 and stream newline-delimited watch events until timeout, shutdown or disconnect.
/// A resourceVersion older than the kept history yields one `ERROR` event carrying 410 Expired,
/// which is how the real server reports it on a watch.
pub(super) fn stream_watch(shared: &SharedState, watch: WatchRequest) -> Response {
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, Infallible>>(64);
    let started = {
        let store = shared.store.lock().expect("store lock");
        store
            .watch(&watch.rt, watch.since)
            .map(|start| (start, store.current_rv()))
    };
    let mut shutdown = shared.shutdown.clone();
    let bookmark_interval = shared.bookmark_interval;
    let store_for_bookmarks = shared.clone();
    tokio::spawn(async move {
        let (start, rv_at_start) = match started {
            Ok(started) => started,
            Err(error) => {
                let _ = tx
                    .send(Ok(line(
                        &json!({"type": "ERROR", "object": error.to_status()}),
                    )))
                    .await;
                return;
            }
        };
        let mut live = start.live;
        for event in start.backlog.iter().filter_map(|c| watch.render(c)) {
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
        }
        if watch.initial_events_end
            && tx
                .send(Ok(watch.bookmark(rv_at_start, true)))
                .await
                .is_err()
        {
            return;
        }
        let deadline = tokio::time::sleep(watch.timeout.unwrap_or(Duration::from_secs(1800)));
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(bookmark_interval);
        ticker.tick().await;
        loop {
            let outgoing = tokio::select! {
                received = live.recv() => match received {
                    Ok(change) => match watch.render(&change) {
                        Some(event) => event,
                        None => continue,
                    },
                    Err(RecvError::Lagged(_)) => line(&json!({"type": "ERROR", "object": ApiError::expired("watch fell behind").to_status()})),
                    Err(RecvError::Closed) => return,
                },
                _ = ticker.tick(), if watch.bookmarks => {
                    let rv = store_for_bookmarks.store.lock().expect("store lock").current_rv();
                    watch.bookmark(rv, false)
                }
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
            };
            if tx.send(Ok(outgoing)).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(rx))
        .expect("static response parts")
}
