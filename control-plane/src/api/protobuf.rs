// TEMPORARY placeholder until the real module lands (being written in parallel).
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("protobuf bodies are not decoded yet")]
    Unimplemented,
}
pub fn decode(_body: &[u8]) -> Result<serde_json::Value, ProtobufError> {
    Err(ProtobufError::Unimplemented)
}
