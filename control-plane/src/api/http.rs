//! The HTTP face of the registry: resource URLs to registry calls, query parameters to options, bodies to
//! objects (JSON, YAML or Kubernetes protobuf) and results to responses (objects, lists, Tables, Status).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::ApiState;
use super::discovery::{self, Format};
use super::error::ApiError;
use super::objects::{
    DeleteOptions, Deleted, FieldValidation, ListOptions, Propagation, Subresource, WriteOptions,
};
use super::patch::PatchType;
use super::protobuf;
use super::resources::{self, ResourceType};
use super::selectors::{FieldSelector, LabelSelector};
use super::table;
use super::watch::{self, Rendering, WatchRequest};
use crate::telemetry::{RequestInfo, WatchGuard};

/// Upstream's request body limit (`MaxRequestBodyBytes`).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// How long a client may take to send its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a non-watch request may take in all (upstream `--request-timeout` default).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

const BODY_MEDIA_TYPES: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// What a resource URL names.
#[derive(Debug)]
enum Target {
    Collection {
        rt: &'static ResourceType,
        ns: Option<String>,
    },
    Object {
        rt: &'static ResourceType,
        ns: Option<String>,
        name: String,
    },
    Sub {
        rt: &'static ResourceType,
        ns: Option<String>,
        name: String,
        sub: Subresource,
        sub_name: &'static str,
    },
}

fn lookup(group: &str, version: &str, plural: &str) -> Result<&'static ResourceType, ApiError> {
    resources::find(group, version, plural).ok_or(ApiError::NoRoute)
}

/// Resolves the segments after `/api/v1` or `/apis/{group}/{version}`.
fn resolve(group: &str, version: &str, segments: &[&str]) -> Result<Target, ApiError> {
    let namespaced_collection = |ns: &str, plural: &str| -> Result<Target, ApiError> {
        let rt = lookup(group, version, plural)?;
        if !rt.namespaced {
            return Err(ApiError::NoRoute);
        }
        Ok(Target::Collection {
            rt,
            ns: Some(ns.to_string()),
        })
    };
    let sub = |rt: &'static ResourceType, name: &str| -> Result<(Subresource, &'static str), ApiError> {
        let sub = Subresource::parse(rt, name).ok_or(ApiError::NoRoute)?;
        let sub_name = match sub {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Finalize => "finalize",
            Subresource::Binding => "binding",
            Subresource::Log => "log",
            Subresource::Probes => "probes",
            Subresource::Decisions => "decisions",
        };
        Ok((sub, sub_name))
    };
    match segments {
        [plural] => Ok(Target::Collection {
            rt: lookup(group, version, plural)?,
            ns: None,
        }),
        [plural, name] => {
            let rt = lookup(group, version, plural)?;
            if rt.namespaced {
                return Err(ApiError::NoRoute);
            }
            Ok(Target::Object {
                rt,
                ns: None,
                name: name.to_string(),
            })
        }
        ["namespaces", ns, third] if resources::find(group, version, third).is_some_and(|r| r.namespaced) => {
            namespaced_collection(ns, third)
        }
        [plural, name, third] => {
            let rt = lookup(group, version, plural)?;
            if rt.namespaced {
                return Err(ApiError::NoRoute);
            }
            let (sub, sub_name) = sub(rt, third)?;
            Ok(Target::Sub {
                rt,
                ns: None,
                name: name.to_string(),
                sub,
                sub_name,
            })
        }
        ["namespaces", ns, plural, name] => {
            let Target::Collection { rt, ns } = namespaced_collection(ns, plural)? else {
                unreachable!()
            };
            Ok(Target::Object {
                rt,
                ns,
                name: name.to_string(),
            })
        }
        ["namespaces", ns, plural, name, third] => {
            let Target::Collection { rt, ns } = namespaced_collection(ns, plural)? else {
                unreachable!()
            };
            let (sub, sub_name) = sub(rt, third)?;
            Ok(Target::Sub {
                rt,
                ns,
                name: name.to_string(),
                sub,
                sub_name,
            })
        }
        _ => Err(ApiError::NoRoute),
    }
}

