//! PATCH bodies: the four patch types the API server accepts and how each applies to an object.
//!
//! Server-side apply is simplified: the applied configuration is merged into the live object with
//! strategic-merge semantics and created when absent; there is no field-ownership tracking
//! (`managedFields`), so fields dropped from an applied configuration are not removed and there are no
//! apply conflicts.

use serde_json::Value;

use super::error::ApiError;
use super::strategic_merge;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 6902, `application/json-patch+json`.
    Json,
    /// RFC 7386, `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// Server-side apply, `application/apply-patch+yaml`.
    Apply,
}

impl PatchType {
    pub const ACCEPTED: &str = "application/json-patch+json, application/merge-patch+json, \
application/strategic-merge-patch+json, application/apply-patch+yaml";

    /// The patch type of a request's `Content-Type` (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        match essence {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// Parses a patch body.
pub fn parse(patch_type: PatchType, body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = match patch_type {
        PatchType::Apply => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?,
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?,
    };
    let shape_ok = match patch_type {
        PatchType::Json => value.is_array(),
        _ => value.is_object(),
    };
    if !shape_ok {
        let expected = if patch_type == PatchType::Json {
            "a JSON array"
        } else {
            "a JSON object"
        };
        return Err(ApiError::BadRequest(format!(
            "error decoding patch: the patch must be {expected}"
        )));
    }
    Ok(value)
}

/// Applies a parsed patch to `current`, an object of `kind`.
pub fn apply(patch_type: PatchType, current: &Value, patch: &Value, kind: &str) -> Result<Value, ApiError> {
    match patch_type {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &ops)
                .map_err(|e| ApiError::BadRequest(format!("the JSON patch could not be applied: {e}")))?;
            Ok(doc)
        }
        PatchType::Merge => {
            let mut doc = current.clone();
            json_patch::merge(&mut doc, patch);
            Ok(doc)
        }
        PatchType::Strategic | PatchType::Apply => {
            strategic_merge::apply(current, patch, kind).map_err(|e| {
                ApiError::BadRequest(format!("the strategic merge patch could not be applied: {e}"))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    #[test]
    fn merge_and_json_patches() {
        let current = json!({"spec": {"replicas": 1, "paused": true}});
        let merged = apply(
            PatchType::Merge,
            &current,
            &json!({"spec": {"replicas": 4, "paused": null}}),
            "Deployment",
        );
        assert_eq!(merged.unwrap(), json!({"spec": {"replicas": 4}}));
        let ops = json!([{"op": "replace", "path": "/spec/replicas", "value": 2}]);
        assert_eq!(
            apply(PatchType::Json, &current, &ops, "Deployment").unwrap()["spec"]["replicas"],
            2
        );
        let missing = json!([{"op": "replace", "path": "/spec/nope/x", "value": 2}]);
        assert!(apply(PatchType::Json, &current, &missing, "Deployment").is_err());
        assert!(parse(PatchType::Json, b"{}").is_err());
        assert!(parse(PatchType::Merge, b"[]").is_err());
        assert!(parse(PatchType::Merge, b"{not json").is_err());
    }
}
