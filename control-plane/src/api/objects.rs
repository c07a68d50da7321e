//! The generic registry: Kubernetes object semantics on top of the store, for every resource type.
//!
//! This is where `metadata` is owned (uid, creationTimestamp, generation, resourceVersion, deletion),
//! where writes are decoded, converted, defaulted and validated, where optimistic concurrency and
//! subresources are enforced, and where deletion honours finalizers and propagation policies. It knows
//! nothing of HTTP: handlers call it with parsed requests and turn its results into responses.

use std::sync::Arc;

use bytes::Bytes;
use rand::Rng;
use serde_json::{Map, Value, json};

use super::conversion;
use super::defaults;
use super::error::{ApiError, Cause, GroupResource, OPTIMISTIC_LOCK};
use super::patch::{self, PatchType};
use super::resources::{self, Generation, ResourceType};
use super::selectors::{FieldSelector, LabelSelector};
use super::validation;
use crate::store::{KeyValue, Revision, Store, StoreError};

/// How unknown fields in a written object are treated (`?fieldValidation=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Options every write takes.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub field_validation: FieldValidation,
    /// `?dryRun=All`: run every check, write nothing.
    pub dry_run: bool,
    /// `?force=true` on server-side apply.
    pub force: bool,
}

/// The `DeleteOptions` that matter here.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Foreground,
    Background,
    Orphan,
}

