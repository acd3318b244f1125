//! The HTTP side: records each request, applies the injected faults, maps
//! the path to a kind, namespace and name, and answers in the API server's
//! wire format (objects, lists, `Status` for every error).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::select::{FieldSelector, LabelSelector};
use super::status::{self, ApiError, json_response};
use super::store::Kind;
use super::{RecordedRequest, Shared, controller, gc, lock, objects, watch};

/// Query parameters (the last of a repeated one wins).
pub type Query = BTreeMap<String, String>;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return ApiError::bad_request(format!("cannot read the body: {e}")).into_response();
        }
    };
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let raw_query = parts.uri.query().map(str::to_string);
    lock(&shared.requests).push(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: raw_query.clone(),
        content_type: content_type.clone(),
        body: serde_json::from_slice(&bytes).ok(),
    });
    {
        let mut faults = lock(&shared.faults);
        if faults.unavailable > 0 {
            faults.unavailable -= 1;
            return ApiError::new(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            )
            .into_response();
        }
    }
    let query: Query = url::form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let request = Call {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        content_type,
        body: bytes.to_vec(),
    };
    route(&shared, &request).unwrap_or_else(IntoResponse::into_response)
}

/// One request, read.
struct Call {
    method: Method,
    path: String,
    query: Query,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Call {
    fn flag(&self, name: &str) -> bool {
        matches!(self.query.get(name).map(String::as_str), Some("true" | "1"))
    }

    fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some_and(|v| v == "All")
    }

    fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))
    }
}

fn route(shared: &Arc<Shared>, call: &Call) -> Result<Response, ApiError> {
    let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    let (kind, namespace, rest) = match segments.as_slice() {
        ["version"] if call.method == Method::GET => {
            return Ok(json_response(200, &version()));
        }
        ["api", "v1", "namespaces", ns, "configmaps", rest @ ..] => (Kind::ConfigMap, *ns, rest),
        ["api", "v1", "namespaces", ns, "pods", rest @ ..] => (Kind::Pod, *ns, rest),
        ["apis", "batch", "v1", "namespaces", ns, "jobs", rest @ ..] => (Kind::Job, *ns, rest),
        _ => return Err(not_found_path()),
    };
    if namespace.is_empty() {
        return Err(not_found_path());
    }
    let name = match rest {
        [] => None,
        [name] if !name.is_empty() => Some(*name),
        _ => return Err(not_found_path()),
    };
    let managed = kind != Kind::Pod;
    match (&call.method, name) {
        (&Method::GET, None) if call.flag("watch") => {
            watch::watch(shared, kind, namespace, &call.query)
        }
        (&Method::GET, None) => list(shared, kind, namespace, &call.query),
        (&Method::POST, None) if managed => create(shared, kind, namespace, call),
        (&Method::DELETE, None) if managed => delete_collection(shared, kind, namespace, call),
        (&Method::GET, Some(name)) => get(shared, kind, namespace, name),
        (&Method::PATCH, Some(name)) => patch(shared, kind, namespace, name, call),
        (&Method::DELETE, Some(name)) if managed => delete(shared, kind, namespace, name, call),
        (method, _) => Err(ApiError::method_not_allowed(method.as_str(), &call.path)),
    }
}

fn not_found_path() -> ApiError {
    let mut error = ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    error.details = Some(json!({}));
    error
}

/// A plausible `/version`.
fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn selectors(kind: Kind, query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(
        query
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(
        query
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
        kind,
    )
    .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

/// Accepts `limit` and `continue` but answers everything in one page
/// (no continue token), which clients must accept.
fn list(shared: &Shared, kind: Kind, namespace: &str, query: &Query) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(kind, query)?;
    if let Some(limit) = query.get("limit") {
        limit
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {limit:?}")))?;
    }
    let store = shared.store();
    let items: Vec<Value> = store
        .list(kind, namespace)
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    Ok(json_response(
        200,
        &list_of(kind, store.resource_version(), items),
    ))
}

pub fn list_of(kind: Kind, resource_version: u64, items: Vec<Value>) -> Value {
    json!({
        "apiVersion": kind.api_version(),
        "kind": format!("{}List", kind.name()),
        "metadata": {"resourceVersion": resource_version.to_string()},
        "items": items,
    })
}

fn get(shared: &Shared, kind: Kind, namespace: &str, name: &str) -> Result<Response, ApiError> {
    let store = shared.store();
    let object = store
        .get(kind, namespace, name)
        .ok_or_else(|| ApiError::not_found(kind, name))?;
    Ok(json_response(200, object))
}

fn create(
    shared: &Arc<Shared>,
    kind: Kind,
    namespace: &str,
    call: &Call,
) -> Result<Response, ApiError> {
    if kind == Kind::Job {
        if let Some(refusal) = lock(&shared.faults).refuse_jobs.clone() {
            return Err(refusal);
        }
    }
    let object = objects::admit(kind, namespace, call.json()?)?;
    if call.dry_run() {
        return Ok(json_response(201, &object));
    }
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let stored = shared
        .store()
        .insert(kind, namespace, object)
        .ok_or_else(|| ApiError::already_exists(kind, &name))?;
    if kind == Kind::Job {
        controller::start(shared, namespace, &stored);
    }
    let lose = {
        let mut faults = lock(&shared.faults);
        let lose = faults.lose_creation_answers > 0;
        faults.lose_creation_answers = faults.lose_creation_answers.saturating_sub(1);
        lose
    };
    if lose {
        return Ok(broken_response());
    }
    Ok(json_response(201, &stored))
}

/// A 201 whose body fails after the headers: hyper then closes the
/// connection, and the client sees an incomplete message.
fn broken_response() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("connection lost"))
    });
    Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(failing))
        .unwrap_or_default()
}

