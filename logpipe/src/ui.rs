//! The log search web page, served at `/ui/` by the API server: static files embedded in the binary
//! (`logpipe/ui/`, no build step). The page itself is not secret; it asks for the API token and calls the
//! search API with it.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../ui/index.html");
const APP: &str = include_str!("../ui/app.js");
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
        .route("/style.css", get(file("text/css; charset=utf-8", STYLE)))
}
