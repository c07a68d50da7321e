//! Every decoder a request body or query string reaches, fed arbitrary bytes: JSON, YAML and protobuf
//! object bodies, the four patch types applied to a stored object, label and field selectors. A panic
//! or a hang is a bug; an error is the expected answer to garbage.
#![no_main]

use control_plane::api::http::decode_body;
use control_plane::api::patch::{self, PatchType};
use control_plane::api::selectors::{FieldSelector, LabelSelector};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&str; 4] =
    ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf", "text/plain"];
const PATCH_TYPES: [PatchType; 4] = [PatchType::Json, PatchType::Merge, PatchType::Strategic, PatchType::Apply];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let _ = decode_body(CONTENT_TYPES[usize::from(selector % 4)], body);

    let patch_type = PATCH_TYPES[usize::from((selector >> 2) % 4)];
    if let Ok(parsed) = patch::parse(patch_type, body) {
        let stored = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a"]},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "nginx",
                "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]}]}}},
        });
        let _ = patch::apply(patch_type, &stored, &parsed, "Deployment");
    }

    if let Ok(text) = std::str::from_utf8(body) {
        let _ = LabelSelector::parse(text);
        let _ = FieldSelector::parse(text, "Pod");
        let _ = FieldSelector::parse(text, "Event");
    }
});
