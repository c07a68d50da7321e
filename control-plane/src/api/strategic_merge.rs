// TEMPORARY placeholder until the real module lands (being written in parallel).
#[derive(Debug, thiserror::Error)]
pub enum SmpError {
    #[error("not implemented")]
    Unimplemented,
}
pub fn apply(original: &serde_json::Value, patch: &serde_json::Value, _kind: &str) -> Result<serde_json::Value, SmpError> {
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}
