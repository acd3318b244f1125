//! `runner serve`: the HTTP API other services submit listings through.
//!
//! - `POST /v1/listings` (a profile as JSON) → `202` with the id and the
//!   Job's name; the Job runs on its own.
//! - `GET /v1/listings/{id}` → the newest Job of that listing: pending,
//!   running, succeeded or failed, the assessor's exit code and summary.
//! - `GET /healthz` → `200` while the server runs (no cluster call).
//!
//! The server keeps no state: the cluster is the record (each Job carries
//! its listing's label and id), so a restart loses nothing and two
//! replicas agree. Bodies are capped; every error is JSON
//! (`{"error": {"code", "message"}}`); SIGTERM stops accepting and drains
//! requests in flight for at most the drain timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::cluster::Cluster;
use crate::listing::Listing;
use crate::objects::MAX_CONFIG_MAP_BYTES;
use crate::status;
use crate::submit::{SubmitError, submit};
use crate::template::Template;

/// Request bodies above this are refused (413) before they are read whole:
/// nothing larger fits a ConfigMap anyway.
pub const MAX_BODY_BYTES: usize = MAX_CONFIG_MAP_BYTES;

/// What the handlers share.
#[derive(Clone)]
pub struct App {
    pub cluster: Cluster,
    pub template: Arc<Template>,
    pub namespace: String,
}

/// The API's routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/v1/listings", post(create_listing))
        .route("/v1/listings/{id}", get(listing_status))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route (POST /v1/listings, GET /v1/listings/{id}, GET /healthz)",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// Serves until `shutdown`, then drains for at most `drain`.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(app)).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("stopping: no new connections; draining requests in flight");
        let _ = stopping_tx.send(());
    });
    let deadline = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(drain).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        outcome = server => outcome,
        () = deadline => {
            tracing::warn!(drain_ms = drain.as_millis() as u64, "requests still in flight at the drain timeout; stopping anyway");
            Ok(())
        }
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message.into()}})),
    )
        .into_response()
}

async fn create_listing(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "listing_too_large",
                format!(
                    "the request body is over {MAX_BODY_BYTES} bytes, more than a ConfigMap holds"
                ),
            );
        }
        Err(rejection) => return error(rejection.status(), "bad_request", rejection.body_text()),
    };
    let listing = match Listing::from_json(&body, "request body") {
        Ok(listing) => listing,
        Err(problem) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_listing",
                problem.to_string(),
            );
        }
    };
    match submit(&app.cluster, &app.template, &listing, &app.namespace).await {
        Ok(submitted) => {
            tracing::info!(id = %submitted.id, job = %submitted.job, "listing submitted");
            (
                StatusCode::ACCEPTED,
                Json(json!({
                    "id": submitted.id,
                    "job": submitted.job,
                    "namespace": submitted.namespace,
                    "config_map": submitted.config_map,
                    "status_url": format!("/v1/listings/{}", percent_encode(&submitted.id)),
                })),
            )
                .into_response()
        }
        Err(SubmitError::TooLarge(too_large)) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "listing_too_large",
            too_large.to_string(),
        ),
        Err(problem) => {
            tracing::error!(id = %listing.id, error = %problem, "submitting a listing failed");
            error(
                StatusCode::BAD_GATEWAY,
                "cluster_error",
                problem.to_string(),
            )
        }
    }
}

async fn listing_status(State(app): State<App>, Path(id): Path<String>) -> Response {
    let found = status::of_listing(
        &app.cluster,
        &app.namespace,
        &id,
        &app.template.assessor_container,
    )
    .await;
    match found {
        Ok(Some(status)) => Json(status).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no Job for listing {id:?} in namespace {}", app.namespace),
        ),
        Err(problem) => error(
            StatusCode::BAD_GATEWAY,
            "cluster_error",
            problem.to_string(),
        ),
    }
}

/// Enough escaping for an id in a path segment.
fn percent_encode(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
