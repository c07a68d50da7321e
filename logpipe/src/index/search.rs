//! Searching the index: a tantivy (Lucene-style) query over `message` by default, with field terms
//! (`pod:web-1`, `level:error`), phrases, booleans and ranges; a time range; newest first (time, then
//! indexing order); a cursor that pages without repeating or skipping a line.

use std::ops::Bound;

use serde::Serialize;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, Score, SegmentReader, TantivyDocument, Term};

use super::{KEYWORDS, LogIndex, line_of};
use crate::record::LogLine;

/// The most hits one request may ask for.
pub const MAX_LIMIT: usize = 1000;

#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    pub query: String,
    pub start: Option<jiff::Timestamp>,
    pub end: Option<jiff::Timestamp>,
    pub limit: usize,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    pub hits: Vec<Hit>,
    pub next_cursor: Option<String>,
    pub total: usize,
}

/// A line found, with where the query's words are in its message.
#[derive(Debug, Serialize)]
pub struct Hit {
    #[serde(flatten)]
    pub line: LogLine,
    /// Byte ranges `[start, end)` of `message` that match words of the query.
    pub highlights: Vec<[usize; 2]>,
}

/// What is wrong with a request (a 400 for the API).
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query does not parse.
    #[error("invalid query: {0}")]
    Query(String),
    /// A parameter is out of range or malformed.
    #[error("{0}")]
    Parameter(String),
    /// The index failed.
    #[error("searching the index failed: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// A page position: the last hit's time and sequence number.
fn parse_cursor(cursor: &str) -> Result<(i64, u64), SearchError> {
    let bad = || {
        SearchError::Parameter(format!(
            "invalid cursor {cursor:?}: pass back a nextCursor unchanged"
        ))
    };
    let (ts, seq) = cursor.split_once('-').ok_or_else(bad)?;
    Ok((ts.parse().map_err(|_| bad())?, seq.parse().map_err(|_| bad())?))
}

impl LogIndex {
    /// The query of a request, time range included (the cursor is applied apart).
    pub(super) fn query(&self, request: &SearchRequest) -> Result<Box<dyn Query>, SearchError> {
        let f = self.fields;
        let parser = self.query_parser();
        let parsed: Box<dyn Query> = if request.query.trim().is_empty() {
            Box::new(AllQuery)
        } else {
            parser
                .parse_query(&request.query)
                .map_err(|e| SearchError::Query(e.to_string()))?
        };
        if let (Some(start), Some(end)) = (request.start, request.end)
            && start > end
        {
            return Err(SearchError::Parameter(format!(
                "start {start} is after end {end}"
            )));
        }
        if request.start.is_none() && request.end.is_none() {
            return Ok(parsed);
        }
        let term = |t: jiff::Timestamp| Term::from_field_i64(f.ts, t.as_nanosecond() as i64);
        let range = RangeQuery::new(
            request
                .start
                .map_or(Bound::Unbounded, |t| Bound::Included(term(t))),
            request.end.map_or(Bound::Unbounded, |t| Bound::Excluded(term(t))),
        );
        Ok(Box::new(BooleanQuery::new(vec![
            (Occur::Must, parsed),
            (Occur::Must, Box::new(range)),
        ])))
    }

    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse, SearchError> {
        if request.limit == 0 || request.limit > MAX_LIMIT {
            return Err(SearchError::Parameter(format!(
                "limit must be between 1 and {MAX_LIMIT}, not {}",
                request.limit
            )));
        }
        let f = self.fields;
        let query = self.query(request)?;
        let words = self.message_terms(&*query);
        let searchers = self.searchers(nanos(request.start), nanos(request.end));
        let mut total = 0;
        for searcher in &searchers {
            total += searcher.search(&query, &Count)?;
        }
        let paged: Box<dyn Query> = match &request.cursor {
            None => query,
            Some(cursor) => {
                let (ts, seq) = parse_cursor(cursor)?;
                // Strictly after the cursor in newest-first order: older time, or the same time and an
                // earlier sequence number.
                let older =
                    RangeQuery::new(Bound::Unbounded, Bound::Excluded(Term::from_field_i64(f.ts, ts)));
                let same_time = BooleanQuery::new(vec![
                    (
                        Occur::Must,
                        Box::new(TermQuery::new(
                            Term::from_field_i64(f.ts, ts),
                            IndexRecordOption::Basic,
                        )) as Box<dyn Query>,
                    ),
                    (
                        Occur::Must,
                        Box::new(RangeQuery::new(
                            Bound::Unbounded,
                            Bound::Excluded(Term::from_field_u64(f.seq, seq)),
                        )),
                    ),
                ]);
                let after = BooleanQuery::new(vec![
                    (Occur::Should, Box::new(older) as Box<dyn Query>),
                    (Occur::Should, Box::new(same_time)),
                ]);
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, query),
                    (Occur::Must, Box::new(after)),
                ]))
            }
        };
        let newest_first = TopDocs::with_limit(request.limit).tweak_score(move |segment: &SegmentReader| {
            let ts = segment
                .fast_fields()
                .i64("ts")
                .ok()
                .map(|c| c.first_or_default_col(0));
            let seq = segment
                .fast_fields()
                .u64("seq")
                .ok()
                .map(|c| c.first_or_default_col(0));
            move |doc: DocId, _score: Score| {
                (
                    ts.as_ref().map_or(0, |c| c.get_val(doc)),
                    seq.as_ref().map_or(0, |c| c.get_val(doc)),
                )
            }
        });
        // The newest of each partition, then the newest of those.
        let mut top: Vec<((i64, u64), usize, DocAddress)> = Vec::new();
        for (i, searcher) in searchers.iter().enumerate() {
            for (order, address) in searcher.search(&paged, &newest_first)? {
                top.push((order, i, address));
            }
        }
        top.sort_unstable_by_key(|hit| std::cmp::Reverse(hit.0));
        top.truncate(request.limit);
        let mut hits = Vec::with_capacity(top.len());
        let mut last = None;
        for (_, i, address) in &top {
            let doc: TantivyDocument = searchers[*i].doc(*address)?;
            let (line, ts, seq) = line_of(&f, &doc);
            let highlights = self.highlights(&line.message, &words);
            hits.push(Hit { line, highlights });
            last = Some((ts, seq));
        }
        let next_cursor = (top.len() == request.limit)
            .then_some(last)
            .flatten()
            .map(|(ts, seq)| format!("{ts}-{seq}"));
        Ok(SearchResponse {
            hits,
            next_cursor,
            total,
        })
    }
}

