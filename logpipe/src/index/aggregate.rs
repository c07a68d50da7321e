//! Counting what matches: a histogram of lines over time (the UI's bar chart) and the top values of a
//! keyword field (facets).

use std::sync::Arc;

use serde::Serialize;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::{AggContextParams, AggregationCollector, AggregationLimitsGuard};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::ColumnValues;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::LogIndex;
use super::search::{SearchError, SearchRequest};

/// Values each partition contributes to a field's top values.
const PER_PARTITION: usize = 1000;

/// The most buckets a histogram may have.
pub const MAX_BUCKETS: i64 = 2000;

#[derive(Debug, Serialize)]
pub struct Bucket {
    pub start: jiff::Timestamp,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct FieldValue {
    pub value: String,
    pub count: u64,
}

/// Counts matching lines per interval from `start`.
struct Histogram {
    start: i64,
    interval: i64,
    buckets: usize,
}

struct SegmentHistogram {
    ts: Option<Arc<dyn ColumnValues<i64>>>,
    start: i64,
    interval: i64,
    counts: Vec<u64>,
}

impl Collector for Histogram {
    type Fruit = Vec<u64>;
    type Child = SegmentHistogram;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<SegmentHistogram> {
        Ok(SegmentHistogram {
            ts: segment
                .fast_fields()
                .i64("ts")
                .ok()
                .map(|c| c.first_or_default_col(0)),
            start: self.start,
            interval: self.interval,
            counts: vec![0; self.buckets],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u64>>) -> tantivy::Result<Vec<u64>> {
        let mut total = vec![0; self.buckets];
        for fruit in fruits {
            for (sum, n) in total.iter_mut().zip(fruit) {
                *sum += n;
            }
        }
        Ok(total)
    }
}

impl SegmentCollector for SegmentHistogram {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: DocId, _: Score) {
        let Some(ts) = &self.ts else { return };
        let offset = ts.get_val(doc) - self.start;
        if offset >= 0
            && let Some(count) = self.counts.get_mut((offset / self.interval) as usize)
        {
            *count += 1;
        }
    }

    fn harvest(self) -> Vec<u64> {
        self.counts
    }
}

impl LogIndex {
    /// Lines matching `request` (its `start` and `end` required) per `interval`.
    pub fn histogram(
        &self,
        request: &SearchRequest,
        interval: std::time::Duration,
    ) -> Result<Vec<Bucket>, SearchError> {
        let (Some(start), Some(end)) = (request.start, request.end) else {
            return Err(SearchError::Parameter("a histogram needs start and end".into()));
        };
        let interval = i64::try_from(interval.as_nanos()).unwrap_or(i64::MAX);
        if interval < 1_000_000 {
            return Err(SearchError::Parameter("interval must be at least 1ms".into()));
        }
        let span = end.as_nanosecond() as i64 - start.as_nanosecond() as i64;
        let buckets = (span + interval - 1) / interval;
        if buckets > MAX_BUCKETS {
            return Err(SearchError::Parameter(format!(
                "{buckets} buckets asked for; at most {MAX_BUCKETS}: widen the interval"
            )));
        }
        let query = self.query(request)?;
        let collector = Histogram {
            start: start.as_nanosecond() as i64,
            interval,
            buckets: buckets.max(0) as usize,
        };
        let mut counts = vec![0u64; collector.buckets];
        for searcher in self.searchers(Some(collector.start), super::search::nanos(Some(end))) {
            for (sum, count) in counts.iter_mut().zip(searcher.search(&query, &collector)?) {
                *sum += count;
            }
        }
        Ok(counts
            .into_iter()
            .enumerate()
            .map(|(i, count)| Bucket {
                start: jiff::Timestamp::from_nanosecond(i128::from(collector.start + i as i64 * interval))
                    .unwrap_or_default(),
                count,
            })
            .collect())
    }

    /// The `size` most frequent values of the keyword `field` among the lines matching `request`.
    pub fn top_values(
        &self,
        request: &SearchRequest,
        field: &str,
        size: usize,
    ) -> Result<Vec<FieldValue>, SearchError> {
        if !super::search::is_keyword(field) {
            return Err(SearchError::Parameter(format!(
                "{field:?} is not a keyword field; use one of {}",
                super::KEYWORDS.join(", ")
            )));
        }
        // Each partition's top values, summed: exact while a partition has no more than `PER_PARTITION`
        // values (the top of a sum can miss a value that is just below the top in every partition).
        let aggregations: Aggregations = serde_json::from_value(serde_json::json!(
            {"top": {"terms": {"field": field, "size": size.max(PER_PARTITION)}}}
        ))
        .map_err(|e| SearchError::Parameter(e.to_string()))?;
        let collector = AggregationCollector::from_aggs(
            aggregations,
            AggContextParams::new(AggregationLimitsGuard::default(), self.tokenizers()),
        );
        let query = self.query(request)?;
        let range = (
            super::search::nanos(request.start),
            super::search::nanos(request.end),
        );
        let mut counts: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        for searcher in self.searchers(range.0, range.1) {
            let results = searcher.search(&query, &collector)?;
            let json = serde_json::to_value(results).unwrap_or_default();
            for bucket in json["top"]["buckets"].as_array().into_iter().flatten() {
                if let (Some(value), Some(count)) = (bucket["key"].as_str(), bucket["doc_count"].as_u64())
                    && !value.is_empty()
                {
                    *counts.entry(value.to_string()).or_default() += count;
                }
            }
        }
        let mut values: Vec<FieldValue> = counts
            .into_iter()
            .map(|(value, count)| FieldValue { value, count })
            .collect();
        values.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        values.truncate(size);
        Ok(values)
    }
}
