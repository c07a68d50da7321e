//! OpenAPI v3 documents, generated from the same `k8s-openapi` types the server decodes into.
//!
//! kubectl reads them for two things: whether a kind's PATCH operation takes `fieldValidation` (if so it
//! leaves validation to the server and sends `fieldValidation=Strict`), and `kubectl explain`. So each
//! group-version document carries the kinds' schemas with their `x-kubernetes-group-version-kind`, and
//! every operation of every served path with its parameters. Documents are built once and cached.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::resources::{self, ResourceType};

/// `/openapi/v3`: where each group-version's document is.
pub fn index() -> Value {
    let paths: Map<String, Value> = documents()
        .iter()
        .map(|(path, (_, hash))| {
            (
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            )
        })
        .collect();
    json!({"paths": paths})
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Every group-version's document with the hash of its content: kubectl caches documents by the hash in
/// the index, so a changed document must change its hash.
fn documents() -> &'static BTreeMap<String, (Value, String)> {
    static DOCUMENTS: OnceLock<BTreeMap<String, (Value, String)>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        resources::group_versions()
            .into_iter()
            .map(|(group, version)| {
                let document = build(group, version);
                let hash = fnv1a(document.to_string().as_bytes());
                (gv_path(group, version), (document, format!("{hash:016X}")))
            })
            .collect()
    })
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}`.
pub fn document(path: &str) -> Option<&'static Value> {
    documents()
        .get(path.trim_matches('/'))
        .map(|(document, _)| document)
}

/// Registers the schema of a served kind and returns its schema name.
fn add_kind(generator: &mut SchemaGenerator, rt: &ResourceType) -> String {
    fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
        generator.subschema_for::<T>();
        T::schema_name().into_owned()
    }
    match (rt.group, rt.version, rt.kind) {
        ("", _, "Namespace") => add::<api::core::v1::Namespace>(generator),
        ("", _, "Pod") => add::<api::core::v1::Pod>(generator),
        ("", _, "Service") => add::<api::core::v1::Service>(generator),
        ("", _, "Endpoints") => add::<api::core::v1::Endpoints>(generator),
        ("", _, "ConfigMap") => add::<api::core::v1::ConfigMap>(generator),
        ("", _, "Secret") => add::<api::core::v1::Secret>(generator),
        ("", _, "Event") => add::<api::core::v1::Event>(generator),
        ("", _, "Node") => add::<api::core::v1::Node>(generator),
        ("apps", _, "Deployment") => add::<api::apps::v1::Deployment>(generator),
        ("apps", _, "ReplicaSet") => add::<api::apps::v1::ReplicaSet>(generator),
        ("autoscaling", "v2", _) => add::<api::autoscaling::v2::HorizontalPodAutoscaler>(generator),
        ("autoscaling", "v1", _) => add::<api::autoscaling::v1::HorizontalPodAutoscaler>(generator),
        ("coordination.k8s.io", _, _) => add::<api::coordination::v1::Lease>(generator),
        ("discovery.k8s.io", _, _) => add::<api::discovery::v1::EndpointSlice>(generator),
        ("events.k8s.io", _, _) => add::<api::events::v1::Event>(generator),
        (group, version, kind) => unreachable!("no schema registered for {group}/{version} {kind}"),
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn query_param(name: &str, description: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}})
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": format!("{name} of the resource"),
        "schema": {"type": "string", "uniqueItems": true}})
}

fn write_params() -> Vec<Value> {
    vec![
        query_param(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
            "string",
        ),
        query_param(
            "fieldManager",
            "A name associated with the actor or entity that is making these changes.",
            "string",
        ),
        query_param(
            "fieldValidation",
            "How the server handles unknown or duplicate fields: Ignore, Warn (the default) or Strict.",
            "string",
        ),
    ]
}

fn list_params() -> Vec<Value> {
    vec![
        query_param(
            "labelSelector",
            "A selector to restrict the list of returned objects by their labels.",
            "string",
        ),
        query_param(
            "fieldSelector",
            "A selector to restrict the list of returned objects by their fields.",
            "string",
        ),
        query_param(
            "limit",
            "The maximum number of responses to return for a list call.",
            "integer",
        ),
        query_param("continue", "The continue token of the previous page.", "string"),
        query_param("resourceVersion", "Where a list or watch starts.", "string"),
        query_param(
            "watch",
            "Watch for changes to the described resources.",
            "boolean",
        ),
        query_param("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
        query_param(
            "allowWatchBookmarks",
            "Requests watch events with type BOOKMARK.",
            "boolean",
        ),
    ]
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}, "application/yaml": {"schema": schema}})
}

fn operation(
    id: String,
    action: &str,
    gvk: &Value,
    params: Vec<Value>,
    body: Option<Value>,
    response: Value,
) -> Value {
    let mut op = json!({
        "operationId": id,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": json_content(response)},
                      "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    });
    if let Some(schema) = body {
        op["requestBody"] = json!({"content": json_content(schema), "required": true});
    }
    op
}

fn patch_body() -> Value {
    let patch = json!({"schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")});
    json!({"content": {
        "application/json-patch+json": patch,
        "application/merge-patch+json": patch,
        "application/strategic-merge-patch+json": patch,
        "application/apply-patch+yaml": patch,
    }, "required": true})
}

fn build(group: &str, version: &str) -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::ListMeta>();
    let mut paths = Map::new();
    let mut kinds = Vec::new();
    for rt in resources::in_group_version(group, version) {
        let schema = add_kind(&mut generator, rt);
        let list = format!("{schema}List");
        kinds.push((schema.clone(), rt));
        let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
        let id = |verb: &str, suffix: &str| {
            format!(
                "{verb}{}{}{suffix}",
                if rt.namespaced { "Namespaced" } else { "" },
                rt.kind
            )
        };
        let base = format!("/{}", gv_path(group, version));
        let (collection, mut scope_params) = if rt.namespaced {
            (
                format!("{base}/namespaces/{{namespace}}/{}", rt.plural),
                vec![path_param("namespace")],
            )
        } else {
            (format!("{base}/{}", rt.plural), vec![])
        };
        let object_params = || {
            let mut p = scope_params.clone();
            p.push(path_param("name"));
            p
        };
        let mut list_op = scope_params.clone();
        list_op.extend(list_params());
        let mut create_params = scope_params.clone();
        create_params.extend(write_params());
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(id("list", ""), "list", &gvk, list_op, None, schema_ref(&list)),
                "post": operation(id("create", ""), "post", &gvk, create_params, Some(schema_ref(&schema)), schema_ref(&schema)),
                "delete": operation(id("deletecollection", ""), "deletecollection", &gvk, scope_params.clone(), None, schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Status")),
            }),
        );
        let mut writes = object_params();
        writes.extend(write_params());
        let mut patch = operation(
            id("patch", ""),
            "patch",
            &gvk,
            writes.clone(),
            None,
            schema_ref(&schema),
        );
        patch["requestBody"] = patch_body();
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(id("read", ""), "get", &gvk, object_params(), None, schema_ref(&schema)),
                "put": operation(id("replace", ""), "put", &gvk, writes.clone(), Some(schema_ref(&schema)), schema_ref(&schema)),
                "patch": patch,
                "delete": operation(id("delete", ""), "delete", &gvk, object_params(), Some(schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")), schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Status")),
            }),
        );
        let subresources: &[(&str, &str, Value)] = &[
            ("status", "Status", gvk.clone()),
            (
                "scale",
                "Scale",
                json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
            ),
        ];
        for (sub, suffix, sub_gvk) in subresources {
            let served = match *sub {
                "status" => rt.status,
                _ => rt.scale,
            };
            if !served {
                continue;
            }
            let sub_schema = if *sub == "scale" {
                generator.subschema_for::<api::autoscaling::v1::Scale>();
                api::autoscaling::v1::Scale::schema_name().into_owned()
            } else {
                schema.clone()
            };
            let mut patch = operation(
                id("patch", suffix),
                "patch",
                sub_gvk,
                writes.clone(),
                None,
                schema_ref(&sub_schema),
            );
            patch["requestBody"] = patch_body();
            paths.insert(
                format!("{collection}/{{name}}/{sub}"),
                json!({
                    "get": operation(id("read", suffix), "get", sub_gvk, object_params(), None, schema_ref(&sub_schema)),
                    "put": operation(id("replace", suffix), "put", sub_gvk, writes.clone(), Some(schema_ref(&sub_schema)), schema_ref(&sub_schema)),
                    "patch": patch,
                }),
            );
        }
        if rt.namespaced {
            scope_params.clear();
            let mut all = scope_params;
            all.extend(list_params());
            paths.insert(
                format!("{base}/{}", rt.plural),
                json!({"get": operation(format!("list{}ForAllNamespaces", rt.kind), "list", &gvk, all, None, schema_ref(&list))}),
            );
        }
    }
    let mut schemas = generator.take_definitions(true);
    for (name, rt) in &kinds {
        // k8s-openapi has one generic list type without a schema; lists are described here.
        schemas.insert(
            format!("{name}List"),
            json!({
                "description": format!("A list of {}.", rt.plural),
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "items": {"type": "array", "items": schema_ref(name)},
                    "metadata": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"),
                },
                "required": ["items"],
                "x-kubernetes-group-version-kind": [{"group": rt.group, "version": rt.version, "kind": format!("{}List", rt.kind)}],
            }),
        );
    }
    for (name, rt) in &kinds {
        annotate_patch_strategies(&mut schemas, name, rt.kind, &mut Vec::new());
    }
    for (name, rt) in kinds {
        if let Some(schema) = schemas.get_mut(&name).and_then(Value::as_object_mut) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]),
            );
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", super::discovery::KUBE_MAJOR, super::discovery::KUBE_MINOR)},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// Fields whose patches carry `$retainKeys` (their `patchStrategy` includes `retainKeys` upstream): the
/// server honours the directive wherever it appears, but kubectl only sends it where the schema asks.
const RETAIN_KEYS: &[(&str, &[&str])] = &[
    ("Deployment", &["spec", "strategy"]),
    ("Pod", &["spec", "volumes"]),
    ("Deployment", &["spec", "template", "spec", "volumes"]),
    ("ReplicaSet", &["spec", "template", "spec", "volumes"]),
];

/// The component a property's schema refers to, directly or through its items.
fn referenced(property: &Value) -> Option<String> {
    let reference = property
        .get("$ref")
        .or_else(|| property.pointer("/items/$ref"))
        .or_else(|| property.pointer("/allOf/0/$ref"))
        .and_then(Value::as_str)?;
    reference
        .strip_prefix("#/components/schemas/")
        .map(str::to_string)
}

/// Adds the patch extensions kubectl's client-side apply reads (and the list-type extensions that go
/// with them) to every property of `schema_name` reachable from `kind`'s root along `path`.
fn annotate_patch_strategies(
    schemas: &mut Map<String, Value>,
    schema_name: &str,
    kind: &str,
    path: &mut Vec<String>,
) {
    const MAX_DEPTH: usize = 12;
    if path.len() >= MAX_DEPTH {
        return;
    }
    let properties: Vec<(String, Option<String>)> = schemas
        .get(schema_name)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .map(|(name, property)| (name.clone(), referenced(property)))
                .collect()
        })
        .unwrap_or_default();
    for (property, child) in properties {
        path.push(property.clone());
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        let retain = RETAIN_KEYS
            .iter()
            .any(|(k, p)| *k == kind && *p == names.as_slice());
        let strategy = super::strategic_merge::field_strategy(kind, &names);
        if strategy.is_some() || retain {
            let target = &mut schemas[schema_name]["properties"][property.as_str()];
            let merge = match (strategy, retain) {
                (Some(_), true) => "merge,retainKeys",
                (Some(_), false) => "merge",
                (None, _) => "retainKeys",
            };
            target["x-kubernetes-patch-strategy"] = json!(merge);
            match strategy {
                Some((_, Some(key))) => {
                    target["x-kubernetes-patch-merge-key"] = json!(key);
                    target["x-kubernetes-list-type"] = json!("map");
                    target["x-kubernetes-list-map-keys"] = json!([key]);
                }
                Some((_, None)) => target["x-kubernetes-list-type"] = json!("set"),
                None => {}
            }
        }
        if let Some(child) = child {
            annotate_patch_strategies(schemas, &child, kind, path);
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_version_has_a_document_with_patchable_kinds() {
        for (group, version) in resources::group_versions() {
            let doc = document(&gv_path(group, version)).unwrap();
            for rt in resources::in_group_version(group, version) {
                // What kubectl's query-param verifier looks for.
                let found = doc["paths"].as_object().unwrap().values().any(|item| {
                    item.get("patch").is_some_and(|op| {
                        op["x-kubernetes-group-version-kind"]["kind"] == rt.kind
                            && op["parameters"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .any(|p| p["name"] == "fieldValidation")
                    })
                });
                assert!(found, "{group}/{version} {}", rt.kind);
            }
        }
        let apps = document("apis/apps/v1").unwrap();
        let deployment = &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        assert!(apps["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"].is_object());
        assert!(
            index()["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1")
        );
    }
}
