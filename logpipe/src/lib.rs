//! Log pipeline: tailing, parsing, enrichment, the tantivy index, search API and web UI. Not built yet; see the issue tracker.
