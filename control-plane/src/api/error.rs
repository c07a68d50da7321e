//! API errors and their `metav1.Status` bodies, with the reasons, codes and message formats of
//! k8s.io/apimachinery `pkg/api/errors` (kubectl prints these verbatim, so the wording matters).

use std::fmt;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::store::StoreError;

/// A group and resource, printed as kubectl expects: `pods`, `deployments.apps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupResource {
    pub group: &'static str,
    pub resource: &'static str,
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// One field problem of an `Invalid` error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueDuplicate`, …
    pub reason: &'static str,
    /// The field path, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
    /// The full message, e.g. `Required value`, `Invalid value: "Web": …`.
    pub message: String,
}

impl Cause {
    pub fn required(field: impl Into<String>) -> Self {
        Cause {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".into(),
        }
    }

    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl fmt::Display) -> Self {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {}: {detail}", go_value(value)),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let list = supported
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        Cause {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!("Unsupported value: {}: supported values: {list}", go_value(value)),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        Cause {
            reason: "FieldValueDuplicate",
            field: field.into(),
            message: format!("Duplicate value: {}", go_value(value)),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Cause {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {}", detail.into()),
        }
    }

    /// Prefixes the field path, for causes found in a nested validator.
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// How upstream's field errors print a value: strings quoted, numbers bare.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Everything an API request can fail with. Each variant knows its HTTP code and `Status` reason.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The named object does not exist.
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: GroupResource, name: String },
    /// A create found the name taken.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: GroupResource, name: String },
    /// A write raced another one, or a precondition failed.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {detail}")]
    Conflict {
        resource: GroupResource,
        name: String,
        detail: String,
    },
    /// The object failed validation.
    #[error(
        "{kind}{} \"{name}\" is invalid: {}",
        group_suffix(group),
        causes_text(causes)
    )]
    Invalid {
        kind: &'static str,
        group: &'static str,
        name: String,
        causes: Vec<Cause>,
    },
    /// The request itself is malformed (body, selector, query).
    #[error("{0}")]
    BadRequest(String),
    /// The request is understood but refused (e.g. a terminating namespace).
    #[error("{0}")]
    Forbidden(String),
    /// No such API path, or the resource does not support the verb's path.
    #[error("the server could not find the requested resource")]
    NoRoute,
    /// The verb is not supported by the resource.
    #[error("{action} is not supported on resources of kind \"{resource}\"")]
    MethodNotSupported { action: String, resource: String },
    /// A watch resume point or continue token is older than the retained history.
    #[error("{0}")]
    Expired(String),
    /// The body's content type is not one the endpoint takes.
    #[error("the body of the request was in an unknown format - accepted media types include: {0}")]
    UnsupportedMediaType(String),
    /// The request body exceeded the size limit.
    #[error("the request body is too large: limit is {limit} bytes")]
    TooLarge { limit: usize },
    /// The request did not complete in time (e.g. a client trickling its body).
    #[error("{0}")]
    Timeout(String),
    /// No or a wrong bearer token.
    #[error("Unauthorized")]
    Unauthorized,
    /// A store or server failure; the detail is logged, not hidden.
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

fn group_suffix(group: &str) -> String {
    if group.is_empty() {
        String::new()
    } else {
        format!(".{group}")
    }
}

fn causes_text(causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    }
}

impl ApiError {
    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotSupported { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Expired(_) => StatusCode::GONE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `Status.reason` upstream uses for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotSupported { .. } => "MethodNotAllowed",
            ApiError::Expired(_) => "Expired",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::TooLarge { .. } => "RequestEntityTooLarge",
            ApiError::Timeout(_) => "Timeout",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let details = match self {
            ApiError::NotFound { resource, name }
            | ApiError::AlreadyExists { resource, name }
            | ApiError::Conflict { resource, name, .. } => {
                Some(json!({"name": name, "group": resource.group, "kind": resource.resource}))
            }
            ApiError::Invalid {
                kind,
                group,
                name,
                causes,
            } => Some(json!({
                "name": name,
                "group": group,
                "kind": kind,
                "causes": causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect::<Vec<_>>(),
            })),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }

    /// Maps a store failure on `resource`/`name` to its API error.
    pub fn from_store(e: StoreError, resource: GroupResource, name: &str) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::NotFound {
                resource,
                name: name.to_string(),
            },
            StoreError::AlreadyExists(_) => ApiError::AlreadyExists {
                resource,
                name: name.to_string(),
            },
            StoreError::Conflict { .. } => ApiError::Conflict {
                resource,
                name: name.to_string(),
                detail: OPTIMISTIC_LOCK.to_string(),
            },
            StoreError::Compacted { requested, compacted } => {
                ApiError::Expired(format!("too old resource version: {requested} ({compacted})"))
            }
            StoreError::Backend(e) => ApiError::Internal(e),
            StoreError::Closed => ApiError::Internal("the store is shutting down".into()),
        }
    }
}

/// Upstream's `OptimisticLockErrorMsg`.
pub const OPTIMISTIC_LOCK: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        if code.is_server_error() {
            tracing::error!(error = %self, "api request failed");
        }
        let mut response = (code, axum::Json(self.status())).into_response();
        response.extensions_mut().insert(ErrorReason(self.reason()));
        response
    }
}

/// Marks a response as an error response, for request logging.
#[derive(Clone, Copy, Debug)]
pub struct ErrorReason(pub &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENTS: GroupResource = GroupResource {
        group: "apps",
        resource: "deployments",
    };

    #[test]
    fn messages_match_upstream() {
        let e = ApiError::NotFound {
            resource: DEPLOYMENTS,
            name: "nope".into(),
        };
        assert_eq!(e.to_string(), "deployments.apps \"nope\" not found");
        let s = e.status();
        assert_eq!(
            (s["code"].as_u64(), s["reason"].as_str()),
            (Some(404), Some("NotFound"))
        );
        assert_eq!(s["details"]["kind"], "deployments");

        let pods = GroupResource {
            group: "",
            resource: "pods",
        };
        let e = ApiError::AlreadyExists {
            resource: pods,
            name: "web".into(),
        };
        assert_eq!(e.to_string(), "pods \"web\" already exists");

        let e = ApiError::Invalid {
            kind: "Deployment",
            group: "apps",
            name: "Web".into(),
            causes: vec![Cause::invalid(
                "metadata.name",
                &Value::from("Web"),
                "a lowercase RFC 1123 subdomain",
            )],
        };
        assert_eq!(
            e.to_string(),
            "Deployment.apps \"Web\" is invalid: metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain"
        );
        assert_eq!(e.status()["details"]["causes"][0]["field"], "metadata.name");
    }
}
