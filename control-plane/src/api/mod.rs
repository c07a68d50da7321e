//! The Kubernetes-compatible API server: routes, the layers every request passes through, and the state
//! they share. Resource semantics live in [`objects`]; HTTP translation in [`http`].

pub mod conversion;
pub mod defaults;
pub mod discovery;
pub mod error;
pub mod http;
pub mod objects;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod selectors;
pub mod strategic_merge;
pub mod table;
pub mod validation;
pub mod watch;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::store::Store;
use crate::telemetry::{ApiMetrics, RequestCompleted, RequestInfo};
use error::ApiError;
use objects::Objects;

/// What every API handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub objects: Objects,
    pub metrics: ApiMetrics,
    /// The bearer token every API request must carry.
    pub token: Arc<str>,
    /// The node's container logs, for `pods/log` (in `up` mode the agent's files are local).
    pub logs: Option<crate::node::logs::LogFiles>,
    /// The probe history of the node's agent, for `pods/probes` (in `up` mode).
    pub probes: Option<Arc<probe_engine::history::History>>,
    /// The HPA controller's explained decisions, for `horizontalpodautoscalers/decisions`.
    pub hpa_decisions: Arc<crate::controllers::hpa::decisions::Decisions>,
    /// Groups other components serve (through `extra_routes`), listed in discovery.
    pub external_groups: Vec<discovery::ExternalGroup>,
    /// Other APIs served behind the same token (the log search API), by path prefix.
    pub extra_routes: Vec<(&'static str, Router)>,
    /// Pages served without the token (the log search page, which asks for it), by path prefix.
    pub public_routes: Vec<(&'static str, Router)>,
}

impl ApiState {
    pub fn new(store: Arc<dyn Store>, metrics: ApiMetrics, token: &str) -> Self {
        ApiState {
            objects: Objects::new(store),
            metrics,
            token: token.into(),
            logs: None,
            probes: None,
            hpa_decisions: Arc::default(),
            external_groups: Vec::new(),
            extra_routes: Vec::new(),
            public_routes: Vec::new(),
        }
    }
}

/// The API router: health endpoints open, everything else behind the token.
pub fn router(state: ApiState) -> Router {
    let mut protected = Router::new();
    for (prefix, routes) in &state.extra_routes {
        protected = protected.nest_service(prefix, routes.clone());
    }
    let protected = protected
        .route("/version", get(|| async { axum::Json(discovery::version()) }))
        .route("/openapi/v3", get(|| async { axum::Json(openapi::index()) }))
        .route("/openapi/v3/{*path}", get(openapi_document))
        .route("/api", axum::routing::any(http::serve))
        .route("/api/{*rest}", axum::routing::any(http::serve))
        .route("/apis", axum::routing::any(http::serve))
        .route("/apis/{*rest}", axum::routing::any(http::serve))
        .fallback(|| async { ApiError::NoRoute })
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let mut open = Router::new();
    for (prefix, routes) in &state.public_routes {
        open = open.nest_service(prefix, routes.clone());
    }
    open.route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(health))
        .merge(protected)
        .with_state(state.clone())
        // Outermost: every request is counted and timed, auth failures included.
        .layer(middleware::from_fn_with_state(state, observe))
}

async fn openapi_document(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    match openapi::document(&path) {
        Some(doc) => axum::Json(doc).into_response(),
        None => ApiError::NoRoute.into_response(),
    }
}

async fn health() -> &'static str {
    "ok"
}

/// Rejects requests without the bearer token (401 with a Status body, as upstream).
async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), state.token.as_bytes()) => next.run(request).await,
        _ => {
            let mut response = ApiError::Unauthorized.into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Records every request's outcome in the request metrics and the log.
async fn observe(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path().to_string(), ToString::to_string);
    let response = next.run(request).await;
    let info = response
        .extensions()
        .get::<RequestInfo>()
        .copied()
        .unwrap_or_default();
    RequestCompleted {
        info,
        method: &method,
        path: &path,
        code: response.status().as_u16(),
        elapsed: started.elapsed(),
    }
    .emit(&state.metrics);
    response
}
