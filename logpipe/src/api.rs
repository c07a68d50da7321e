//! The search API (served by the API server under `/logs`, behind its token):
//! `GET /logs/v1/search?query=Q&start=T&end=T&limit=N&cursor=C` → `{"hits": [...], "nextCursor", "total"}`,
//! times in RFC 3339, newest first. A bad query or parameter is a 400 with the reason.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::index::LogIndex;
use crate::index::search::{SearchError, SearchRequest};

/// The default page size.
const DEFAULT_LIMIT: usize = 100;

pub fn router(index: LogIndex) -> Router {
    Router::new().route("/v1/search", get(search)).with_state(index)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    query: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({"error": message})),
    )
        .into_response()
}

fn time(name: &str, value: Option<&str>) -> Result<Option<jiff::Timestamp>, String> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not an RFC 3339 time"))
        })
        .transpose()
}

async fn search(
    State(index): State<LogIndex>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = match params {
        Ok(Query(params)) => params,
        Err(e) => return bad_request(e.body_text()),
    };
    let request = (|| -> Result<SearchRequest, String> {
        Ok(SearchRequest {
            query: params.query.clone().unwrap_or_default(),
            start: time("start", params.start.as_deref())?,
            end: time("end", params.end.as_deref())?,
            limit: match params.limit.as_deref() {
                None | Some("") => DEFAULT_LIMIT,
                Some(v) => v.parse().map_err(|_| format!("limit: {v:?} is not a number"))?,
            },
            cursor: params.cursor.clone().filter(|c| !c.is_empty()),
        })
    })();
    let request = match request {
        Ok(request) => request,
        Err(message) => return bad_request(message),
    };
    let result = tokio::task::spawn_blocking(move || index.search(&request)).await;
    match result {
        Ok(Ok(response)) => Json(response).into_response(),
        Ok(Err(SearchError::Index(e))) => {
            tracing::error!(error = %e, "log search failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({"error": e.to_string()})),
            )
                .into_response()
        }
        Ok(Err(e)) => bad_request(e.to_string()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