/// Merge patches (`application/merge-patch+json`; a strategic merge patch
/// is taken as one too, which differs only for lists with merge keys).
fn patch(
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    name: &str,
    call: &Call,
) -> Result<Response, ApiError> {
    if kind == Kind::ConfigMap {
        if let Some(refusal) = lock(&shared.faults).refuse_config_map_patches.clone() {
            return Err(refusal);
        }
    }
    let media = call
        .content_type
        .as_deref()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    if !matches!(
        media,
        "application/merge-patch+json" | "application/strategic-merge-patch+json"
    ) {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (got {media:?})"
            ),
        ));
    }
    let change = call.json()?;
    let mut store = shared.store();
    let current = store
        .get(kind, namespace, name)
        .ok_or_else(|| ApiError::not_found(kind, name))?
        .clone();
    let patched = objects::patch(kind, &current, &change)?;
    if call.dry_run() {
        return Ok(json_response(200, &patched));
    }
    let stored = store
        .update(kind, namespace, name, |object| *object = patched)
        .ok_or_else(|| ApiError::not_found(kind, name))?;
    Ok(json_response(200, &stored))
}

/// DeleteOptions, from the body (as kube sends them) or the query.
struct DeleteOptions {
    policy: gc::Policy,
    dry_run: bool,
    uid: Option<String>,
    resource_version: Option<String>,
}

fn delete_options(kind: Kind, call: &Call) -> Result<DeleteOptions, ApiError> {
    let body = if call.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        call.json()?
    };
    let policy = body["propagationPolicy"]
        .as_str()
        .map(str::to_string)
        .or_else(|| call.query.get("propagationPolicy").cloned());
    let policy = match policy.as_deref() {
        Some("Background") => gc::Policy::Background,
        Some("Foreground") => gc::Policy::Foreground,
        Some("Orphan") => gc::Policy::Orphan,
        // batch/v1 Jobs orphan their pods by default; the rest do not.
        None if kind == Kind::Job => gc::Policy::Orphan,
        None => gc::Policy::Background,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy {other:?} is not one of Orphan, Background, Foreground"
            )));
        }
    };
    let dry_run = call.dry_run()
        || body["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        policy,
        dry_run,
        uid: body["preconditions"]["uid"].as_str().map(str::to_string),
        resource_version: body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
    })
}

fn delete(
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    name: &str,
    call: &Call,
) -> Result<Response, ApiError> {
    let options = delete_options(kind, call)?;
    let current = shared
        .store()
        .get(kind, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(kind, name))?;
    let metadata = &current["metadata"];
    if options
        .uid
        .as_deref()
        .is_some_and(|uid| metadata["uid"] != uid)
    {
        return Err(ApiError::conflict(
            kind,
            name,
            "Precondition failed: UID in precondition does not match the UID of the object",
        ));
    }
    if options
        .resource_version
        .as_deref()
        .is_some_and(|rv| metadata["resourceVersion"] != rv)
    {
        return Err(ApiError::conflict(
            kind,
            name,
            "Precondition failed: the ResourceVersion in the precondition does not match the ResourceVersion in record",
        ));
    }
    if options.dry_run {
        return Ok(json_response(200, &status::deleted(kind, &current)));
    }
    let removed = gc::delete(shared, kind, namespace, name, options.policy)
        .ok_or_else(|| ApiError::not_found(kind, name))?;
    Ok(json_response(200, &status::deleted(kind, &removed)))
}

fn delete_collection(
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    call: &Call,
) -> Result<Response, ApiError> {
    let options = delete_options(kind, call)?;
    let (labels, fields) = selectors(kind, &call.query)?;
    let chosen: Vec<Value> = shared
        .store()
        .list(kind, namespace)
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    let mut removed = Vec::new();
    for object in chosen {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        if options.dry_run {
            removed.push(object.clone());
        } else if let Some(gone) = gc::delete(shared, kind, namespace, name, options.policy) {
            removed.push(gone);
        }
    }
    let rv = shared.store().resource_version();
    Ok(json_response(200, &list_of(kind, rv, removed)))
}
