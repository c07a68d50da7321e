//! What a sink receives for an event: the event as the API served it, with a delivery id.

use k8s_openapi::api::core::v1::Event;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// `<event uid>-<count>`: the same for every delivery of one state of one event, so receivers can
    /// drop the duplicates that at-least-once delivery allows; a new occurrence counted onto the event
    /// (a higher count) is a new delivery.
    pub delivery_id: String,
    pub event: Event,
}

impl Record {
    pub fn new(event: Event) -> Self {
        let uid = event.metadata.uid.as_deref().unwrap_or_default();
        let count = occurrences(&event);
        Record {
            delivery_id: format!("{uid}-{count}"),
            event,
        }
    }
}

/// How many times the event has occurred: its series count, else its count, else once.
pub fn occurrences(event: &Event) -> i32 {
    event
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(event.count)
        .unwrap_or(1)
}
