//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds.
//!
//! This is the apply half of k8s.io/apimachinery `pkg/util/strategicpatch` (`mergeMap` and the
//! functions it calls, as the API server reaches them through `StrategicMergeMapPatch`), ported to
//! `serde_json` values. kubectl sends this patch type for `kubectl patch` (the default type) and
//! for client-side `kubectl apply`, so the result, list order included, has to be what a real API
//! server produces.
//!
//! What it is not:
//! - not JSON merge patch (RFC 7386): that replaces every list and knows no `$` directives;
//! - not server-side apply: there are no field managers or conflicts here, only the patch body
//!   and the stored object;
//! - not a patch *generator*: the diff half of upstream (`CreateTwoWayMergePatch` and friends)
//!   lives in the client.
//!
//! Upstream reads merge keys from Go struct tags. There are no such types here, so the `KINDS`
//! table holds a hand-written copy of the `patchStrategy`/`patchMergeKey` tags from k8s.io/api
//! for the kinds the project serves. Fields the tables do not list merge the way upstream merges
//! untagged fields: objects recursively, lists replaced. Kinds the table does not list get no
//! schema at all.
//!
//! Deliberate differences from upstream, each at an edge no kubectl-generated patch reaches:
//! - `$patch: merge` is accepted as the explicit default (upstream rejects it on maps and list
//!   items alike);
//! - every patch value taken as it stands (a new field, a replaced list or map, an appended list
//!   item) goes through upstream's null-discarding and `removeDirectives`, and also loses stray
//!   `$retainKeys`/`$setElementOrder`/`$deleteFromPrimitiveList` keys; upstream does that for new
//!   fields only and leaves the rest to the typed decoding that follows the merge;
//! - `$setElementOrder` over lists that have no items at all yields the empty list rather than
//!   upstream's "no elements in any of the given slices" error;
//! - where upstream sorts with a comparator that is not a strict order (items missing from the
//!   order it sorts by), such items keep their relative order after the ones found;
//! - numbers are compared by value (`1` matches `1.0`), as Go sees them after
//!   k8s.io/apimachinery's JSON decoding turns whole numbers into `int64`;
//! - a top-level `null` patch is rejected (upstream treats it as `{}`);
//! - a kind without a schema gets JSON-merge-like semantics (objects merged, lists replaced,
//!   directives still honoured) where upstream refuses strategic merge patch for types it has no
//!   Go struct for (custom resources) with 415.

use serde_json::{Map, Value};

type Object = Map<String, Value>;

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

const REPLACE: &str = "replace";
const MERGE: &str = "merge";
const DELETE: &str = "delete";

/// An error in a strategic merge patch body; the API server turns it into a 400/422 Status using
/// `Display`.
///
/// Messages follow upstream's wording so clients that match on them keep working.
#[derive(Debug, thiserror::Error)]
pub enum SmpError {
    /// The patch body is not a JSON object; only an object can describe changes to one.
    #[error("invalid JSON document: a strategic merge patch must be a JSON object, not a {0}")]
    PatchNotAnObject(&'static str),
    /// The stored object is not a JSON object. That is a server-side fault, reported rather than
    /// panicked on because the stored bytes are not under this module's control.
    #[error("invalid JSON document: the object being patched is a {0}, not a JSON object")]
    OriginalNotAnObject(&'static str),
    /// `$patch` held something other than `replace`, `merge` or `delete`.
    #[error("unknown patch type: {directive} in map: {map}")]
    UnknownPatchType {
        /// The offending directive value.
        directive: String,
        /// The map that carried it.
        map: String,
    },
    /// An item of a list merged by key lacks that key, so it cannot be matched to a live item.
    #[error("map: {item} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// The merge key the field declares.
        key: String,
        /// The item without it.
        item: String,
    },
    /// A list of objects was to be merged, but its field declares no key to match items by.
    #[error("cannot merge lists without merge key for {field}")]
    NoMergeKey {
        /// The list field.
        field: String,
    },
    /// `$retainKeys` is not a list, or the patch sets a key that list does not retain.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    /// A key starting with `$deleteFromPrimitiveList` is not `$deleteFromPrimitiveList/<field>`.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveList,
    /// A key starting with `$setElementOrder` is not `$setElementOrder/<field>`.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    /// The patch list has items its `$setElementOrder` list lacks, or orders them differently.
    #[error("the order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}")]
    OrderMismatch {
        /// The patch list.
        patch: String,
        /// The `$setElementOrder` list.
        order: String,
    },
    /// A list holds lists, which have nothing to be matched by.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// The live and patch lists mix item types, so neither scalar nor keyed merging applies.
    #[error("list element types are not identical: {0}")]
    MixedElementTypes(String),
    /// A value has a JSON type the merge cannot use where it stands (say, a `$setElementOrder`
    /// that is not a list, or a keyed list holding strings).
    #[error("expected a {expected}, but received a {actual}")]
    TypeMismatch {
        /// The JSON type needed there.
        expected: &'static str,
        /// The JSON type found.
        actual: &'static str,
    },
}

/// Applies a strategic merge patch to `original` for objects of the given kind.
pub fn apply(original: &Value, patch: &Value, kind: &str) -> Result<Value, SmpError> {
    let Value::Object(patch) = patch else {
        return Err(SmpError::PatchNotAnObject(json_type(patch)));
    };
    let original = match original {
        Value::Object(object) => object.clone(),
        // Upstream decodes an absent original as `{}`.
        Value::Null => Object::new(),
        other => return Err(SmpError::OriginalNotAnObject(json_type(other))),
    };
    merge_map(original, patch.clone(), schema_for(kind)).map(Value::Object)
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

/// How a list field combines with the live list: the field's `patchStrategy`/`patchMergeKey` tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMerge {
    /// No `patchStrategy` tag: the patch list replaces the live one.
    Replace,
    /// `patchStrategy:"merge"` without a key: a set of scalars, unioned in order.
    Set,
    /// `patchStrategy:"merge"` with `patchMergeKey`: objects matched by that key.
    ByKey(&'static str),
}

impl ListMerge {
    fn merge_key(self) -> Option<&'static str> {
        match self {
            ListMerge::ByKey(key) => Some(key),
            ListMerge::Replace | ListMerge::Set => None,
        }
    }
}

/// One field of a schema. `fields` describes the object the field holds, or each item when it
/// holds a list of objects; only fields with a tag somewhere below them need an entry.
///
/// The `retainKeys` strategy (Deployment `spec.strategy`, pod `volumes`, `resourceClaims`) is not
/// recorded: it only tells the *client* to send `$retainKeys`, which `merge_map` honours on any
/// map, exactly as upstream does.
#[derive(Debug)]
struct Field {
    name: &'static str,
    list: ListMerge,
    fields: Schema,
}

type Schema = &'static [Field];

/// A field that is (or holds) an object with tagged fields further down.
const fn object(name: &'static str, fields: Schema) -> Field {
    Field {
        name,
        list: ListMerge::Replace,
        fields,
    }
}

/// A list of objects merged by `key`.
const fn keyed(name: &'static str, key: &'static str, fields: Schema) -> Field {
    Field {
        name,
        list: ListMerge::ByKey(key),
        fields,
    }
}

/// A list of scalars merged as an ordered set.
const fn set(name: &'static str) -> Field {
    Field {
        name,
        list: ListMerge::Set,
        fields: &[],
    }
}

/// What a field missing from the schema behaves as: objects merge, lists are replaced.
static UNTAGGED: Field = object("", &[]);

fn field_of(schema: Schema, name: &str) -> &'static Field {
    schema
        .iter()
        .find(|field| field.name == name)
        .unwrap_or(&UNTAGGED)
}