/// Serves everything under `/api` and `/apis`.
pub async fn serve(State(state): State<ApiState>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let accept = header_str(request.headers(), header::ACCEPT).to_string();
    let discovery_format = Format::from_accept(&accept);
    let discovery = |doc: Option<Value>, format: Format| match doc {
        Some(doc) => json_response(StatusCode::OK, &doc, format.content_type()),
        None => ApiError::NoRoute.into_response(),
    };
    match segments.as_slice() {
        ["api"] => {
            let root = discovery::root(true, discovery_format, &state.external_groups);
            return discovery(Some(root), discovery_format);
        }
        ["apis"] => {
            let root = discovery::root(false, discovery_format, &state.external_groups);
            return discovery(Some(root), discovery_format);
        }
        ["api", version] => return discovery(discovery::resource_list("", version), Format::Legacy),
        ["apis", group] => return discovery(discovery::group(group), Format::Legacy),
        ["apis", group, version] => {
            return discovery(discovery::resource_list(group, version), Format::Legacy);
        }
        _ => {}
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return ApiError::NoRoute.into_response(),
    };
    let target = match resolve(group, version, rest) {
        Ok(target) => target,
        Err(e) => return e.into_response(),
    };
    let query = Query::parse(request.uri().query());
    let info = request_info(&target, request.method(), query.is_watch());
    let is_watch = query.is_watch();
    // A span per request (exported when traces are on); watches are long-lived and get none.
    let span = tracing::info_span!(
        "api_request",
        verb = info.verb,
        group = info.group,
        resource = info.resource,
        subresource = info.subresource
    );
    let result = if is_watch {
        dispatch(&state, target, request, query, info).await
    } else {
        let dispatched =
            tracing::Instrument::instrument(dispatch(&state, target, request, query, info), span);
        match tokio::time::timeout(REQUEST_TIMEOUT, dispatched).await {
            Ok(result) => result,
            Err(_) => Err(ApiError::Timeout(format!(
                "the request did not complete within {}s",
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(info);
    response
}

fn request_info(target: &Target, method: &Method, watch: bool) -> RequestInfo {
    let (rt, ns, name, sub) = match target {
        Target::Collection { rt, ns } => (*rt, ns.is_some(), false, ""),
        Target::Object { rt, ns, .. } => (*rt, ns.is_some(), true, ""),
        Target::Sub { rt, ns, sub_name, .. } => (*rt, ns.is_some(), true, *sub_name),
    };
    let verb = match (method.as_str(), name) {
        ("GET", _) if watch => "WATCH",
        ("GET", false) => "LIST",
        ("GET", true) => "GET",
        ("POST", _) => "POST",
        ("PUT", _) => "PUT",
        ("PATCH", _) => "PATCH",
        ("DELETE", false) => "DELETECOLLECTION",
        ("DELETE", true) => "DELETE",
        _ => "OTHER",
    };
    let scope = if name {
        "resource"
    } else if ns {
        "namespace"
    } else {
        "cluster"
    };
    RequestInfo {
        verb,
        group: rt.group,
        version: rt.version,
        resource: rt.plural,
        subresource: sub,
        scope,
    }
}

/// The query parameters of a resource request.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `PodLogOptions` from the query.
    fn log_options(&self) -> Result<crate::node::logs::LogOptions, ApiError> {
        let number = |key: &str| -> Result<Option<i64>, ApiError> {
            match self.get(key) {
                None => Ok(None),
                Some(v) => v
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| ApiError::BadRequest(format!("invalid {key}: {v:?}"))),
            }
        };
        let positive = |key: &str| -> Result<Option<usize>, ApiError> {
            match number(key)? {
                Some(n) if n < 0 => Err(ApiError::Invalid {
                    kind: "PodLogOptions",
                    group: "",
                    name: String::new(),
                    causes: vec![super::error::Cause::invalid(
                        key.to_string(),
                        &serde_json::Value::from(n),
                        "must be greater than or equal to 0",
                    )],
                }),
                other => Ok(other.map(|n| n as usize)),
            }
        };
        let since = match (number("sinceSeconds")?, self.get("sinceTime")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::BadRequest(
                    "at most one of sinceTime or sinceSeconds may be specified".into(),
                ));
            }
            (Some(seconds), None) => {
                if seconds < 1 {
                    return Err(ApiError::BadRequest(
                        "sinceSeconds: must be greater than 0".into(),
                    ));
                }
                Some(
                    jiff::Timestamp::now()
                        .checked_sub(jiff::SignedDuration::from_secs(seconds))
                        .map_err(|_| {
                            ApiError::BadRequest(format!("sinceSeconds: {seconds} is too far back"))
                        })?,
                )
            }
            (None, Some(time)) => Some(
                time.parse::<jiff::Timestamp>()
                    .map_err(|_| ApiError::BadRequest(format!("invalid sinceTime: {time:?}")))?,
            ),
            (None, None) => None,
        };
        Ok(crate::node::logs::LogOptions {
            container: self.get("container").map(str::to_string),
            follow: self.flag("follow"),
            previous: self.flag("previous"),
            since,
            timestamps: self.flag("timestamps"),
            tail_lines: positive("tailLines")?,
            limit_bytes: match positive("limitBytes")? {
                Some(0) => {
                    return Err(ApiError::Invalid {
                        kind: "PodLogOptions",
                        group: "",
                        name: String::new(),
                        causes: vec![super::error::Cause::invalid(
                            "limitBytes".to_string(),
                            &serde_json::Value::from(0),
                            "must be greater than 0",
                        )],
                    });
                }
                other => other,
            },
        })
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn is_watch(&self) -> bool {
        self.flag("watch")
    }

    fn list_options(&self, rt: &ResourceType) -> Result<ListOptions, ApiError> {
        let kind = resources::storage_type(rt).kind;
        let limit = match self.get("limit") {
            Some(l) => l
                .parse::<i64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid limit: {l:?}")))?
                .max(0),
            None => 0,
        };
        Ok(ListOptions {
            labels: LabelSelector::parse(self.get("labelSelector").unwrap_or_default())?,
            fields: FieldSelector::parse(self.get("fieldSelector").unwrap_or_default(), kind)?,
            limit: limit as usize,
            continue_token: self.get("continue").filter(|c| !c.is_empty()).map(str::to_string),
        })
    }

    fn write_options(&self) -> Result<WriteOptions, ApiError> {
        let field_validation = match self.get("fieldValidation") {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                )));
            }
        };
        Ok(WriteOptions {
            field_validation,
            dry_run: self.dry_run()?,
            force: self.flag("force"),
        })
    }

    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            ))),
        }
    }

    fn resource_version(&self) -> Result<Option<u64>, ApiError> {
        match self.get("resourceVersion") {
            None | Some("") => Ok(None),
            Some(rv) => rv
                .parse()
                .map(Some)
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}"))),
        }
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn rendering(headers: &HeaderMap) -> Rendering {
    let accept = header_str(headers, header::ACCEPT);
    let first_with = |needle: &str| accept.split(',').any(|m| m.contains(needle));
    if first_with("as=Table") {
        Rendering::Table
    } else if first_with("as=PartialObjectMetadata") {
        Rendering::Metadata
    } else {
        Rendering::Object
    }
}

