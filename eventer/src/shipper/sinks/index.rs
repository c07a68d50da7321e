//! The log index sink: events indexed beside the logs, so one search finds both. The index itself is the
//! log pipeline's (crate `logpipe`, which `eventer` may not depend on): it hands the shipper an
//! `EventIndex` at construction. A process without one refuses a `logIndex` sink at start.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::SinkError;
use crate::shipper::record::Record;

/// What the log pipeline offers the shipper.
pub trait EventIndex: Send + Sync + 'static {
    /// Indexes `records`, succeeding once they are durable in the index (searchable after its next
    /// commit), so the shipper may forget them.
    fn index<'a>(&'a self, records: &'a [Record]) -> BoxFuture<'a, Result<(), String>>;
}

pub struct IndexSink {
    index: Arc<dyn EventIndex>,
}

impl IndexSink {
    pub fn new(index: Arc<dyn EventIndex>) -> Self {
        IndexSink { index }
    }

    pub async fn deliver(&mut self, records: &[Record]) -> Result<(), SinkError> {
        self.index.index(records).await.map_err(SinkError::Index)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use k8s_openapi::api::core::v1::Event;

    use super::*;

    /// An index that keeps what it is given, and fails while told to.
    #[derive(Default)]
    struct Kept {
        records: Mutex<Vec<String>>,
        failing: Mutex<bool>,
    }

    impl EventIndex for Kept {
        fn index<'a>(&'a self, records: &'a [Record]) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                if *self.failing.lock().unwrap() {
                    return Err("the index is closed".into());
                }
                self.records
                    .lock()
                    .unwrap()
                    .extend(records.iter().map(|r| r.delivery_id.clone()));
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn records_reach_the_index_and_its_failures_are_the_sinks() {
        let kept = Arc::new(Kept::default());
        let mut sink = IndexSink::new(kept.clone());
        let record = Record::new(Event::default());
        sink.deliver(std::slice::from_ref(&record)).await.unwrap();
        *kept.failing.lock().unwrap() = true;
        let error = sink.deliver(std::slice::from_ref(&record)).await.unwrap_err();
        assert!(error.to_string().contains("the index is closed"), "{error}");
        assert_eq!(*kept.records.lock().unwrap(), ["-1"]);
    }
}