impl LogIndex {
    /// The words a query looks for in `message` (as the tokenizer made them).
    fn message_terms(&self, query: &dyn Query) -> std::collections::HashSet<String> {
        let mut words = std::collections::HashSet::new();
        query.query_terms(&mut |term, _| {
            if term.field() == self.fields.message
                && let Some(text) = term.value().as_str()
            {
                words.insert(text.to_string());
            }
        });
        words
    }

    /// Where `words` are in `message`, by the same tokenizer that indexed it.
    fn highlights(&self, message: &str, words: &std::collections::HashSet<String>) -> Vec<[usize; 2]> {
        let mut out = Vec::new();
        if words.is_empty() {
            return out;
        }
        let Some(mut tokenizer) = self.tokenizers().get("default") else {
            return out;
        };
        let mut tokens = tokenizer.token_stream(message);
        while tokens.advance() {
            let token = tokens.token();
            if words.contains(&token.text) {
                out.push([token.offset_from, token.offset_to]);
            }
        }
        out
    }

    /// Lines matching `query` indexed after sequence number `after` (all of them when `None`), oldest
    /// first, at most `limit`: the live tail's step. Returns them with their sequence numbers.
    pub fn after(
        &self,
        query: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(LogLine, u64)>, SearchError> {
        let f = self.fields;
        let request = SearchRequest {
            query: query.to_string(),
            ..SearchRequest::default()
        };
        let parsed = self.query(&request)?;
        // Only final lines (committed with their positions): a line still to come from a partition not
        // reloaded yet has a lower number than some already visible elsewhere.
        let visible = self.visible();
        let from = after.map_or(Bound::Unbounded, |seq| {
            Bound::Excluded(Term::from_field_u64(f.seq, seq))
        });
        let query: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
            (Occur::Must, parsed),
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    from,
                    Bound::Excluded(Term::from_field_u64(f.seq, visible)),
                )),
            ),
        ]));
        // Oldest first: the smallest sequence numbers rank highest.
        let oldest_first = TopDocs::with_limit(limit).tweak_score(move |segment: &SegmentReader| {
            let seq = segment
                .fast_fields()
                .u64("seq")
                .ok()
                .map(|c| c.first_or_default_col(0));
            move |doc: DocId, _score: Score| u64::MAX - seq.as_ref().map_or(0, |c| c.get_val(doc))
        });
        let mut out = Vec::new();
        for partition in self.partitions() {
            if partition.stats().docs == 0 || after.is_some_and(|a| partition.stats().max_seq <= a) {
                continue;
            }
            let searcher = partition.reader.searcher();
            for (_, address) in searcher.search(&query, &oldest_first)? {
                let doc: TantivyDocument = searcher.doc(address)?;
                let (line, _, seq) = line_of(&f, &doc);
                out.push((line, seq));
            }
        }
        out.sort_unstable_by_key(|(_, seq)| *seq);
        out.truncate(limit);
        Ok(out)
    }

    /// The sequence number of the newest final line, if any (at most the last number published: the
    /// live tail starts after it and must miss no line still to become visible).
    pub fn newest_seq(&self) -> Option<u64> {
        let visible = self.visible();
        self.newest_indexed_seq()
            .map(|n| n.min(visible.saturating_sub(1)))
            .filter(|_| visible > 0)
    }

    fn newest_indexed_seq(&self) -> Option<u64> {
        let newest_in = TopDocs::with_limit(1).tweak_score(move |segment: &SegmentReader| {
            let seq = segment
                .fast_fields()
                .u64("seq")
                .ok()
                .map(|c| c.first_or_default_col(0));
            move |doc: DocId, _score: Score| seq.as_ref().map_or(0, |c| c.get_val(doc))
        });
        // From the partition with the highest numbers down, until no partition can hold a higher one.
        let mut partitions = self.partitions();
        partitions.retain(|p| p.stats().docs > 0);
        partitions.sort_by_key(|p| std::cmp::Reverse(p.stats().max_seq));
        let mut newest: Option<u64> = None;
        for partition in partitions {
            if newest.is_some_and(|n| n >= partition.stats().max_seq) {
                break;
            }
            let top = partition.reader.searcher().search(&AllQuery, &newest_in).ok()?;
            newest = newest.max(top.first().map(|(seq, _)| *seq));
        }
        newest
    }
}