fn json_response(code: StatusCode, value: &Value, content_type: &'static str) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (code, [(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

fn object_response(code: StatusCode, object: Value, rt: &ResourceType, headers: &HeaderMap) -> Response {
    let body = match rendering(headers) {
        Rendering::Object => object,
        Rendering::Metadata => table::partial_metadata(&object),
        Rendering::Table => {
            let rv = object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            table::table(rt, &[object], rv, None, true)
        }
    };
    json_response(code, &body, "application/json")
}

/// Reads a request body within the size and time limits.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Err(_) => Err(ApiError::Timeout(format!(
            "the request body was not received within {}s",
            BODY_TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if too_large {
                Err(ApiError::TooLarge {
                    limit: MAX_BODY_BYTES,
                })
            } else {
                Err(ApiError::BadRequest(format!(
                    "the request body could not be read: {e}"
                )))
            }
        }
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// Decodes an object body by its content type.
pub fn decode_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    match essence {
        "" | "application/json" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body of the request could not be decoded as JSON: {e}"
            ))
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            serde_yaml::from_slice(body).map_err(|e| {
                ApiError::BadRequest(format!(
                    "the body of the request could not be decoded as YAML: {e}"
                ))
            })
        }
        "application/vnd.kubernetes.protobuf" => protobuf::decode(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body of the request could not be decoded as protobuf: {e}"
            ))
        }),
        _ => Err(ApiError::UnsupportedMediaType(BODY_MEDIA_TYPES.into())),
    }
}

