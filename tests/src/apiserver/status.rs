//! `Status` objects: how the API server says no (and, for deletions, yes).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::store::Kind;

/// A refusal, answered as a `Status` with its HTTP code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn not_found(kind: Kind, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", kind.resource()),
        )
        .with_details(kind, name)
    }

    pub fn already_exists(kind: Kind, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", kind.resource()),
        )
        .with_details(kind, name)
    }

    pub fn conflict(kind: Kind, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                kind.resource()
            ),
        )
        .with_details(kind, name)
    }

    /// 422: `field` of the object is wrong.
    pub fn invalid(kind: Kind, name: &str, field: &str, why: &str) -> ApiError {
        let mut error = ApiError::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {field}: {why}", kind.qualified()),
        );
        error.details = Some(json!({
            "name": name,
            "group": group(kind),
            "kind": kind.resource().split('.').next().unwrap_or_default(),
            "causes": [{"reason": "FieldValueInvalid", "message": why, "field": field}],
        }));
        error
    }

    pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method on the requested resource ({method} {path})"
            ),
        )
    }

    fn with_details(mut self, kind: Kind, name: &str) -> ApiError {
        self.details = Some(json!({
            "name": name,
            "group": group(kind),
            "kind": kind.resource().split('.').next().unwrap_or_default(),
        }));
        self
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.code, &self.status())
    }
}

/// The `Status` of a deletion done at once.
pub fn deleted(kind: Kind, object: &Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": object["metadata"]["name"],
            "group": group(kind),
            "kind": kind.resource().split('.').next().unwrap_or_default(),
            "uid": object["metadata"]["uid"],
        },
    })
}

fn group(kind: Kind) -> &'static str {
    match kind {
        Kind::Job => "batch",
        Kind::ConfigMap | Kind::Pod => "",
    }
}

/// A JSON answer with `code`.
pub fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}
