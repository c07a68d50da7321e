//! The search API (served by the API server under `/logs`, behind its token):
//! `GET /logs/v1/search?query=Q&start=T&end=T&limit=N&cursor=C` → `{"hits": [...], "nextCursor", "total"}`,
//! times in RFC 3339, newest first, each hit with the byte ranges of its message that match (`highlights`); `GET /logs/v1/histogram?query&start&end&interval` (interval like `10s`,
//! `1m`; start and end default to the last hour) → `{"interval", "buckets": [{"start", "count"}]}`;
//! `GET /logs/v1/fields/{field}?query&start&end&limit` → `{"field", "values": [{"value", "count"}]}`;
//! `GET /logs/v1/tail?query` → server-sent events, one `line` event per new matching line, as it is
//! committed. A bad query or parameter is a 400 with the reason.

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
    Router::new()
        .route("/v1/search", get(search))
        .route("/v1/histogram", get(histogram))
        .route("/v1/fields/{field}", get(fields))
        .route("/v1/tail", get(tail))
        .with_state(index)
}

/// How often the live tail looks for new lines (commits come every second).
const TAIL_POLL: std::time::Duration = std::time::Duration::from_millis(250);

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeParams {
    query: Option<String>,
    start: Option<String>,
    end: Option<String>,
    interval: Option<String>,
    limit: Option<String>,
}

impl RangeParams {
    /// The request of a count over a time range; the range defaults to the last hour.
    fn request(&self) -> Result<SearchRequest, String> {
        let end = time("end", self.end.as_deref())?.unwrap_or_else(jiff::Timestamp::now);
        let start = match time("start", self.start.as_deref())? {
            Some(start) => start,
            None => end
                .checked_sub(jiff::SignedDuration::from_hours(1))
                .map_err(|e| format!("end: {e}"))?,
        };
        Ok(SearchRequest {
            query: self.query.clone().unwrap_or_default(),
            start: Some(start),
            end: Some(end),
            limit: 1,
            cursor: None,
        })
    }
}

/// The parameters of a count over a time range and the request they make, or the 400 they deserve.
#[allow(clippy::result_large_err)]
fn ranged(
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<(RangeParams, SearchRequest), Response> {
    let Query(params) = params.map_err(|e| bad_request(e.body_text()))?;
    let request = params.request().map_err(bad_request)?;
    Ok((params, request))
}

async fn run<T: serde::Serialize + Send + 'static>(
    job: impl FnOnce() -> Result<T, SearchError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(job).await {
        Ok(Ok(value)) => Json(value).into_response(),
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

async fn histogram(
    State(index): State<LogIndex>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (params, request) = match ranged(params) {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let text = params.interval.clone().unwrap_or_else(|| "1m".into());
    let interval = match text
        .parse::<jiff::SignedDuration>()
        .ok()
        .and_then(|d| std::time::Duration::try_from(d).ok())
    {
        Some(interval) => interval,
        None => return bad_request(format!("interval: {text:?} is not a duration such as 10s or 1m")),
    };
    run(move || {
        let buckets = index.histogram(&request, interval)?;
        Ok(serde_json::json!({"interval": text, "buckets": buckets}))
    })
    .await
}

async fn fields(
    State(index): State<LogIndex>,
    axum::extract::Path(field): axum::extract::Path<String>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (params, request) = match ranged(params) {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let size = match params.limit.as_deref().map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return bad_request("limit must be between 1 and 1000".into()),
    };
    run(move || {
        let values = index.top_values(&request, &field, size)?;
        Ok(serde_json::json!({"field": field, "values": values}))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TailParams {
    query: Option<String>,
}

async fn tail(
    State(index): State<LogIndex>,
    params: Result<Query<TailParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let query = match params {
        Ok(Query(params)) => params.query.unwrap_or_default(),
        Err(e) => return bad_request(e.body_text()),
    };
    // The query is checked before the stream starts, so a bad one is a 400, not a broken stream.
    let start = {
        let (index, query) = (index.clone(), query.clone());
        tokio::task::spawn_blocking(move || {
            index.after(&query, Some(u64::MAX), 1).map(|_| index.newest_seq())
        })
        .await
    };
    let mut last = match start {
        Ok(Ok(last)) => last,
        Ok(Err(e)) => return bad_request(e.to_string()),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        loop {
            let (index, query) = (index.clone(), query.clone());
            let found = tokio::task::spawn_blocking(move || index.after(&query, last, 500)).await;
            let Ok(Ok(lines)) = found else { return };
            for (line, seq) in lines {
                last = Some(seq);
                let event = Event::default()
                    .event("line")
                    .json_data(&line)
                    .unwrap_or_default();
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(TAIL_POLL) => {}
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
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
    run(move || index.search(&request)).await
}