const OBJECT_META: Schema = &[set("finalizers"), keyed("ownerReferences", "uid", &[])];

/// `Container` and `EphemeralContainerCommon`. `resizePolicy` is `+listType=atomic` without patch
/// tags upstream, so it is replaced, not merged by `resourceName`. `resources.claims` likewise.
const CONTAINER: Schema = &[
    keyed("ports", "containerPort", &[]),
    keyed("env", "name", &[]),
    keyed("volumeMounts", "mountPath", &[]),
    keyed("volumeDevices", "devicePath", &[]),
];

/// `PodSpec`. `readinessGates` and `tolerations` carry no patch tags upstream.
const POD_SPEC: Schema = &[
    keyed("volumes", "name", &[]),
    keyed("initContainers", "name", CONTAINER),
    keyed("containers", "name", CONTAINER),
    keyed("ephemeralContainers", "name", CONTAINER),
    keyed("imagePullSecrets", "name", &[]),
    keyed("hostAliases", "ip", &[]),
    // The list-map key is (topologyKey, whenUnsatisfiable), but the patch key is topologyKey alone.
    keyed("topologySpreadConstraints", "topologyKey", &[]),
    keyed("schedulingGates", "name", &[]),
    keyed("resourceClaims", "name", &[]),
];

const POD_TEMPLATE_SPEC: Schema = &[object("metadata", OBJECT_META), object("spec", POD_SPEC)];

const POD_STATUS: Schema = &[
    keyed("conditions", "type", &[]),
    keyed("podIPs", "ip", &[]),
    keyed("hostIPs", "ip", &[]),
    keyed("resourceClaimStatuses", "name", &[]),
];

/// The status of every kind whose only tagged status field is `conditions`, keyed by `type`.
const CONDITIONS_STATUS: Schema = &[keyed("conditions", "type", &[])];

/// `spec` of the kinds that stamp out pods from `spec.template`.
const TEMPLATED_SPEC: Schema = &[object("template", POD_TEMPLATE_SPEC)];

const POD: Schema = &[
    object("metadata", OBJECT_META),
    object("spec", POD_SPEC),
    object("status", POD_STATUS),
];

/// Deployment, ReplicaSet, StatefulSet, DaemonSet, ReplicationController, Job.
const WORKLOAD: Schema = &[
    object("metadata", OBJECT_META),
    object("spec", TEMPLATED_SPEC),
    object("status", CONDITIONS_STATUS),
];

const CRON_JOB: Schema = &[
    object("metadata", OBJECT_META),
    object(
        "spec",
        &[object(
            "jobTemplate",
            &[object("metadata", OBJECT_META), object("spec", TEMPLATED_SPEC)],
        )],
    ),
];

const POD_TEMPLATE: Schema = &[
    object("metadata", OBJECT_META),
    object("template", POD_TEMPLATE_SPEC),
];

/// Newer Services also have a two-field list-map key (port, protocol); the patch key stays `port`.
const SERVICE: Schema = &[
    object("metadata", OBJECT_META),
    object("spec", &[keyed("ports", "port", &[])]),
    object("status", CONDITIONS_STATUS),
];

const NODE: Schema = &[
    object("metadata", OBJECT_META),
    object("spec", &[set("podCIDRs")]),
    object(
        "status",
        &[keyed("conditions", "type", &[]), keyed("addresses", "type", &[])],
    ),
];

const SERVICE_ACCOUNT: Schema = &[object("metadata", OBJECT_META), keyed("secrets", "name", &[])];

/// Namespace, HorizontalPodAutoscaler (autoscaling/v2), PersistentVolumeClaim.
const CONDITIONED: Schema = &[
    object("metadata", OBJECT_META),
    object("status", CONDITIONS_STATUS),
];

/// Kinds whose only tagged fields are in `metadata`.
const METADATA_ONLY: Schema = &[object("metadata", OBJECT_META)];

/// Schema entry point per kind. Kinds not listed here get no schema at all.
const KINDS: &[(&str, Schema)] = &[
    ("Pod", POD),
    ("Deployment", WORKLOAD),
    ("ReplicaSet", WORKLOAD),
    ("StatefulSet", WORKLOAD),
    ("DaemonSet", WORKLOAD),
    ("ReplicationController", WORKLOAD),
    ("Job", WORKLOAD),
    ("CronJob", CRON_JOB),
    ("PodTemplate", POD_TEMPLATE),
    ("Service", SERVICE),
    ("Node", NODE),
    ("ServiceAccount", SERVICE_ACCOUNT),
    ("Namespace", CONDITIONED),
    ("HorizontalPodAutoscaler", CONDITIONED),
    ("PersistentVolumeClaim", CONDITIONED),
    ("ConfigMap", METADATA_ONLY),
    ("Secret", METADATA_ONLY),
    ("Endpoints", METADATA_ONLY),
    ("EndpointSlice", METADATA_ONLY),
    ("Event", METADATA_ONLY),
    ("Lease", METADATA_ONLY),
];

/// How the field at `path` (field names from the kind's root) merges, as the
/// `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key` OpenAPI extensions say it:
/// `Some(("merge", Some(key)))` for a keyed list, `Some(("merge", None))` for a set of scalars,
/// `None` for everything that merges as untagged fields do. The OpenAPI documents are annotated
/// from this, so kubectl computes its patches from the same table the server applies them with.
pub fn field_strategy(kind: &str, path: &[&str]) -> Option<(&'static str, Option<&'static str>)> {
    let (last, parents) = path.split_last()?;
    let mut schema = schema_for(kind);
    for name in parents {
        schema = field_of(schema, name).fields;
    }
    match field_of(schema, last).list {
        ListMerge::Replace => None,
        ListMerge::Set => Some((MERGE, None)),
        ListMerge::ByKey(key) => Some((MERGE, Some(key))),
    }
}