async fn dispatch(
    state: &ApiState,
    target: Target,
    request: Request,
    query: Query,
    info: RequestInfo,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let method = parts.method;
    let headers = parts.headers;
    let content_type = header_str(&headers, header::CONTENT_TYPE).to_string();
    let objects = &state.objects;
    let not_supported = |rt: &ResourceType, action: &str| ApiError::MethodNotSupported {
        action: action.to_string(),
        resource: rt.plural.to_string(),
    };
    match (target, method) {
        (Target::Collection { rt, ns }, Method::GET) if query.is_watch() => {
            let request = WatchRequest {
                resource: rt,
                namespace: ns,
                selection: query.list_options(rt)?,
                resource_version: query.resource_version()?,
                send_initial_events: query.flag("sendInitialEvents"),
                bookmarks: query.flag("allowWatchBookmarks"),
                timeout: match query.get("timeoutSeconds") {
                    Some(t) => Duration::from_secs(
                        t.parse()
                            .map_err(|_| ApiError::BadRequest(format!("invalid timeoutSeconds: {t:?}")))?,
                    ),
                    None => watch::default_timeout(),
                },
                rendering: rendering(&headers),
            };
            let guard = WatchGuard::start(&state.metrics, info);
            let stream = watch::watch(objects.store().clone(), request, guard).await?;
            Ok((
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(stream),
            )
                .into_response())
        }
        (Target::Collection { rt, ns }, Method::GET) => {
            let list = objects.list(rt, ns.as_deref(), &query.list_options(rt)?).await?;
            let rv = list.revision.to_string();
            let body = match rendering(&headers) {
                Rendering::Table => table::table(rt, &list.items, Some(rv), list.continue_token, true),
                Rendering::Metadata => {
                    let items: Vec<Value> = list.items.iter().map(table::partial_metadata).collect();
                    list_body(
                        "PartialObjectMetadataList",
                        "meta.k8s.io/v1",
                        rv,
                        list.continue_token,
                        items,
                    )
                }
                Rendering::Object => list_body(
                    &format!("{}List", rt.kind),
                    &rt.api_version(),
                    rv,
                    list.continue_token,
                    list.items,
                ),
            };
            Ok(json_response(StatusCode::OK, &body, "application/json"))
        }
        (Target::Collection { rt, ns }, Method::POST) => {
            if rt.namespaced && ns.is_none() {
                return Err(not_supported(rt, "create"));
            }
            let object = decode_body(&content_type, &read_body(body).await?)?;
            let created = objects
                .create(rt, ns.as_deref(), object, &query.write_options()?)
                .await?;
            Ok(object_response(StatusCode::CREATED, created, rt, &headers))
        }
        (Target::Collection { rt, ns }, Method::DELETE) => {
            let opts = delete_options(&query, &content_type, &read_body(body).await?)?;
            let deleted = objects
                .delete_collection(rt, ns.as_deref(), &query.list_options(rt)?, &opts)
                .await?;
            let rv = objects
                .store()
                .current_revision()
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let body = list_body(
                &format!("{}List", rt.kind),
                &rt.api_version(),
                rv.to_string(),
                None,
                deleted,
            );
            Ok(json_response(StatusCode::OK, &body, "application/json"))
        }
        (Target::Object { rt, ns, name }, Method::GET) => {
            let object = objects.get(rt, ns.as_deref(), &name).await?;
            Ok(object_response(StatusCode::OK, object, rt, &headers))
        }
        (Target::Object { rt, ns, name }, Method::PUT) => {
            let object = decode_body(&content_type, &read_body(body).await?)?;
            let (updated, created) = objects
                .update(rt, ns.as_deref(), &name, None, object, &query.write_options()?)
                .await?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(object_response(code, updated, rt, &headers))
        }
        (Target::Object { rt, ns, name }, Method::PATCH) => {
            let patch_type = PatchType::from_content_type(&content_type)
                .ok_or_else(|| ApiError::UnsupportedMediaType(PatchType::ACCEPTED.into()))?;
            let body = read_body(body).await?;
            let (patched, created) = objects
                .patch(
                    rt,
                    ns.as_deref(),
                    &name,
                    None,
                    patch_type,
                    &body,
                    &query.write_options()?,
                )
                .await?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(object_response(code, patched, rt, &headers))
        }
        (Target::Object { rt, ns, name }, Method::DELETE) => {
            let opts = delete_options(&query, &content_type, &read_body(body).await?)?;
            match objects.delete(rt, ns.as_deref(), &name, &opts).await? {
                Deleted::Pending(object) => Ok(object_response(StatusCode::OK, object, rt, &headers)),
                Deleted::Gone(object) if rt.kind == "Pod" => {
                    Ok(object_response(StatusCode::OK, object, rt, &headers))
                }
                Deleted::Gone(object) => {
                    let status = json!({
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": {
                            "name": name,
                            "group": rt.group,
                            "kind": rt.plural,
                            "uid": object.pointer("/metadata/uid"),
                        },
                    });
                    Ok(json_response(StatusCode::OK, &status, "application/json"))
                }
            }
        }
        (
            Target::Sub {
                rt,
                ns,
                name,
                sub: Subresource::Log,
                ..
            },
            Method::GET,
        ) => {
            let pod = objects.get(rt, ns.as_deref(), &name).await?;
            let pod: k8s_openapi::api::core::v1::Pod =
                serde_json::from_value(pod).map_err(|e| ApiError::Internal(e.to_string()))?;
            let Some(logs) = &state.logs else {
                return Err(ApiError::BadRequest(format!(
                    "the logs of pod {name} are kept by its node's agent, which this server cannot read"
                )));
            };
            let lines = logs
                .stream(&pod, &query.log_options()?)
                .map_err(ApiError::BadRequest)?;
            let body = axum::body::Body::from_stream(futures::StreamExt::map(
                tokio_stream::wrappers::ReceiverStream::new(lines),
                Ok::<_, std::io::Error>,
            ));
            Ok(([(header::CONTENT_TYPE, "text/plain")], body).into_response())
        }
        (
            Target::Sub {
                rt,
                ns,
                name,
                sub: Subresource::Probes,
                ..
            },
            Method::GET,
        ) => {
            let pod = objects.get(rt, ns.as_deref(), &name).await?;
            let Some(history) = &state.probes else {
                return Err(ApiError::BadRequest(format!(
                    "the probes of pod {name} are run by its node's agent, which this server cannot read"
                )));
            };
            let uid = pod
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let view = serde_json::json!({
                "kind": "PodProbeHistory",
                "apiVersion": "v1",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "uid": uid,
                },
                "containers": history.pod(uid).containers,
            });
            Ok(json_response(StatusCode::OK, &view, "application/json"))
        }
        (
            Target::Sub {
                rt,
                ns,
                name,
                sub: Subresource::Decisions,
                ..
            },
            Method::GET,
        ) => {
            let hpa = objects.get(rt, ns.as_deref(), &name).await?;
            let uid = hpa
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let view = serde_json::json!({
                "kind": "HorizontalPodAutoscalerDecisions",
                "apiVersion": rt.api_version(),
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "uid": uid,
                },
                "decisions": state.hpa_decisions.of(uid),
            });
            Ok(json_response(StatusCode::OK, &view, "application/json"))
        }
        (
            Target::Sub {
                rt, ns, name, sub, ..
            },
            Method::GET,
        ) if !matches!(sub, Subresource::Finalize | Subresource::Binding) => {
            let view = match sub {
                Subresource::Scale => objects.get_scale(rt, ns.as_deref(), &name).await?,
                _ => objects.get(rt, ns.as_deref(), &name).await?,
            };
            Ok(json_response(StatusCode::OK, &view, "application/json"))
        }
        (
            Target::Sub {
                rt, ns, name, sub, ..
            },
            Method::PUT,
        ) if !matches!(
            sub,
            Subresource::Binding | Subresource::Log | Subresource::Probes | Subresource::Decisions
        ) =>
        {
            let object = decode_body(&content_type, &read_body(body).await?)?;
            let (updated, _) = objects
                .update(
                    rt,
                    ns.as_deref(),
                    &name,
                    Some(sub),
                    object,
                    &query.write_options()?,
                )
                .await?;
            Ok(json_response(StatusCode::OK, &updated, "application/json"))
        }
        (
            Target::Sub {
                rt, ns, name, sub, ..
            },
            Method::PATCH,
        ) if !matches!(
            sub,
            Subresource::Finalize
                | Subresource::Binding
                | Subresource::Log
                | Subresource::Probes
                | Subresource::Decisions
        ) =>
        {
            let patch_type = PatchType::from_content_type(&content_type)
                .ok_or_else(|| ApiError::UnsupportedMediaType(PatchType::ACCEPTED.into()))?;
            let body = read_body(body).await?;
            let (patched, _) = objects
                .patch(
                    rt,
                    ns.as_deref(),
                    &name,
                    Some(sub),
                    patch_type,
                    &body,
                    &query.write_options()?,
                )
                .await?;
            Ok(json_response(StatusCode::OK, &patched, "application/json"))
        }
        (
            Target::Sub {
                rt,
                ns: Some(ns),
                name,
                sub: Subresource::Binding,
                ..
            },
            Method::POST,
        ) => {
            let binding = decode_body(&content_type, &read_body(body).await?)?;
            let Some(node) = binding
                .pointer("/target/name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            else {
                return Err(ApiError::BadRequest(
                    "a Binding needs target.name, the node to bind to".into(),
                ));
            };
            objects.bind(rt, &ns, &name, node).await?;
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
            Ok(json_response(StatusCode::CREATED, &status, "application/json"))
        }
        (Target::Collection { rt, .. } | Target::Object { rt, .. } | Target::Sub { rt, .. }, method) => {
            Err(not_supported(rt, &method.as_str().to_lowercase()))
        }
    }
}