/// A time as the index keeps it.
pub(super) fn nanos(time: Option<jiff::Timestamp>) -> Option<i64> {
    time.map(|t| t.as_nanosecond() as i64)
}

/// Whether `field` is one a query may name as a keyword.
pub fn is_keyword(field: &str) -> bool {
    KEYWORDS.contains(&field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, Position};
    use crate::index::Indexer;
    use crate::tailer::Batch;
    use crate::telemetry::Telemetry;

    fn line(n: i64, pod: &str, message: &str) -> LogLine {
        LogLine {
            timestamp: jiff::Timestamp::from_second(1_700_000_000 + n / 3).unwrap(),
            message: message.to_string(),
            pod: pod.to_string(),
            namespace: "default".into(),
            stream: "stdout".into(),
            ..LogLine::default()
        }
    }

    /// A fresh index in a temporary directory and its indexer.
    fn fresh() -> (tempfile::TempDir, LogIndex, Indexer) {
        let dir = tempfile::tempdir().unwrap();
        let index = LogIndex::open(dir.path()).unwrap();
        let indexer = Indexer::new(
            index.clone(),
            Checkpoint::default(),
            Telemetry::default(),
            std::time::Duration::from_secs(1),
        )
        .unwrap();
        (dir, index, indexer)
    }

    #[test]
    fn attribute_terms_match_whole_words() {
        let (_dir, index, mut indexer) = fresh();
        let lines = ["FailedScheduling", "Failed"]
            .iter()
            .map(|reason| LogLine {
                timestamp: jiff::Timestamp::now(),
                message: "m".into(),
                attributes: serde_json::json!({"reason": reason}).as_object().unwrap().clone(),
                ..LogLine::default()
            })
            .collect();
        indexer
            .add(Batch {
                lines,
                ..Batch::default()
            })
            .unwrap();
        indexer.commit().unwrap();
        let request = SearchRequest {
            query: "attributes.reason:Failed".into(),
            limit: 10,
            ..Default::default()
        };
        let reasons: Vec<_> = index
            .search(&request)
            .unwrap()
            .hits
            .iter()
            .map(|h| h.line.attributes["reason"].clone())
            .collect();
        assert_eq!(reasons, [serde_json::json!("Failed")]);
    }

    #[test]
    fn pages_cover_every_line_once_newest_first_and_positions_commit_with_them() {
        let (dir, index, mut indexer) = fresh();
        let lines: Vec<LogLine> = (0..250)
            .map(|n| {
                line(
                    n,
                    if n % 2 == 0 { "even" } else { "odd" },
                    &format!("request {n} served"),
                )
            })
            .collect();
        let position = Position {
            path: "/f".into(),
            fingerprint: 1,
            fingerprint_len: 2,
            offset: 99,
            emitted: 99,
            skipping: false,
            tail: None,
            size: 0,
            done: false,
        };
        indexer
            .add(Batch {
                lines,
                positions: vec![("1:2".into(), position.clone())],
                ..Batch::default()
            })
            .unwrap();
        indexer.commit().unwrap();

        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = index
                .search(&SearchRequest {
                    query: "pod:even".into(),
                    limit: 40,
                    cursor: cursor.clone(),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(page.total, 125);
            seen.extend(page.hits.iter().map(|h| h.line.message.clone()));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let expected: Vec<String> = (0..250)
            .rev()
            .filter(|n| n % 2 == 0)
            .map(|n| format!("request {n} served"))
            .collect();
        assert_eq!(seen, expected);

        let phrase = index
            .search(&SearchRequest {
                query: "\"request 42 served\"".into(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(phrase.total, 1);
        // "request 42 served": the phrase's words, by byte range.
        assert_eq!(phrase.hits[0].highlights, [[0, 7], [8, 10], [11, 17]]);
        let window = index
            .search(&SearchRequest {
                start: Some(jiff::Timestamp::from_second(1_700_000_010).unwrap()),
                end: Some(jiff::Timestamp::from_second(1_700_000_011).unwrap()),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(window.total, 3, "one second holds lines 30, 31, 32");

        // Counts: three lines a second, in 10 s buckets; the pods' shares; a bad field.
        let range = SearchRequest {
            start: Some(jiff::Timestamp::from_second(1_700_000_000).unwrap()),
            end: Some(jiff::Timestamp::from_second(1_700_000_100).unwrap()),
            ..Default::default()
        };
        let buckets = index
            .histogram(&range, std::time::Duration::from_secs(10))
            .unwrap();
        assert_eq!(buckets.len(), 10);
        assert_eq!(
            buckets.iter().map(|b| b.count).collect::<Vec<_>>(),
            [30, 30, 30, 30, 30, 30, 30, 30, 10, 0]
        );
        let top = index.top_values(&range, "pod", 5).unwrap();
        let mut top: Vec<(String, u64)> = top.into_iter().map(|v| (v.value, v.count)).collect();
        top.sort();
        assert_eq!(top, [("even".to_string(), 125), ("odd".to_string(), 125)]);
        assert!(index.top_values(&range, "message", 5).is_err());
        assert!(
            index
                .histogram(&range, std::time::Duration::from_millis(10))
                .is_err(),
            "10,000 buckets"
        );

        // The tail's steps: after a sequence number, oldest first.
        let after = index.after("pod:odd", Some(240), 10).unwrap();
        assert_eq!(
            after.iter().map(|(_, seq)| *seq).collect::<Vec<_>>(),
            [241, 243, 245, 247, 249]
        );
        assert_eq!(index.newest_seq(), Some(249));

        // Reopened, the index knows where the tailer was.
        drop(indexer);
        let reopened = LogIndex::open(dir.path()).unwrap();
        let checkpoint = reopened.checkpoint().unwrap();
        assert_eq!(checkpoint.files["1:2"], position);
        assert_eq!(checkpoint.next_seq, 250);
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let index = LogIndex::open(dir.path()).unwrap();
        let err = |r: SearchRequest| index.search(&r).unwrap_err().to_string();
        assert!(
            err(SearchRequest {
                query: "pod:(".into(),
                limit: 1,
                ..Default::default()
            })
            .starts_with("invalid query")
        );
        assert!(
            err(SearchRequest {
                limit: 100_000,
                ..Default::default()
            })
            .contains("limit must be between 1 and 1000")
        );
        assert!(
            err(SearchRequest {
                limit: 1,
                cursor: Some("x".into()),
                ..Default::default()
            })
            .contains("invalid cursor")
        );
        let later = jiff::Timestamp::from_second(2_000_000_000).unwrap();
        let earlier = jiff::Timestamp::from_second(1_000_000_000).unwrap();
        assert!(
            err(SearchRequest {
                limit: 1,
                start: Some(later),
                end: Some(earlier),
                ..Default::default()
            })
            .contains("is after end")
        );
    }
}