fn schema_for(kind: &str) -> Schema {
    KINDS
        .iter()
        .find(|(name, _)| *name == kind)
        .map(|&(_, schema)| schema)
        .unwrap_or(&[])
}

// ---------------------------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------------------------

/// Upstream `mergeMap`: directives first (`$patch`, then `$retainKeys`, then `$setElementOrder`),
/// then every other key, then the `$deleteFromPrimitiveList` lists.
///
/// Upstream walks the patch in Go's random map order; running deletions last is the order its
/// `$setElementOrder` path (which kubectl always sends alongside them) already produces.
fn merge_map(mut original: Object, mut patch: Object, schema: Schema) -> Result<Object, SmpError> {
    if let Some(directive) = patch.get(PATCH_DIRECTIVE) {
        match directive.as_str() {
            Some(REPLACE) => {
                remove_key(&mut patch, PATCH_DIRECTIVE);
                return Ok(sanitize_object(patch));
            }
            // Upstream returns an empty map rather than dropping the key.
            Some(DELETE) => return Ok(Object::new()),
            Some(MERGE) => remove_key(&mut patch, PATCH_DIRECTIVE),
            _ => return Err(unknown_patch_type(directive, &patch)),
        }
    }
    apply_retain_keys(&mut original, &mut patch)?;
    apply_element_orders(&mut original, &mut patch, schema)?;

    let (deletions, changes): (Vec<_>, Vec<_>) = patch
        .into_iter()
        .partition(|(key, _)| key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX));
    for (key, value) in changes {
        let field = field_of(schema, &key);
        merge_field(&mut original, key, value, field, false)?;
    }
    for (key, value) in deletions {
        let name =
            directive_target(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX).ok_or(SmpError::BadPrimitiveList)?;
        let field = field_of(schema, name);
        merge_field(&mut original, name.to_owned(), value, field, true)?;
    }
    Ok(original)
}

/// Merges one patch entry into `original`. `deletion` marks a `$deleteFromPrimitiveList` list
/// whose target field is `key`.
fn merge_field(
    original: &mut Object,
    key: String,
    patch: Value,
    field: &Field,
    deletion: bool,
) -> Result<(), SmpError> {
    if patch.is_null() {
        remove_key(original, &key);
        return Ok(());
    }
    let Some(slot) = original.get_mut(&key) else {
        // Deleting from a list that is not there must not create it.
        if !deletion && let Some(value) = sanitize(patch) {
            original.insert(key, value);
        }
        return Ok(());
    };
    let live = std::mem::take(slot);
    match merge_value(live, patch, field, &key, deletion)? {
        Some(value) => *slot = value,
        None => remove_key(original, &key),
    }
    Ok(())
}

/// The merged value of a field present on both sides, or `None` when the field goes away.
fn merge_value(
    live: Value,
    patch: Value,
    field: &Field,
    name: &str,
    deletion: bool,
) -> Result<Option<Value>, SmpError> {
    match (live, patch) {
        (Value::Object(live), Value::Object(patch)) => {
            merge_map(live, patch, field.fields).map(|merged| Some(Value::Object(merged)))
        }
        (Value::Array(live), Value::Array(patch)) => {
            merge_list(live, patch, field, name, deletion).map(|merged| Some(Value::Array(merged)))
        }
        // A deletion list of the wrong type has nothing to delete from.
        (live, patch) if deletion && !same_json_type(&live, &patch) => Ok(Some(live)),
        (_, patch) => Ok(sanitize(patch)),
    }
}