fn list_body(
    kind: &str,
    api_version: &str,
    rv: String,
    continue_token: Option<String>,
    items: Vec<Value>,
) -> Value {
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items})
}

/// `DeleteOptions` from the body (JSON or protobuf) and the query, the query winning.
fn delete_options(query: &Query, content_type: &str, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        decode_body(content_type, body)?
    };
    let field = |name: &str| from_body.get(name);
    let mut opts = DeleteOptions {
        propagation: field("propagationPolicy")
            .and_then(Value::as_str)
            .map(Propagation::parse)
            .transpose()?,
        grace_period_seconds: field("gracePeriodSeconds").and_then(Value::as_i64),
        precondition_uid: from_body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_resource_version: from_body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        dry_run: field("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All")),
    };
    if opts.propagation.is_none() && field("orphanDependents").and_then(Value::as_bool) == Some(true) {
        opts.propagation = Some(Propagation::Orphan);
    }
    if let Some(p) = query.get("propagationPolicy") {
        opts.propagation = Some(Propagation::parse(p)?);
    }
    if let Some(g) = query.get("gracePeriodSeconds") {
        opts.grace_period_seconds = Some(
            g.parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid gracePeriodSeconds: {g:?}")))?,
        );
    }
    opts.dry_run |= query.dry_run()?;
    Ok(opts)
}