impl Propagation {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "Foreground" => Ok(Propagation::Foreground),
            "Background" => Ok(Propagation::Background),
            "Orphan" => Ok(Propagation::Orphan),
            other => Err(ApiError::BadRequest(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";
pub const FINALIZER_ORPHAN: &str = "orphan";

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    Status,
    Scale,
    /// Namespaces' `/finalize`: writes `spec.finalizers` only.
    Finalize,
    /// Pods' `/binding`: assigns the pod to a node (create only).
    Binding,
    /// Pods' `/log`: a container's log, read from the node's files (get only).
    Log,
    /// The probe history the node agent keeps (a Glasshouse extension, read only).
    Probes,
    /// An HPA's explained decisions (a Glasshouse extension, read only).
    Decisions,
}

impl Subresource {
    pub fn parse(resource: &ResourceType, name: &str) -> Option<Self> {
        match name {
            "status" if resource.status => Some(Subresource::Status),
            "scale" if resource.scale => Some(Subresource::Scale),
            "finalize" if resource.kind == "Namespace" => Some(Subresource::Finalize),
            "binding" if resource.kind == "Pod" => Some(Subresource::Binding),
            "log" if resource.kind == "Pod" => Some(Subresource::Log),
            "probes" if resource.kind == "Pod" => Some(Subresource::Probes),
            "decisions" if resource.kind == "HorizontalPodAutoscaler" => Some(Subresource::Decisions),
            _ => None,
        }
    }
}

/// A list request's selection and paging.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: usize,
    pub continue_token: Option<String>,
}

/// A list result: the objects (served version), the revision it was read at, and the next page's token.
#[derive(Debug)]
pub struct ObjectList {
    pub items: Vec<Value>,
    pub revision: Revision,
    pub continue_token: Option<String>,
}

/// What a delete did.
#[derive(Debug)]
pub enum Deleted {
    /// The object is gone; this is its last state.
    Gone(Value),
    /// Deletion is pending on finalizers or a grace period; this is the object now.
    Pending(Value),
}

/// The generic object registry over a store.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn Store>,
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta(object: &Value) -> &Value {
    object.get("metadata").unwrap_or(&Value::Null)
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    meta(object).get(field).and_then(Value::as_str)
}

fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn finalizers(object: &Value) -> Vec<String> {
    meta(object)
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Whether anything (metadata finalizers, or a namespace's spec finalizers) still holds the object.
fn is_held(object: &Value) -> bool {
    !finalizers(object).is_empty()
        || object
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
}

/// Decodes a stored value and stamps its revision as `resourceVersion`.
pub fn decode_stored(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::Internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    meta_mut(&mut object).insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
    Ok(object)
}

fn encode(object: &Value) -> Result<Bytes, ApiError> {
    let mut object = object.clone();
    meta_mut(&mut object).remove("resourceVersion");
    serde_json::to_vec(&object)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn parse_revision(rv: &str) -> Result<Revision, ApiError> {
    rv.parse()
        .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))
}

impl Objects {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Objects { store }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Reads the stored object (stored version) with its revision.
    async fn read(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<(Value, Revision)>, ApiError> {
        let kv = self
            .store
            .get(&rt.key(ns, name))
            .await
            .map_err(|e| ApiError::from_store(e, rt.group_resource(), name))?;
        kv.map(|kv| decode_stored(&kv).map(|v| (v, kv.mod_revision)))
            .transpose()
    }

    fn not_found(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::NotFound {
            resource: rt.group_resource(),
            name: name.to_string(),
        }
    }

    pub async fn get(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let (object, _) = self
            .read(rt, ns, name)
            .await?
            .ok_or_else(|| Self::not_found(rt, name))?;
        Ok(conversion::from_storage(rt, object))
    }

    pub async fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ObjectList, ApiError> {
        let prefix = rt.collection_prefix(ns);
        // A name selector narrows the read to one key (kubectl's `get NAME -w`, `delete --wait`).
        if let Some(name) = opts.fields.equal_value("metadata.name")
            && (ns.is_some() || !rt.namespaced)
            && opts.continue_token.is_none()
        {
            let revision = self
                .store
                .current_revision()
                .await
                .map_err(|e| ApiError::from_store(e, rt.group_resource(), ""))?;
            let items = match self.read(rt, ns, name).await? {
                Some((object, _)) if self.selected(&object, opts) => {
                    vec![conversion::from_storage(rt, object)]
                }
                _ => Vec::new(),
            };
            return Ok(ObjectList {
                items,
                revision,
                continue_token: None,
            });
        }
        let (start_after, pinned) = match &opts.continue_token {
            Some(token) => {
                let (key, revision) = decode_continue(token, &prefix)?;
                (Some(key), Some(revision))
            }
            None => (None, None),
        };
        let mut items = Vec::new();
        let mut cursor = start_after;
        let mut revision = pinned;
        loop {
            let want = if opts.limit > 0 {
                opts.limit - items.len()
            } else {
                0
            };
            let page = self
                .store
                .list(&prefix, cursor.as_deref(), want)
                .await
                .map_err(|e| ApiError::from_store(e, rt.group_resource(), ""))?;
            revision.get_or_insert(page.revision);
            let last_key = page.items.last().map(|kv| kv.key.clone());
            for kv in &page.items {
                let object = decode_stored(kv)?;
                if self.selected(&object, opts) {
                    items.push(conversion::from_storage(rt, object));
                }
            }
            let full = opts.limit > 0 && items.len() >= opts.limit;
            match (page.more, last_key) {
                (true, Some(last)) if full => {
                    let revision = revision.unwrap_or(page.revision);
                    return Ok(ObjectList {
                        items,
                        revision,
                        continue_token: Some(encode_continue(&last, revision)),
                    });
                }
                (true, Some(last)) => cursor = Some(last),
                _ => {
                    return Ok(ObjectList {
                        items,
                        revision: revision.unwrap_or(page.revision),
                        continue_token: None,
                    });
                }
            }
        }
    }

    fn selected(&self, object: &Value, opts: &ListOptions) -> bool {
        opts.labels.matches_object(object) && opts.fields.matches(object)
    }

    /// Creates an object from a served-version body.
    pub async fn create(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let mut object = self.admit_body(rt, ns, None, body)?;
        let stored_rt = resources::storage_type(rt);
        let generated = meta_str(&object, "name").is_none_or(str::is_empty)
            && meta_str(&object, "generateName").is_some_and(|g| !g.is_empty());
        if generated {
            let base = meta_str(&object, "generateName").unwrap_or_default().to_string();
            meta_mut(&mut object).insert("name".into(), json!(generate_name(&base)));
        }
        object = conversion::to_storage(rt, object, None);
        // A new object's status is the server's to fill (nodes excepted: the agent registers its own).
        if stored_rt.status && stored_rt.kind != "Node" {
            object["status"] = json!({});
        }
        let mut object = self.normalize(stored_rt, object, opts)?;
        let name = meta_str(&object, "name").unwrap_or_default().to_string();
        {
            let m = meta_mut(&mut object);
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now()));
            for field in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
                "managedFields",
            ] {
                m.remove(field);
            }
            if stored_rt.generation != Generation::None {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        self.check_valid(stored_rt, &object, None)?;
        if let Some(ns) = ns.filter(|_| rt.namespaced) {
            self.check_namespace_open(ns).await?;
        }
        if stored_rt.kind == "Service" {
            self.allocate_service_addresses(rt, &mut object).await?;
        }
        if opts.dry_run {
            return Ok(conversion::from_storage(rt, object));
        }
        let key = rt.key(ns, &name);
        let revision = self
            .store
            .create(&key, encode(&object)?)
            .await
            .map_err(|e| ApiError::from_store(e, rt.group_resource(), &name))?;
        meta_mut(&mut object).insert("resourceVersion".into(), json!(revision.to_string()));
        Ok(conversion::from_storage(rt, object))
    }

    /// Gives a new Service its ClusterIP (from `crate::addresses::SERVICE_NETWORK`, unless headless or ExternalName) and
    /// its node ports (NodePort and LoadBalancer), checking the ones the body names are free and in range,
    /// as kube-apiserver's allocators do.
    async fn allocate_service_addresses(
        &self,
        rt: &ResourceType,
        service: &mut Value,
    ) -> Result<(), ApiError> {
        let services = self.list(rt, None, &ListOptions::default()).await?;
        let used_ips: std::collections::HashSet<String> = services
            .items
            .iter()
            .filter_map(|s| {
                s.pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        let used_ports: std::collections::HashSet<i64> = services
            .items
            .iter()
            .flat_map(|s| {
                s.pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
            .collect();
        let name = meta_str(service, "name").unwrap_or_default().to_string();
        let invalid = |field: String, value: Value, detail: String| ApiError::Invalid {
            kind: "Service",
            group: "",
            name: name.clone(),
            causes: vec![super::error::Cause::invalid(field, &value, detail)],
        };
        let kind = service
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        if kind != "ExternalName" {
            let requested = service
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let ip = match requested.as_str() {
                "None" => "None".to_string(),
                "" => crate::addresses::SERVICE_NETWORK
                    .allocate(|ip| !used_ips.contains(&ip.to_string()))
                    .ok_or_else(|| ApiError::Internal("the service address range is exhausted".into()))?
                    .to_string(),
                wanted => {
                    let parsed: Option<std::net::Ipv4Addr> = wanted.parse().ok();
                    if !parsed.is_some_and(|ip| crate::addresses::SERVICE_NETWORK.contains(ip)) {
                        return Err(invalid(
                            "spec.clusterIPs".into(),
                            json!(wanted),
                            format!(
                                "failed to allocate IP {wanted}: the provided IP ({wanted}) is not in the valid range. The range of valid IPs is {}",
                                crate::addresses::SERVICE_NETWORK
                            ),
                        ));
                    }
                    if used_ips.contains(wanted) {
                        return Err(invalid(
                            "spec.clusterIPs".into(),
                            json!(wanted),
                            format!("failed to allocate IP {wanted}: provided IP is already allocated"),
                        ));
                    }
                    wanted.to_string()
                }
            };
            service["spec"]["clusterIP"] = json!(ip);
            service["spec"]["clusterIPs"] = json!([ip]);
            if ip != "None" {
                service["spec"]["ipFamilies"] = json!(["IPv4"]);
                service["spec"]["ipFamilyPolicy"] = json!("SingleStack");
            }
        }
        if kind == "NodePort" || kind == "LoadBalancer" {
            let mut taken = used_ports;
            let ports = service["spec"]["ports"]
                .as_array_mut()
                .map(std::mem::take)
                .unwrap_or_default();
            let mut out = Vec::with_capacity(ports.len());
            for (i, mut port) in ports.into_iter().enumerate() {
                match port.get("nodePort").and_then(Value::as_i64).filter(|p| *p != 0) {
                    Some(wanted) if !crate::addresses::NODE_PORTS.contains(&wanted) => {
                        return Err(invalid(
                            format!("spec.ports[{i}].nodePort"),
                            json!(wanted),
                            format!(
                                "provided port is not in the valid range. The range of valid ports is {}-{}",
                                crate::addresses::NODE_PORTS.start(),
                                crate::addresses::NODE_PORTS.end()
                            ),
                        ));
                    }
                    Some(wanted) if !taken.insert(wanted) => {
                        return Err(invalid(
                            format!("spec.ports[{i}].nodePort"),
                            json!(wanted),
                            "provided port is already allocated".into(),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        let span =
                            crate::addresses::NODE_PORTS.end() - crate::addresses::NODE_PORTS.start() + 1;
                        let start = rand::random_range(0..span);
                        let free = (0..span)
                            .map(|n| crate::addresses::NODE_PORTS.start() + (start + n) % span)
                            .find(|p| !taken.contains(p))
                            .ok_or_else(|| ApiError::Internal("the node port range is exhausted".into()))?;
                        taken.insert(free);
                        port["nodePort"] = json!(free);
                    }
                }
                out.push(port);
            }
            service["spec"]["ports"] = Value::Array(out);
        }
        Ok(())
    }

    /// Checks a body's type and namespace against the endpoint and fills them in where absent.
    fn admit_body(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: Option<&str>,
        mut body: Value,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::BadRequest(format!(
                "the body of a {} must be a JSON object",
                rt.kind
            )));
        }
        let expected_version = rt.api_version();
        match body.get("apiVersion").and_then(Value::as_str) {
            Some(v) if !v.is_empty() && v != expected_version => {
                return Err(ApiError::BadRequest(format!(
                    "the API version in the data ({v}) does not match the expected API version ({expected_version})"
                )));
            }
            _ => body["apiVersion"] = json!(expected_version),
        }
        match body.get("kind").and_then(Value::as_str) {
            Some(k) if !k.is_empty() && k != rt.kind => {
                return Err(ApiError::BadRequest(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    rt.kind
                )));
            }
            _ => body["kind"] = json!(rt.kind),
        }
        let meta = meta_mut(&mut body);
        if rt.namespaced {
            let ns = ns.unwrap_or_default();
            match meta.get("namespace").and_then(Value::as_str) {
                Some(given) if !given.is_empty() && given != ns => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), json!(ns));
                }
            }
        } else {
            meta.remove("namespace");
        }
        if let Some(url_name) = name {
            match meta.get("name").and_then(Value::as_str) {
                Some(given) if !given.is_empty() && given != url_name => {
                    return Err(ApiError::BadRequest(format!(
                        "the name of the object ({given}) does not match the name on the URL ({url_name})"
                    )));
                }
                _ => {
                    meta.insert("name".into(), json!(url_name));
                }
            }
        }
        Ok(body)
    }

    fn normalize(
        &self,
        stored_rt: &ResourceType,
        mut object: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        object["apiVersion"] = json!(stored_rt.api_version());
        object["kind"] = json!(stored_rt.kind);
        defaults::normalize(
            stored_rt.kind,
            stored_rt.version,
            object,
            opts.field_validation == FieldValidation::Strict,
        )
    }

    fn check_valid(
        &self,
        stored_rt: &ResourceType,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let causes = validation::validate(stored_rt.kind, object, old);
        if causes.is_empty() {
            return Ok(());
        }
        Err(ApiError::Invalid {
            kind: stored_rt.kind,
            group: stored_rt.group,
            name: meta_str(object, "name").unwrap_or_default().to_string(),
            causes,
        })
    }

    async fn check_namespace_open(&self, ns: &str) -> Result<(), ApiError> {
        let namespaces = resources::find("", "v1", "namespaces").expect("namespaces are served");
        let (namespace, _) = self
            .read(namespaces, None, ns)
            .await?
            .ok_or_else(|| Self::not_found(namespaces, ns))?;
        if meta(&namespace).get("deletionTimestamp").is_some() {
            return Err(ApiError::Forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            )));
        }
        Ok(())
    }