/// Upstream `applyRetainKeysDirective`: every key the patch sets must be listed, and live keys
/// that are not listed are cleared before merging. This is how kubectl switches a Deployment
/// from RollingUpdate to Recreate without leaving `rollingUpdate` behind.
fn apply_retain_keys(original: &mut Object, patch: &mut Object) -> Result<(), SmpError> {
    let Some(retain) = patch.get(RETAIN_KEYS_DIRECTIVE).cloned() else {
        return Ok(());
    };
    remove_key(patch, RETAIN_KEYS_DIRECTIVE);
    let Value::Array(retain) = retain else {
        return Err(SmpError::BadRetainKeys);
    };
    let retained = |key: &str| retain.iter().any(|listed| listed.as_str() == Some(key));
    let unlisted = patch.iter().any(|(key, value)| {
        !value.is_null()
            && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            && !key.starts_with(SET_ELEMENT_ORDER_PREFIX)
            && !retained(key)
    });
    if unlisted {
        return Err(SmpError::BadRetainKeys);
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// $setElementOrder
// ---------------------------------------------------------------------------------------------

/// Upstream `mergePatchIntoOriginal`: each `$setElementOrder/<field>` merges `<field>` right away
/// and then orders the result. Precedence is the directive's order, then the patch list's, then
/// the live list's.
fn apply_element_orders(original: &mut Object, patch: &mut Object, schema: Schema) -> Result<(), SmpError> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|key| key.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for directive in directives {
        let Some(order) = patch.get(&directive).cloned() else {
            continue;
        };
        remove_key(patch, &directive);
        let Value::Array(order) = order else {
            return Err(type_mismatch("list", &order));
        };
        let name =
            directive_target(&directive, SET_ELEMENT_ORDER_PREFIX).ok_or(SmpError::BadSetElementOrder)?;
        apply_element_order(original, patch, name, order, field_of(schema, name))?;
    }
    Ok(())
}

fn apply_element_order(
    original: &mut Object,
    patch: &mut Object,
    name: &str,
    order: Vec<Value>,
    field: &Field,
) -> Result<(), SmpError> {
    let key = field.list.merge_key();
    let live = match original.get_mut(name) {
        None => None,
        Some(Value::Array(items)) => Some(std::mem::take(items)),
        Some(other) => return Err(type_mismatch("list", other)),
    };
    let patched = match patch.get(name).cloned() {
        None => None,
        Some(Value::Array(items)) => Some(items),
        Some(other) => return Err(type_mismatch("list", &other)),
    };
    remove_key(patch, name);
    validate_order(patched.as_deref().unwrap_or_default(), &order, key)?;

    let kind = element_kind(
        live.as_deref().unwrap_or_default(),
        patched.as_deref().unwrap_or_default(),
    )?;
    let Some(kind) = kind else {
        if let Some(items) = patched.or(live) {
            original.insert(name.to_owned(), Value::Array(items));
        }
        return Ok(());
    };
    if kind == ElementKind::Object && key.is_none() {
        return Err(SmpError::NoMergeKey {
            field: name.to_owned(),
        });
    }
    let live_ids = ids(live.as_deref().unwrap_or_default(), key)?;
    let order_ids = ids(&order, key)?;
    let merged = match (live, patched) {
        (Some(live), None) => live,
        (None, Some(patched)) => sanitize_list(patched),
        (Some(live), Some(patched)) => merge_list(live, patched, field, name, false)?,
        (None, None) => return Ok(()),
    };
    let (in_order, live_only) = partition(merged, &order_ids, key)?;
    let ordered = normalize_element_order(in_order, live_only, &order_ids, &live_ids, key);
    original.insert(name.to_owned(), Value::Array(ordered));
    Ok(())
}

/// Upstream `validatePatchWithSetOrderList`: the patch list, deletions and other directive items
/// aside, must be a subsequence of the order list.
fn validate_order(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<(), SmpError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let mut kept = Vec::with_capacity(patch.len());
    for item in patch {
        if key.is_some() {
            if !item.is_object() {
                return Err(type_mismatch("map", item));
            }
            if directive_of(item) == Some(DELETE) {
                continue;
            }
        }
        kept.push(item);
    }
    let (mut in_patch, mut in_order) = (0, 0);
    while let (Some(item), Some(wanted)) = (kept.get(in_patch), order.get(in_order)) {
        if item
            .as_object()
            .is_some_and(|map| map.contains_key(PATCH_DIRECTIVE))
        {
            in_patch += 1;
            continue;
        }
        if merge_key_values_equal(item, wanted, key)? {
            in_patch += 1;
        }
        in_order += 1;
    }
    if in_patch < kept.len() {
        return Err(SmpError::OrderMismatch {
            patch: render(patch),
            order: render(order),
        });
    }
    Ok(())
}

fn merge_key_values_equal(left: &Value, right: &Value, key: Option<&str>) -> Result<bool, SmpError> {
    match key {
        None => Ok(values_equal(left, right)),
        Some(_) => Ok(values_equal(item_id(left, key)?, item_id(right, key)?)),
    }
}

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

/// Upstream `mergeSliceHandler`: untagged lists are replaced; tagged ones, and any deletion
/// list, are merged.
fn merge_list(
    live: Vec<Value>,
    patch: Vec<Value>,
    field: &Field,
    name: &str,
    deletion: bool,
) -> Result<Vec<Value>, SmpError> {
    if field.list == ListMerge::Replace && !deletion {
        return Ok(sanitize_list(patch));
    }
    merge_slice(live, patch, field, name, deletion)
}

/// Upstream `mergeSlice`: scalars are unioned (or deleted from), objects are matched by key, and
/// the result is put in order by [`normalize_element_order`].
fn merge_slice(
    live: Vec<Value>,
    patch: Vec<Value>,
    field: &Field,
    name: &str,
    deletion: bool,
) -> Result<Vec<Value>, SmpError> {
    let Some(kind) = element_kind(&live, &patch)? else {
        return Ok(live);
    };
    let key = field.list.merge_key();
    let (live_ids, patch_ids, merged) = match kind {
        ElementKind::Scalar => {
            if deletion {
                return Ok(live.into_iter().filter(|item| !contains(&patch, item)).collect());
            }
            let (live_ids, patch_ids) = (ids(&live, key)?, ids(&patch, key)?);
            (live_ids, patch_ids, union(live, patch))
        }
        ElementKind::Object => {
            let key = key.ok_or_else(|| SmpError::NoMergeKey {
                field: name.to_owned(),
            })?;
            let (live, patch) = apply_item_directives(live, patch, key)?;
            let (live_ids, patch_ids) = (ids(&live, Some(key))?, ids(&patch, Some(key))?);
            (live_ids, patch_ids, merge_items(live, patch, key, field.fields)?)
        }
    };
    let (in_patch, live_only) = partition(merged, &patch_ids, key)?;
    Ok(normalize_element_order(
        in_patch, live_only, &patch_ids, &live_ids, key,
    ))
}

/// Upstream `mergeSliceWithSpecialElements`: applies `$patch: delete` items to the live list and
/// `$patch: replace` to the whole list, and returns the live list with the remaining patch items.
fn apply_item_directives(
    mut live: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), SmpError> {
    let mut rest = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let mut item = match item {
            Value::Object(item) => item,
            other => return Err(type_mismatch("map", &other)),
        };
        let Some(directive) = item.get(PATCH_DIRECTIVE) else {
            rest.push(Value::Object(item));
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let target = item.get(key).ok_or_else(|| missing_merge_key(&item, key))?;
                live.retain(|existing| !key_matches(existing, key, target));
            }
            // Keep scanning: the other directive items still have to be dropped.
            Some(REPLACE) => replace = true,
            Some(MERGE) => {
                remove_key(&mut item, PATCH_DIRECTIVE);
                // A bare `{"$patch": "merge"}` marker says nothing beyond the default.
                if item.contains_key(key) {
                    rest.push(Value::Object(item));
                }
            }
            _ => return Err(unknown_patch_type(directive, &item)),
        }
    }
    if replace {
        return Ok((sanitize_list(rest), Vec::new()));
    }
    Ok((live, rest))
}

/// Upstream `mergeSliceWithoutSpecialElements`: a patch item merges into the first live item
/// with its key value, or is appended. Appended items take part in matching later patch items.
fn merge_items(
    mut live: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    fields: Schema,
) -> Result<Vec<Value>, SmpError> {
    for item in patch {
        let item = match item {
            Value::Object(item) => item,
            other => return Err(type_mismatch("map", &other)),
        };
        let target = item.get(key).ok_or_else(|| missing_merge_key(&item, key))?;
        match find_by_key(&live, key, target)? {
            Some(index) => {
                if let Some(Value::Object(existing)) = live.get_mut(index) {
                    let current = std::mem::take(existing);
                    *existing = merge_map(current, item, fields)?;
                }
            }
            None => live.extend(sanitize(Value::Object(item))),
        }
    }
    Ok(live)
}

