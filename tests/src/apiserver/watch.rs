//! Watches: a streamed `application/json` body, one event per line
//! (`{"type":"ADDED","object":{...}}`), replaying the history after the
//! request's `resourceVersion` and then following live changes, until
//! `timeoutSeconds` (at most [`MAX_TIMEOUT`]) or the server stops.
//!
//! As on a real server: no resourceVersion (or `0`) starts with an ADDED
//! event per current object; a resourceVersion older than the history
//! answers 200 with one ERROR event carrying a 410 Expired `Status` (what
//! makes kube's watcher re-list; an HTTP 410 would make it retry the same
//! resourceVersion forever); with `allowWatchBookmarks=true` a BOOKMARK
//! with the latest resourceVersion closes the stream; a change that moves
//! an object into or out of the selectors reads as ADDED or DELETED.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::Shared;
use super::routes::{Query, selectors};
use super::select::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Change, EventType, Kind};

/// The longest a watch stays open.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Which changes a watch sees.
struct Filter {
    kind: Kind,
    namespace: String,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }

    /// The event line for `change`, if this watch sees it.
    fn render(&self, change: &Change) -> Option<Bytes> {
        if change.kind != self.kind || change.namespace != self.namespace {
            return None;
        }
        let now = self.matches(&change.object);
        let before = change.previous.as_ref().map(|p| self.matches(p));
        let event = match (change.event, before, now) {
            (EventType::Added, _, true) => EventType::Added,
            (EventType::Deleted, _, true) => EventType::Deleted,
            (EventType::Modified, Some(true), true) => EventType::Modified,
            (EventType::Modified, Some(false), true) => EventType::Added,
            (EventType::Modified, Some(true), false) => EventType::Deleted,
            _ => return None,
        };
        Some(line(event.as_str(), &change.object))
    }
}

fn line(event: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": event, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn bookmark(kind: Kind, resource_version: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": kind.name(), "apiVersion": kind.api_version(), "metadata": metadata}),
    )
}

/// Answers a watch request.
pub fn watch(
    shared: &Arc<Shared>,
    kind: Kind,
    namespace: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(kind, query)?;
    let timeout = match query.get("timeoutSeconds") {
        None => MAX_TIMEOUT,
        Some(text) => {
            let seconds: u64 = text
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {text:?}")))?;
            if seconds == 0 {
                MAX_TIMEOUT
            } else {
                Duration::from_secs(seconds).min(MAX_TIMEOUT)
            }
        }
    };
    let flag = |name: &str| matches!(query.get(name).map(String::as_str), Some("true" | "1"));
    let bookmarks = flag("allowWatchBookmarks");
    let initial_events = flag("sendInitialEvents");
    let since = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {text:?}")))?,
        ),
    };
    let filter = Filter {
        kind,
        namespace: namespace.to_string(),
        labels,
        fields,
    };
    let mut pending = VecDeque::new();
    let store = shared.store();
    let current = |pending: &mut VecDeque<Bytes>| {
        for object in store.list(kind, namespace) {
            if filter.matches(&object) {
                pending.push_back(line("ADDED", &object));
            }
        }
    };
    let changes = match since {
        None => {
            current(&mut pending);
            if initial_events && bookmarks {
                pending.push_back(bookmark(kind, store.resource_version(), true));
            }
            store.subscribe()
        }
        Some(rv) => match store.since(rv) {
            Ok((history, changes)) => {
                if initial_events {
                    current(&mut pending);
                    if bookmarks {
                        pending.push_back(bookmark(kind, store.resource_version(), true));
                    }
                } else {
                    pending.extend(history.iter().filter_map(|c| filter.render(c)));
                }
                changes
            }
            Err(expired) => {
                let status = ApiError::new(
                    410,
                    "Expired",
                    format!("too old resource version: {rv} ({})", expired.oldest),
                )
                .status();
                return Ok(stream_response(Body::from(line("ERROR", &status))));
            }
        },
    };
    let last = store.resource_version();
    drop(store);
    let state = Watching {
        pending,
        changes,
        filter,
        deadline: Instant::now() + timeout,
        bookmarks,
        last,
        stop: shared.stop.subscribe(),
        closing: false,
    };
    Ok(stream_response(Body::from_stream(
        futures_util::stream::unfold(state, next_line),
    )))
}

fn stream_response(body: Body) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body)
        .unwrap_or_default()
}

/// An open watch.
struct Watching {
    pending: VecDeque<Bytes>,
    changes: broadcast::Receiver<Arc<Change>>,
    filter: Filter,
    deadline: Instant,
    bookmarks: bool,
    /// The latest resourceVersion this watch has seen (any change).
    last: u64,
    stop: tokio::sync::watch::Receiver<u64>,
    /// Only the pending lines are left to send.
    closing: bool,
}

async fn next_line(mut state: Watching) -> Option<(Result<Bytes, Infallible>, Watching)> {
    loop {
        if let Some(line) = state.pending.pop_front() {
            return Some((Ok(line), state));
        }
        if state.closing {
            return None;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(state.deadline) => {
                state.closing = true;
                if state.bookmarks {
                    state.pending.push_back(bookmark(state.filter.kind, state.last, false));
                }
            }
            _ = state.stop.changed() => return None,
            received = state.changes.recv() => match received {
                Ok(change) => {
                    state.last = change.resource_version;
                    if let Some(line) = state.filter.render(&change) {
                        state.pending.push_back(line);
                    }
                }
                // Fell behind, or the server is gone: end the stream; the
                // client resumes from the last resourceVersion it saw.
                Err(RecvError::Lagged(_) | RecvError::Closed) => state.closing = true,
            },
        }
    }
}
