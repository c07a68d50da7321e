//! The web UI, served at `/ui/` by the API server: the log search page and the probe history page
//! (`probes.html`), static files embedded in the binary (`logpipe/ui/`, no build step). The pages are
//! not secret; they ask for the API token and call the search API and the Kubernetes API with it.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../ui/index.html");
const APP: &str = include_str!("../ui/app.js");
const COMMON: &str = include_str!("../ui/common.js");
const PROBES_PAGE: &str = include_str!("../ui/probes.html");
const PROBES: &str = include_str!("../ui/probes.js");
const STYLE: &str = include_str!("../ui/style.css");

pub fn router() -> Router {
    let file = |content_type: &'static str, body: &'static str| {
        move || async move {
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                body,
            )
                .into_response()
        }
    };
    Router::new()
        .route("/", get(file("text/html; charset=utf-8", INDEX)))
        .route("/index.html", get(file("text/html; charset=utf-8", INDEX)))
        .route("/app.js", get(file("text/javascript; charset=utf-8", APP)))
        .route("/common.js", get(file("text/javascript; charset=utf-8", COMMON)))
        .route("/probes.html", get(file("text/html; charset=utf-8", PROBES_PAGE)))
        .route("/probes.js", get(file("text/javascript; charset=utf-8", PROBES)))
        .route("/style.css", get(file("text/css; charset=utf-8", STYLE)))
}