fn find_by_key(list: &[Value], key: &str, target: &Value) -> Result<Option<usize>, SmpError> {
    for (index, item) in list.iter().enumerate() {
        if !item.is_object() {
            return Err(type_mismatch("map", item));
        }
        if key_matches(item, key, target) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

fn key_matches(item: &Value, key: &str, target: &Value) -> bool {
    item.get(key).is_some_and(|value| values_equal(value, target))
}

/// Union of two scalar lists, each value once, first occurrence first. Upstream's in-place
/// deduplication scrambles the order, but [`normalize_element_order`] re-sorts every item anyway.
fn union(live: Vec<Value>, patch: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(live.len() + patch.len());
    for item in live.into_iter().chain(patch) {
        if !contains(&out, &item) {
            out.push(item);
        }
    }
    out
}

/// Splits `items` into those whose identity is in `by` and the rest, keeping their order.
fn partition(
    items: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), SmpError> {
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for item in items {
        let found = contains(by, item_id(&item, key)?);
        if found {
            inside.push(item);
        } else {
            outside.push(item);
        }
    }
    Ok((inside, outside))
}

/// Upstream `normalizeElementOrder`: sorts the patch items by `patch_order` and the live-only
/// items by `live_order`, then interleaves them. A live-only item goes first only while it sits
/// before the next patch item in the live list; a patch item the live list does not have is
/// placed at once. So without `$setElementOrder`, new items come *before* the live items that
/// follow the last matched one (upstream behaviour, e.g. `[a, b]` + `[c]` gives `[c, a, b]`).
fn normalize_element_order(
    in_patch: Vec<Value>,
    live_only: Vec<Value>,
    patch_order: &[Value],
    live_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let in_patch = sort_by_order(in_patch, patch_order, key);
    let live_only = sort_by_order(live_only, live_order, key);

    let mut out = Vec::with_capacity(in_patch.len() + live_only.len());
    let mut left = live_only.into_iter().peekable();
    let mut right = in_patch.into_iter().peekable();
    while let (Some(l), Some(r)) = (left.peek(), right.peek()) {
        let take_left = matches!(
            (position(live_order, l, key), position(live_order, r, key)),
            (Some(li), Some(ri)) if li < ri
        );
        out.extend(if take_left { left.next() } else { right.next() });
    }
    out.extend(left);
    out.extend(right);
    out
}

fn sort_by_order(mut items: Vec<Value>, order: &[Value], key: Option<&str>) -> Vec<Value> {
    items.sort_by_cached_key(|item| position(order, item, key).unwrap_or(usize::MAX));
    items
}

/// Where `item`'s identity first occurs in a list of identities.
fn position(ids: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let id = item_id(item, key).ok()?;
    ids.iter().position(|candidate| values_equal(candidate, id))
}

/// What an item is matched by: its merge-key value, or the item itself in a list without key.
fn item_id<'v>(item: &'v Value, key: Option<&str>) -> Result<&'v Value, SmpError> {
    let Some(key) = key else { return Ok(item) };
    let Value::Object(map) = item else {
        return Err(type_mismatch("map", item));
    };
    map.get(key).ok_or_else(|| missing_merge_key(map, key))
}

fn ids(items: &[Value], key: Option<&str>) -> Result<Vec<Value>, SmpError> {
    items.iter().map(|item| item_id(item, key).cloned()).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Object,
    Scalar,
}

/// Upstream `sliceElementType`: all items of both lists must share one JSON type, and that type
/// must not be a list. `None` when neither list has an item.
fn element_kind(live: &[Value], patch: &[Value]) -> Result<Option<ElementKind>, SmpError> {
    let mut items = live.iter().chain(patch);
    let Some(first) = items.next() else {
        return Ok(None);
    };
    if first.is_array() {
        return Err(SmpError::ListOfLists);
    }
    if items.any(|item| !same_json_type(first, item)) {
        return Err(SmpError::MixedElementTypes(format!(
            "{} {}",
            render(live),
            render(patch)
        )));
    }
    Ok(Some(if first.is_object() {
        ElementKind::Object
    } else {
        ElementKind::Scalar
    }))
}

// ---------------------------------------------------------------------------------------------
// Values taken from the patch as they are
// ---------------------------------------------------------------------------------------------

/// Upstream `discardNullValuesFromPatch` plus `removeDirectives`, for patch values that land in
/// the result without a live counterpart: nulls in maps go, maps carrying `$patch` go, and so do
/// the other directive keys. `None` when the value itself is a directive map.
fn sanitize(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map
                .get(PATCH_DIRECTIVE)
                .is_some_and(|directive| !directive.is_null())
            {
                return None;
            }
            Some(Value::Object(sanitize_object(map)))
        }
        Value::Array(items) => Some(Value::Array(sanitize_list(items))),
        scalar => Some(scalar),
    }
}

fn sanitize_object(map: Object) -> Object {
    map.into_iter()
        .filter(|(key, value)| !value.is_null() && !is_directive_key(key))
        .filter_map(|(key, value)| sanitize(value).map(|value| (key, value)))
        .collect()
}

fn sanitize_list(items: Vec<Value>) -> Vec<Value> {
    items.into_iter().filter_map(sanitize).collect()
}

fn is_directive_key(key: &str) -> bool {
    key == PATCH_DIRECTIVE
        || key == RETAIN_KEYS_DIRECTIVE
        || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// The field a `<prefix>/<field>` directive key names.
fn directive_target<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    key.split_once('/')
        .and_then(|(head, field)| (head == prefix).then_some(field))
}

fn directive_of(item: &Value) -> Option<&str> {
    item.get(PATCH_DIRECTIVE).and_then(Value::as_str)
}

/// Removes `key` keeping the order of the other keys, whether or not serde_json's
/// `preserve_order` is on (its `remove` is a `swap_remove` then).
fn remove_key(map: &mut Object, key: &str) {
    if map.contains_key(key) {
        map.retain(|existing, _| existing != key);
    }
}

fn contains(list: &[Value], wanted: &Value) -> bool {
    list.iter().any(|item| values_equal(item, wanted))
}

/// JSON equality with numbers compared by value: Go compares the decoded `int64`/`float64`, and
/// serde_json keeps `1` and `1.0` apart.
fn values_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(l), Value::Number(r)) => match (l.as_i64(), r.as_i64(), l.as_u64(), r.as_u64()) {
            (Some(l), Some(r), _, _) => l == r,
            (_, _, Some(l), Some(r)) => l == r,
            _ => l.as_f64() == r.as_f64(),
        },
        (Value::Array(l), Value::Array(r)) => {
            l.len() == r.len() && l.iter().zip(r).all(|(l, r)| values_equal(l, r))
        }
        (Value::Object(l), Value::Object(r)) => {
            l.len() == r.len()
                && l.iter()
                    .all(|(k, v)| r.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => left == right,
    }
}

