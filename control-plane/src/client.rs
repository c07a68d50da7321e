//! A `kube::Client` that talks to the API router in the same process, without a socket: controllers use
//! it exactly as they would a real cluster's API.

use axum::Router;
use axum::http::{HeaderValue, Request, header};

/// A client for `router`, authenticating with `token`.
pub fn in_process(router: Router, token: &str) -> kube::Client {
    let auth =
        HeaderValue::from_str(&format!("Bearer {token}")).expect("a generated token is a valid header value");
    let service = tower::ServiceBuilder::new()
        .map_request(move |mut request: Request<kube::client::Body>| {
            request.headers_mut().insert(header::AUTHORIZATION, auth.clone());
            request.map(axum::body::Body::new)
        })
        .service(router);
    kube::Client::new(service, "default")
}