    /// Replaces an object (or one of its subresources) with a served-version body.
    pub async fn update(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let body = match sub {
            Some(Subresource::Scale) => body,
            _ => self.admit_body(rt, ns, Some(name), body)?,
        };
        let precondition = meta_str(&body, "resourceVersion")
            .filter(|rv| !rv.is_empty())
            .map(parse_revision)
            .transpose()?;
        let allow_create = sub.is_none() && matches!(rt.kind, "Event" | "Lease" | "Endpoints");
        self.write_loop(rt, ns, name, sub, precondition, allow_create, opts, |_| {
            Ok(body.clone())
        })
        .await
    }

    /// Applies a patch to an object (or a subresource).
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        patch_type: PatchType,
        patch_body: &[u8],
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let patch_value = patch::parse(patch_type, patch_body)?;
        let allow_create = patch_type == PatchType::Apply && sub.is_none();
        let kind = resources::storage_type(rt).kind;
        let mut precondition = None;
        if let Some(rv) = patch_value
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && patch_type != PatchType::Json
        {
            precondition = Some(parse_revision(rv)?);
        }
        self.write_loop(
            rt,
            ns,
            name,
            sub,
            precondition,
            allow_create,
            opts,
            |current| match current {
                Some(current) => patch::apply(patch_type, current, &patch_value, kind),
                None => {
                    let mut created = patch_value.clone();
                    if let Some(m) = created.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("resourceVersion");
                    }
                    Ok(created)
                }
            },
        )
        .await
    }

    /// The read-modify-write cycle of every update: `change` turns the current served view (object, or
    /// Scale) into the desired one; retried on a write race unless the caller pinned a revision.
    #[allow(clippy::too_many_arguments)]
    async fn write_loop(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        precondition: Option<Revision>,
        allow_create: bool,
        opts: &WriteOptions,
        change: impl Fn(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<(Value, bool), ApiError> {
        let stored_rt = resources::storage_type(rt);
        let key = rt.key(ns, name);
        loop {
            let Some((old, revision)) = self.read(rt, ns, name).await? else {
                if !allow_create {
                    return Err(Self::not_found(rt, name));
                }
                let body = change(None)?;
                return match self
                    .create(rt, ns, self.admit_body(rt, ns, Some(name), body)?, opts)
                    .await
                {
                    Err(ApiError::AlreadyExists { .. }) => continue,
                    other => other.map(|o| (o, true)),
                };
            };
            if let Some(expected) = precondition
                && expected != revision
            {
                return Err(ApiError::Conflict {
                    resource: rt.group_resource(),
                    name: name.into(),
                    detail: OPTIMISTIC_LOCK.into(),
                });
            }
            let current_view = match sub {
                Some(Subresource::Scale) => scale_of(rt, &old)?,
                _ => conversion::from_storage(rt, old.clone()),
            };
            let desired = change(Some(&current_view))?;
            let new = match sub {
                Some(Subresource::Scale) => apply_scale(stored_rt, &old, &desired)?,
                Some(Subresource::Status) => with_status_of(
                    &old,
                    conversion::to_storage(rt, self.admit_body(rt, ns, Some(name), desired)?, Some(&old)),
                ),
                Some(Subresource::Finalize) => {
                    let mut new = old.clone();
                    new["spec"]["finalizers"] =
                        desired.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
                    new
                }
                // Bindings are created, never updated; the HTTP layer routes them to `bind`; logs are
                // read only.
                Some(Subresource::Binding) => {
                    return Err(ApiError::BadRequest("pods/binding is create only".into()));
                }
                Some(Subresource::Log) => {
                    return Err(ApiError::BadRequest("pods/log is read only".into()));
                }
                Some(Subresource::Probes) => {
                    return Err(ApiError::BadRequest("pods/probes is read only".into()));
                }
                Some(Subresource::Decisions) => {
                    return Err(ApiError::BadRequest(
                        "horizontalpodautoscalers/decisions is read only".into(),
                    ));
                }
                None => {
                    let desired = self.admit_body(rt, ns, Some(name), desired)?;
                    prepare_update(stored_rt, &old, conversion::to_storage(rt, desired, Some(&old)))
                }
            };
            let mut new = self.normalize(stored_rt, new, opts)?;
            // Whatever the body said, identity and bookkeeping stay the server's.
            carry_identity(stored_rt, &old, &mut new);
            self.check_valid(stored_rt, &new, Some(&old))?;
            let mut unchanged = new.clone();
            meta_mut(&mut unchanged).insert("resourceVersion".into(), json!(revision.to_string()));
            if unchanged == old {
                return Ok((self.view(rt, sub, old)?, false));
            }
            if opts.dry_run {
                return Ok((self.view(rt, sub, unchanged)?, false));
            }
            // The last finalizer removed from an object being deleted: finish the deletion.
            if meta(&new).get("deletionTimestamp").is_some() && !is_held(&new) {
                return match self.store.delete(&key, Some(revision)).await {
                    Ok((_, _)) => Ok((self.view(rt, sub, unchanged)?, false)),
                    Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
                    Err(e) => Err(ApiError::from_store(e, rt.group_resource(), name)),
                };
            }
            match self.store.update(&key, encode(&new)?, revision).await {
                Ok(new_revision) => {
                    meta_mut(&mut new).insert("resourceVersion".into(), json!(new_revision.to_string()));
                    return Ok((self.view(rt, sub, new)?, false));
                }
                Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
                Err(StoreError::NotFound(_)) if precondition.is_none() => continue,
                Err(e) => return Err(ApiError::from_store(e, rt.group_resource(), name)),
            }
        }
    }

    /// `pods/binding` (upstream's `BindingREST`): assigns an unassigned pod to `node` and marks it
    /// scheduled. A pod already assigned, or being deleted, is a conflict.
    pub async fn bind(&self, rt: &ResourceType, ns: &str, name: &str, node: &str) -> Result<(), ApiError> {
        let conflict = |detail: String| ApiError::Conflict {
            resource: GroupResource {
                group: "",
                resource: "pods/binding",
            },
            name: name.to_string(),
            detail,
        };
        loop {
            let (mut pod, revision) = self
                .read(rt, Some(ns), name)
                .await?
                .ok_or_else(|| Self::not_found(rt, name))?;
            if meta(&pod).get("deletionTimestamp").is_some() {
                return Err(conflict(format!(
                    "pod {name} is being deleted, cannot be assigned to a host"
                )));
            }
            if let Some(current) = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(conflict(format!(
                    "pod {name} is already assigned to node {current:?}"
                )));
            }
            pod["spec"]["nodeName"] = json!(node);
            let scheduled = json!({
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": null,
                "lastTransitionTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            });
            let status = pod
                .as_object_mut()
                .expect("a stored object")
                .entry("status")
                .or_insert_with(|| json!({}));
            let conditions = status
                .as_object_mut()
                .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
            if let Some(Value::Array(conditions)) = conditions {
                conditions.retain(|c| c["type"] != "PodScheduled");
                conditions.push(scheduled);
            }
            match self
                .store
                .update(&rt.key(Some(ns), name), encode(&pod)?, revision)
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => continue,
                Err(e) => return Err(ApiError::from_store(e, rt.group_resource(), name)),
            }
        }
    }

    fn view(&self, rt: &ResourceType, sub: Option<Subresource>, stored: Value) -> Result<Value, ApiError> {
        match sub {
            Some(Subresource::Scale) => scale_of(rt, &stored),
            _ => Ok(conversion::from_storage(rt, stored)),
        }
    }

    /// Reads the Scale of an object.
    pub async fn get_scale(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let (object, _) = self
            .read(rt, ns, name)
            .await?
            .ok_or_else(|| Self::not_found(rt, name))?;
        scale_of(rt, &object)
    }

    /// Deletes an object, honouring preconditions, finalizers, propagation and pod grace periods.
    pub async fn delete(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let key = rt.key(ns, name);
        let stored_rt = resources::storage_type(rt);
        loop {
            let (object, revision) = self
                .read(rt, ns, name)
                .await?
                .ok_or_else(|| Self::not_found(rt, name))?;
            self.check_delete_preconditions(rt, name, &object, opts)?;
            let mut pending = object.clone();
            let already_deleting = meta(&object).get("deletionTimestamp").is_some();
            let mut add = Vec::new();
            match opts.propagation {
                Some(Propagation::Foreground) => add.push(FINALIZER_FOREGROUND),
                Some(Propagation::Orphan) => add.push(FINALIZER_ORPHAN),
                _ => {}
            }
            let mut held = finalizers(&object);
            for f in add {
                if !held.iter().any(|h| h == f) {
                    held.push(f.to_string());
                }
            }
            let grace = pod_grace_period(stored_rt, &object, opts);
            if stored_rt.kind == "Namespace" {
                pending["status"]["phase"] = json!("Terminating");
            }
            if held.is_empty() && grace.is_none() && !is_held(&pending) {
                if opts.dry_run {
                    return Ok(Deleted::Gone(conversion::from_storage(rt, object)));
                }
                return match self.store.delete(&key, Some(revision)).await {
                    Ok((deleted_at, _)) => {
                        let mut last = object;
                        meta_mut(&mut last).insert("resourceVersion".into(), json!(deleted_at.to_string()));
                        Ok(Deleted::Gone(conversion::from_storage(rt, last)))
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => Err(ApiError::from_store(e, rt.group_resource(), name)),
                };
            }
            let m = meta_mut(&mut pending);
            if !held.is_empty() {
                m.insert("finalizers".into(), json!(held));
            }
            if !already_deleting {
                let grace = grace.unwrap_or(0);
                let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                m.insert(
                    "deletionTimestamp".into(),
                    json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            if pending == object {
                return Ok(Deleted::Pending(conversion::from_storage(rt, object)));
            }
            if opts.dry_run {
                return Ok(Deleted::Pending(conversion::from_storage(rt, pending)));
            }
            match self.store.update(&key, encode(&pending)?, revision).await {
                Ok(new_revision) => {
                    meta_mut(&mut pending).insert("resourceVersion".into(), json!(new_revision.to_string()));
                    return Ok(Deleted::Pending(conversion::from_storage(rt, pending)));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(ApiError::from_store(e, rt.group_resource(), name)),
            }
        }
    }

    fn check_delete_preconditions(
        &self,
        rt: &ResourceType,
        name: &str,
        object: &Value,
        opts: &DeleteOptions,
    ) -> Result<(), ApiError> {
        let conflict = |detail: String| ApiError::Conflict {
            resource: rt.group_resource(),
            name: name.into(),
            detail,
        };
        if let Some(uid) = &opts.precondition_uid {
            let actual = meta_str(object, "uid").unwrap_or_default();
            if uid != actual {
                return Err(conflict(format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                )));
            }
        }
        if let Some(rv) = &opts.precondition_resource_version {
            let actual = meta_str(object, "resourceVersion").unwrap_or_default();
            if rv != actual {
                return Err(conflict(format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                )));
            }
        }
        Ok(())
    }

    /// Deletes every selected object of a collection; returns the last state of each.
    pub async fn delete_collection(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let items = self.list(rt, ns, list).await?.items;
        let mut out = Vec::new();
        for item in items {
            let name = meta_str(&item, "name").unwrap_or_default().to_string();
            let item_ns = meta_str(&item, "namespace").map(str::to_string);
            match self.delete(rt, item_ns.as_deref(), &name, opts).await {
                Ok(Deleted::Gone(o) | Deleted::Pending(o)) => out.push(o),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Creates the namespaces every cluster has, if missing.
    pub async fn ensure_system_namespaces(&self) -> Result<(), ApiError> {
        let namespaces = resources::find("", "v1", "namespaces").expect("namespaces are served");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            match self
                .create(namespaces, None, body, &WriteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Upstream's pod graceful deletion (`CheckGracefulDelete`): a pod on a node that has not finished gets
/// its grace period; unscheduled or finished pods go at once.
fn pod_grace_period(rt: &ResourceType, object: &Value, opts: &DeleteOptions) -> Option<i64> {
    if rt.kind != "Pod" {
        return None;
    }
    let scheduled = object
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = object
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !scheduled || phase == "Succeeded" || phase == "Failed" {
        return None;
    }
    let grace = opts
        .grace_period_seconds
        .or_else(|| {
            object
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30);
    // A pod already being deleted can only have its grace shortened.
    let current = meta(object)
        .get("deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    match current {
        Some(current) if current <= grace => Some(current),
        _ if grace <= 0 => None,
        _ => Some(grace),
    }
}

/// Keeps what only the server sets: uid, creation time, generation (recomputed by `prepare_update`),
/// deletion state.
fn carry_identity(rt: &ResourceType, old: &Value, new: &mut Value) {
    let old_meta = meta(old).clone();
    let m = meta_mut(new);
    let mut fields = vec![
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "name",
    ];
    if rt.generation == Generation::None || m.get("generation").is_none() {
        fields.push("generation");
    }
    for field in fields {
        match old_meta.get(field) {
            Some(v) => m.insert(field.into(), v.clone()),
            None => m.remove(field),
        };
    }
    m.remove("resourceVersion");
    m.remove("selfLink");
    m.remove("managedFields");
}

/// A main-endpoint update: status stays as stored for types with a status subresource, and generation
/// moves when the spec (or, for Deployments, annotations) changed.
fn prepare_update(rt: &ResourceType, old: &Value, mut new: Value) -> Value {
    if rt.kind == "Service" {
        keep_service_addresses(old, &mut new);
    }
    if rt.status
        && let Some(map) = new.as_object_mut()
    {
        match old.get("status") {
            Some(status) => map.insert("status".into(), status.clone()),
            None => map.remove("status"),
        };
    }
    let old_generation = meta(old).get("generation").and_then(Value::as_i64).unwrap_or(1);
    if rt.generation != Generation::None {
        let spec_changed = old.get("spec") != new.get("spec");
        let annotations_changed = rt.generation == Generation::SpecAndAnnotations
            && meta(old).get("annotations") != meta(&new).get("annotations");
        let generation = if spec_changed || annotations_changed {
            old_generation + 1
        } else {
            old_generation
        };
        meta_mut(&mut new).insert("generation".into(), json!(generation));
    }
    new
}

/// A Service update that leaves out its allocated addresses keeps them (as upstream's REST strategy
/// does): the ClusterIP and its family fields, and the node port of each port that had one.
fn keep_service_addresses(old: &Value, new: &mut Value) {
    let Some(old_spec) = old.get("spec") else { return };
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if kind != "ExternalName" {
        let unset = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if unset {
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if let Some(value) = old_spec.get(field) {
                    spec.insert(field.into(), value.clone());
                }
            }
        }
    }
    let old_ports = old_spec
        .get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for port in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if port
            .get("nodePort")
            .and_then(Value::as_i64)
            .is_some_and(|p| p != 0)
        {
            continue;
        }
        // Defaults are not applied yet: a port without a protocol is TCP.
        let protocol = |p: &Value| {
            p.get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_string()
        };
        let same = old_ports
            .iter()
            .find(|o| o.get("port") == port.get("port") && protocol(o) == protocol(port));
        if let Some(node_port) = same.and_then(|o| o.get("nodePort")).filter(|p| !p.is_null())
            && (kind == "NodePort" || kind == "LoadBalancer")
        {
            port["nodePort"] = node_port.clone();
        }
    }
}

/// A status write: everything but `status` stays as stored (upstream `ResetObjectMetaForStatus`).
/// A status write: the status of `desired` on `old`, and its annotations too (upstream's status
/// strategies keep metadata from the request for Deployments and Pods; the Deployment controller
/// records revisions this way, without bumping the generation).
fn with_status_of(old: &Value, desired: Value) -> Value {
    let mut new = old.clone();
    match desired.pointer("/metadata/annotations") {
        Some(annotations) => new["metadata"]["annotations"] = annotations.clone(),
        None => {
            if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("annotations");
            }
        }
    }
    match desired.get("status") {
        Some(status) => new["status"] = status.clone(),
        None => {
            if let Some(map) = new.as_object_mut() {
                map.remove("status");
            }
        }
    }
    new
}

/// The autoscaling/v1 Scale view of a stored object.
fn scale_of(rt: &ResourceType, object: &Value) -> Result<Value, ApiError> {
    let selector = object
        .pointer("/spec/selector")
        .map(|s| LabelSelector::from_label_selector(s).map(|s| s.to_string()))
        .transpose()
        .map_err(ApiError::Internal)?
        .unwrap_or_default();
    let m = meta(object);
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    }))
    .map(|mut scale| {
        if !rt.namespaced
            && let Some(m) = scale["metadata"].as_object_mut()
        {
            m.remove("namespace");
        }
        scale
    })
}

/// Writes a desired Scale's replicas into the stored object.
fn apply_scale(rt: &ResourceType, old: &Value, scale: &Value) -> Result<Value, ApiError> {
    let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    if replicas.as_i64().is_none_or(|r| r < 0) {
        return Err(ApiError::Invalid {
            kind: "Scale",
            group: "autoscaling",
            name: meta_str(old, "name").unwrap_or_default().to_string(),
            causes: vec![Cause::invalid(
                "spec.replicas",
                &replicas,
                "must be greater than or equal to 0",
            )],
        });
    }
    let mut new = old.clone();
    new["spec"]["replicas"] = replicas;
    Ok(prepare_update(rt, old, new))
}

/// Upstream's name generator: five characters from an alphabet without vowels or look-alikes.
fn generate_name(base: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let base = if base.len() > 58 { &base[..58] } else { base };
    format!("{base}{suffix}")
}

/// A continue token: the last key of the previous page and the revision the listing started at.
fn encode_continue(key: &str, revision: Revision) -> String {
    let raw = json!({"v": 1, "rv": revision, "start": key}).to_string();
    base64_url(raw.as_bytes())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(String, Revision), ApiError> {
    let bad = || ApiError::BadRequest(format!("continue key is not valid: {token:?}"));
    let raw = base64_url_decode(token).ok_or_else(bad)?;
    let value: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let key = value.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    let revision = value.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    if !key.starts_with(prefix) {
        return Err(bad());
    }
    Ok((key.to_string(), revision))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64_url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn base64_url_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_foreign_prefixes() {
        let token = encode_continue("/registry/core/pods/default/web-7", 42);
        assert_eq!(
            decode_continue(&token, "/registry/core/pods/").unwrap(),
            ("/registry/core/pods/default/web-7".into(), 42)
        );
        assert!(decode_continue(&token, "/registry/core/secrets/").is_err());
        assert!(decode_continue("!!", "/").is_err());
    }

    #[test]
    fn generated_names_have_a_five_character_suffix() {
        let name = generate_name("web-");
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    }

    #[test]
    fn generation_moves_with_spec_only() {
        let rt = resources::find("apps", "v1", "deployments").unwrap();
        let old = json!({"metadata": {"generation": 3}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let same = prepare_update(
            rt,
            &old,
            json!({"metadata": {}, "spec": {"replicas": 1}, "status": {"replicas": 9}}),
        );
        assert_eq!(same["metadata"]["generation"], 3);
        assert_eq!(
            same["status"]["replicas"], 1,
            "main endpoint writes keep the stored status"
        );
        let bumped = prepare_update(rt, &old, json!({"metadata": {}, "spec": {"replicas": 2}}));
        assert_eq!(bumped["metadata"]["generation"], 4);
    }
}