fn same_json_type(left: &Value, right: &Value) -> bool {
    std::mem::discriminant(left) == std::mem::discriminant(right)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

fn render(items: &[Value]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

fn type_mismatch(expected: &'static str, actual: &Value) -> SmpError {
    SmpError::TypeMismatch {
        expected,
        actual: json_type(actual),
    }
}

fn missing_merge_key(item: &Object, key: &str) -> SmpError {
    SmpError::MissingMergeKey {
        key: key.to_owned(),
        item: Value::Object(item.clone()).to_string(),
    }
}

fn unknown_patch_type(directive: &Value, map: &Object) -> SmpError {
    let directive = directive
        .as_str()
        .map_or_else(|| directive.to_string(), str::to_owned);
    SmpError::UnknownPatchType {
        directive,
        map: Value::Object(map.clone()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(kind: &str, original: Value, patch: Value) -> Value {
        match apply(&original, &patch, kind) {
            Ok(value) => value,
            Err(err) => panic!("patch {patch} failed: {err}"),
        }
    }

    fn rejected(kind: &str, original: Value, patch: Value) -> SmpError {
        match apply(&original, &patch, kind) {
            Ok(value) => panic!("patch {patch} applied, giving {value}"),
            Err(err) => err,
        }
    }

    fn deployment(containers: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": containers}
                }
            }
        })
    }

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
    }

    fn template_containers(deployment: &Value) -> &Value {
        &deployment["spec"]["template"]["spec"]["containers"]
    }

    fn names(list: &Value) -> Vec<&str> {
        list.as_array()
            .map(|items| items.iter().filter_map(|item| item["name"].as_str()).collect())
            .unwrap_or_default()
    }

    fn has_directive_key(value: &Value) -> bool {
        match value {
            Value::Object(map) => map
                .iter()
                .any(|(k, v)| is_directive_key(k) || has_directive_key(v)),
            Value::Array(items) => items.iter().any(has_directive_key),
            _ => false,
        }
    }

    #[test]
    fn containers_merge_by_name_and_keep_untouched_fields() {
        let original = pod(json!({"containers": [
            {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "envoy:1"}
        ]}));
        let result = patched(
            "Pod",
            original,
            json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}),
        );
        assert_eq!(
            result["spec"]["containers"],
            json!([
                {"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "envoy:1"}
            ])
        );
    }

    #[test]
    fn set_element_order_as_kubectl_apply_sends_it() {
        let original = deployment(json!([
            {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}]}
        ]));
        let patch = json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"web"}],
            "containers":[{"image":"nginx:1.26","name":"web"}]
        }}}});
        let result = patched("Deployment", original, patch);
        assert_eq!(
            template_containers(&result),
            &json!([{"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80, "protocol": "TCP"}]}])
        );
        assert!(!has_directive_key(&result));
        assert_eq!(result["spec"]["replicas"], json!(2));
    }

    #[test]
    fn set_element_order_places_new_items_and_reorders_live_ones() {
        let original = deployment(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "new"}, {"name": "a"}],
            "containers": [{"name": "new", "image": "n"}]
        }}}});
        let result = patched("ReplicaSet", original, patch);
        assert_eq!(names(template_containers(&result)), ["b", "new", "a"]);
    }

    #[test]
    fn set_element_order_alone_reorders() {
        let original = deployment(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]
        }}}});
        let result = patched("Deployment", original, patch);
        assert_eq!(names(template_containers(&result)), ["c", "a", "b"]);
    }

    #[test]
    fn items_missing_from_set_element_order_keep_their_live_place() {
        // A server-side addition (say an injected sidecar) the client's order does not mention.
        let original = deployment(json!([{"name": "a"}, {"name": "injected"}, {"name": "b"}]));
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "b:2"}]
        }}}});
        let result = patched("Deployment", original, patch);
        assert_eq!(names(template_containers(&result)), ["a", "injected", "b"]);
    }

    #[test]
    fn kubectl_apply_removing_a_container() {
        let original = deployment(json!([{"name": "a"}, {"name": "b"}]));
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"$patch": "delete", "name": "b"}]
        }}}});
        let result = patched("Deployment", original, patch);
        assert_eq!(template_containers(&result), &json!([{"name": "a"}]));
    }

    #[test]
    fn kubectl_apply_nested_set_element_order() {
        let original =
            deployment(json!([{"name": "web", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}]}]));
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                "env": [{"name": "B", "value": "2"}],
                "image": "nginx:1.26",
                "name": "web"
            }]
        }}}});
        let result = patched("Deployment", original, patch);
        assert_eq!(
            template_containers(&result),
            &json!([{"name": "web", "image": "nginx:1.26",
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])
        );
        assert!(!has_directive_key(&result));
    }

    #[test]
    fn new_items_without_set_element_order_go_where_upstream_puts_them() {
        // Upstream's mergeSortedSlice places an unmatched patch item as soon as it is reached.
        let original = pod(json!({"containers": [{"name": "a"}, {"name": "b"}]}));
        let result = patched("Pod", original, json!({"spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(names(&result["spec"]["containers"]), ["c", "a", "b"]);

        // Upstream test "preserve the order from the patch in a merging list 2".
        let original = pod(json!({"containers": [
            {"name": "c", "env": [{"name": "1"}, {"name": "2", "value": "b"}, {"name": "3"}]}
        ]}));
        let patch = json!({"spec": {"containers": [
            {"name": "c", "env": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"}]}
        ]}});
        let result = patched("Pod", original, patch);
        assert_eq!(
            result["spec"]["containers"][0]["env"],
            json!([{"name": "2", "value": "b"}, {"name": "3", "value": "c"}, {"name": "1", "value": "a"}])
        );
    }

    #[test]
    fn patch_delete_removes_a_list_item() {
        let original = pod(json!({"containers": [{"name": "web"}, {"name": "debug"}]}));
        let patch = json!({"spec": {"containers": [{"name": "debug", "$patch": "delete"}]}});
        let result = patched("Pod", original, patch);
        assert_eq!(result["spec"]["containers"], json!([{"name": "web"}]));
    }

    #[test]
    fn patch_delete_removes_every_duplicate() {
        let original = pod(json!({"containers": [{"name": "c", "env": [
            {"name": "A", "value": "1"}, {"name": "A", "value": "2"}, {"name": "B", "value": "3"}
        ]}]}));
        let patch =
            json!({"spec": {"containers": [{"name": "c", "env": [{"name": "A", "$patch": "delete"}]}]}});
        let result = patched("Pod", original, patch);
        assert_eq!(
            result["spec"]["containers"][0]["env"],
            json!([{"name": "B", "value": "3"}])
        );
    }

    #[test]
    fn patch_replace_on_a_list() {
        let original = pod(json!({"containers": [{"name": "a", "image": "a"}, {"name": "b"}]}));
        let patch = json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "c"}]}});
        let result = patched("Pod", original, patch);
        assert_eq!(result["spec"]["containers"], json!([{"name": "c", "image": "c"}]));

        let original = pod(json!({"containers": [{"name": "a"}]}));
        let result = patched(
            "Pod",
            original,
            json!({"spec": {"containers": [{"$patch": "replace"}]}}),
        );
        assert_eq!(result["spec"]["containers"], json!([]));
    }

    #[test]
    fn patch_replace_and_delete_on_a_map() {
        let original = deployment(json!([{"name": "a"}]));
        let patch = json!({"metadata": {"labels": {"$patch": "replace", "tier": "front"}}});
        let result = patched("Deployment", original.clone(), patch);
        assert_eq!(result["metadata"]["labels"], json!({"tier": "front"}));
        assert_eq!(result["metadata"]["name"], json!("web"));

        // Upstream leaves an empty map behind rather than dropping the key.
        let result = patched(
            "Deployment",
            original,
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
        );
        assert_eq!(result["metadata"]["labels"], json!({}));
    }

    #[test]
    fn patch_merge_is_the_default() {
        let original = json!({"metadata": {"labels": {"a": "1"}}});
        let patch = json!({"metadata": {"labels": {"$patch": "merge", "b": "2"}}});
        let result = patched("ConfigMap", original, patch);
        assert_eq!(result["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn null_deletes_a_map_key() {
        let original = json!({"metadata": {"name": "x", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}});
        let patch = json!({"metadata": {"labels": {"a": null}}, "data": null, "missing": null});
        let result = patched("ConfigMap", original, patch);
        assert_eq!(result, json!({"metadata": {"name": "x", "labels": {"b": "2"}}}));
    }

    #[test]
    fn labels_map_merge() {
        let original = json!({"metadata": {"name": "x", "labels": {"app": "web", "tier": "front"}}});
        let patch = json!({"metadata": {"labels": {"tier": "back", "team": "a"}}});
        let result = patched("Service", original, patch);
        assert_eq!(
            result["metadata"]["labels"],
            json!({"app": "web", "tier": "back", "team": "a"})
        );
    }

    #[test]
    fn env_merged_by_name() {
        let original = pod(json!({"containers": [{"name": "c", "env": [
            {"name": "A", "value": "1"},
            {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ]}]}));
        let patch = json!({"spec": {"containers": [{"name": "c", "env": [
            {"name": "B", "value": "2", "valueFrom": null},
            {"name": "C", "value": "3"}
        ]}]}});
        let result = patched("Pod", original, patch);
        let env = &result["spec"]["containers"][0]["env"];
        assert_eq!(env.as_array().map(Vec::len), Some(3));
        assert!(
            env.as_array()
                .is_some_and(|e| e.contains(&json!({"name": "A", "value": "1"})))
        );
        assert!(
            env.as_array()
                .is_some_and(|e| e.contains(&json!({"name": "B", "value": "2"})))
        );
        assert!(
            env.as_array()
                .is_some_and(|e| e.contains(&json!({"name": "C", "value": "3"})))
        );
    }

    #[test]
    fn finalizers_union_and_delete_from_primitive_list() {
        let original = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}});
        let result = patched(
            "ConfigMap",
            original.clone(),
            json!({"metadata": {"finalizers": ["b", "c"]}}),
        );
        assert_eq!(result["metadata"]["finalizers"], json!(["a", "b", "c"]));

        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        let result = patched("ConfigMap", original.clone(), patch);
        assert_eq!(result["metadata"]["finalizers"], json!(["b"]));

        // Upstream "add and delete items in lists of scalars", as kubectl apply sends it.
        let original = json!({"metadata": {"finalizers": ["1", "2", "3"]}});
        let patch = json!({"metadata": {
            "$setElementOrder/finalizers": ["1", "2", "4"],
            "$deleteFromPrimitiveList/finalizers": ["3"],
            "finalizers": ["4"]
        }});
        let result = patched("Secret", original, patch);
        assert_eq!(result["metadata"]["finalizers"], json!(["1", "2", "4"]));
        assert!(!has_directive_key(&result));
    }

    #[test]
    fn delete_from_primitive_list_never_creates_the_list() {
        let original = json!({"metadata": {"name": "x"}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        assert_eq!(patched("ConfigMap", original.clone(), patch), original);
    }

    #[test]
    fn delete_from_primitive_list_works_on_untagged_lists_too() {
        let original = pod(json!({"containers": [{"name": "c", "args": ["-a", "-b", "-c"]}]}));
        let patch = json!({"spec": {"containers": [{"name": "c", "$deleteFromPrimitiveList/args": ["-b"]}]}});
        let result = patched("Pod", original, patch);
        assert_eq!(result["spec"]["containers"][0]["args"], json!(["-a", "-c"]));
    }

    #[test]
    fn retain_keys_switches_rolling_update_to_recreate() {
        let original = deployment(json!([{"name": "a"}]));
        let patch =
            json!({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}});
        let result = patched("Deployment", original, patch);
        assert_eq!(result["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn retain_keys_on_a_volume_item() {
        let original = pod(json!({"volumes": [{"name": "v", "emptyDir": {}}]}));
        let patch = json!({"spec": {
            "$setElementOrder/volumes": [{"name": "v"}],
            "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "name": "v"}]
        }});
        let result = patched("Pod", original, patch);
        assert_eq!(
            result["spec"]["volumes"],
            json!([{"name": "v", "configMap": {"name": "cm"}}])
        );
    }

    #[test]
    fn unknown_kind_replaces_lists_and_merges_maps() {
        let original = json!({"metadata": {"finalizers": ["a"], "labels": {"x": "1"}},
                              "spec": {"containers": [{"name": "a", "image": "a"}, {"name": "b"}]}});
        let patch = json!({"metadata": {"finalizers": ["b"], "labels": {"y": "2"}},
                           "spec": {"containers": [{"name": "a", "image": "a:2"}]}});
        let result = patched("Widget", original, patch);
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "a", "image": "a:2"}])
        );
        assert_eq!(result["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(result["metadata"]["labels"], json!({"x": "1", "y": "2"}));
    }

    #[test]
    fn other_schemas_merge_by_their_keys() {
        let service = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
        let result = patched(
            "Service",
            service,
            json!({"spec": {"ports": [{"port": 80, "name": "http"}]}}),
        );
        assert_eq!(
            result["spec"]["ports"],
            json!([{"port": 80, "targetPort": 8080, "name": "http"}, {"port": 443}])
        );

        let node = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure"}],
                                     "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let result = patched("Node", node, patch);
        assert_eq!(
            result["status"]["conditions"][0],
            json!({"type": "Ready", "status": "True"})
        );
        assert_eq!(result["status"]["conditions"][1], json!({"type": "DiskPressure"}));

        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "job", "image": "a", "command": ["run"]}]
        }}}}}});
        let patch = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "job", "image": "b"}]
        }}}}}});
        let result = patched("CronJob", cron, patch);
        assert_eq!(
            result["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
            json!([{"name": "job", "image": "b", "command": ["run"]}])
        );
    }

    #[test]
    fn merge_keys_compare_numbers_by_value() {
        let original = pod(json!({"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}));
        let patch = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80.0, "name": "http"}]}]}});
        let result = patched("Pod", original, patch);
        assert_eq!(
            result["spec"]["containers"][0]["ports"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn values_without_a_live_counterpart_lose_directives_and_nulls() {
        // Upstream test "nested patch merge with empty list".
        let patch =
            json!({"spec": {"containers": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]}});
        let result = patched("Pod", pod(json!({})), patch);
        assert_eq!(result["spec"]["containers"], json!([{"name": "hello"}]));

        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "hello"}, {"name": "doesntexist"}],
            "containers": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]
        }});
        let result = patched("Pod", pod(json!({"containers": [{"name": "hello2"}]})), patch);
        assert_eq!(names(&result["spec"]["containers"]), ["hello", "hello2"]);

        let patch = json!({"spec": {"securityContext": {"runAsUser": 1, "fsGroup": null,
            "$retainKeys": ["runAsUser"], "seLinuxOptions": {"$patch": "delete"}}}});
        let result = patched("Pod", pod(json!({})), patch);
        assert_eq!(result["spec"]["securityContext"], json!({"runAsUser": 1}));
    }

    #[test]
    fn original_null_is_an_empty_object() {
        let result = patched("Pod", Value::Null, json!({"metadata": {"name": "p"}}));
        assert_eq!(result, json!({"metadata": {"name": "p"}}));
    }

    #[test]
    fn bad_patch_directive_is_an_error() {
        let err = rejected("Pod", pod(json!({})), json!({"spec": {"$patch": "explode"}}));
        assert!(matches!(err, SmpError::UnknownPatchType { .. }), "{err}");
        assert!(
            err.to_string().starts_with("unknown patch type: explode"),
            "{err}"
        );

        let original = pod(json!({"containers": [{"name": "a"}]}));
        let err = rejected(
            "Pod",
            original,
            json!({"spec": {"containers": [{"name": "a", "$patch": 7}]}}),
        );
        assert!(matches!(err, SmpError::UnknownPatchType { .. }), "{err}");
    }

    #[test]
    fn item_missing_its_merge_key_is_an_error() {
        let original = pod(json!({"containers": [{"name": "a"}]}));
        let err = rejected(
            "Pod",
            original.clone(),
            json!({"spec": {"containers": [{"image": "x"}]}}),
        );
        assert!(matches!(err, SmpError::MissingMergeKey { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("does not contain declared merge key: name"),
            "{err}"
        );

        let err = rejected(
            "Pod",
            original,
            json!({"spec": {"containers": [{"$patch": "delete"}]}}),
        );
        assert!(matches!(err, SmpError::MissingMergeKey { .. }), "{err}");
    }

    #[test]
    fn non_object_patch_is_an_error() {
        for patch in [json!([]), json!("x"), json!(1), json!(null), json!(true)] {
            let err = rejected("Pod", pod(json!({})), patch);
            assert!(matches!(err, SmpError::PatchNotAnObject(_)), "{err}");
        }
        let err = rejected("Pod", json!([1]), json!({}));
        assert!(matches!(err, SmpError::OriginalNotAnObject("list")), "{err}");
    }

    #[test]
    fn malformed_directives_are_errors() {
        let original = deployment(json!([{"name": "a"}, {"name": "b"}]));
        let cases = [
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
            json!({"metadata": {"$setElementOrderfinalizers": ["a"]}}),
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": {"name": "a"}}}}}),
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b"}, {"name": "a"}]
            }}}}),
            json!({"spec": {"template": {"spec": {"containers": [["a"]]}}}}),
            json!({"spec": {"template": {"spec": {"containers": ["a"]}}}}),
        ];
        for patch in cases {
            let result = apply(&original, &patch, "Deployment");
            assert!(result.is_err(), "{patch} gave {result:?}");
        }
        let order = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b"}, {"name": "a"}]
        }}}});
        assert!(matches!(
            apply(&original, &order, "Deployment"),
            Err(SmpError::OrderMismatch { .. })
        ));
        let original = json!({"metadata": {"finalizers": ["x"]}});
        let nested = json!({"metadata": {"finalizers": [["a"]]}});
        assert!(matches!(
            apply(&original, &nested, "Pod"),
            Err(SmpError::MixedElementTypes(_))
        ));
        let objects = json!({"metadata": {"finalizers": [{"name": "a"}]}});
        assert!(matches!(
            apply(&original, &objects, "Pod"),
            Err(SmpError::MixedElementTypes(_))
        ));
        let original = json!({"metadata": {"finalizers": []}});
        assert!(matches!(
            apply(&original, &nested, "Pod"),
            Err(SmpError::ListOfLists)
        ));
        assert!(matches!(
            apply(&original, &objects, "Pod"),
            Err(SmpError::NoMergeKey { .. })
        ));
    }

    /// A tiny deterministic generator: arbitrary JSON, heavy on directive keys and schema names.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            let len = from.len() as u64;
            from[usize::try_from(self.next() % len).unwrap_or(0)]
        }

        fn value(&mut self, depth: u32, keys: &[&str]) -> Value {
            let choice = if depth == 0 {
                self.next() % 5
            } else {
                self.next() % 8
            };
            match choice {
                0 => Value::Null,
                1 => json!(self.next().is_multiple_of(3)),
                2 => json!(self.next() % 4),
                3 => json!(self.pick(&["a", "b", "delete", "replace", "merge", "name"])),
                4 => json!(2.5),
                5 | 6 => {
                    let mut map = Object::new();
                    for _ in 0..self.next() % 5 {
                        let key = self.pick(keys).to_owned();
                        map.insert(key, self.value(depth - 1, keys));
                    }
                    Value::Object(map)
                }
                _ => Value::Array(
                    (0..self.next() % 4)
                        .map(|_| self.value(depth - 1, keys))
                        .collect(),
                ),
            }
        }
    }

    #[test]
    fn arbitrary_input_never_panics_and_never_leaks_directives() {
        const FIELDS: &[&str] = &[
            "spec",
            "template",
            "metadata",
            "containers",
            "name",
            "env",
            "ports",
            "containerPort",
            "finalizers",
            "labels",
            "status",
            "conditions",
            "type",
            "volumes",
            "strategy",
            "image",
        ];
        const PATCH_KEYS: &[&str] = &[
            "spec",
            "template",
            "metadata",
            "containers",
            "name",
            "env",
            "ports",
            "containerPort",
            "finalizers",
            "labels",
            "status",
            "conditions",
            "type",
            "volumes",
            "strategy",
            "image",
            "$patch",
            "$retainKeys",
            "$setElementOrder/containers",
            "$setElementOrder/finalizers",
            "$deleteFromPrimitiveList/finalizers",
            "$setElementOrder/env",
            "$setElementOrderX",
        ];
        let kinds = ["Pod", "Deployment", "Node", "Service", "Widget"];
        let mut generator = Gen(0x9E37_79B9_7F4A_7C15);
        let (mut ok, mut err) = (0, 0);
        for round in 0..20_000 {
            let original = generator.value(5, FIELDS);
            let patch = generator.value(5, PATCH_KEYS);
            match apply(&original, &patch, kinds[round % kinds.len()]) {
                Ok(result) => {
                    ok += 1;
                    assert!(!has_directive_key(&result), "{original} + {patch} = {result}");
                }
                Err(_) => err += 1,
            }
        }
        assert!(ok > 1000 && err > 100, "ok {ok}, err {err}");
    }
}
