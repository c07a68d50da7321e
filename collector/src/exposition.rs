//! A parser of the Prometheus text exposition format (0.0.4) and OpenMetrics 1.0 text, for what pods
//! serve on their `/metrics`: `# HELP`, `# TYPE`, `# UNIT` and `# EOF` lines, samples with escaped
//! label values, `NaN`/`±Inf`, optional timestamps, OpenMetrics exemplars; each sample gets the type of
//! its family (`foo_total` and `foo_created` belong to counter `foo`, `_bucket`/`_sum`/`_count` to a
//! histogram or summary). A malformed line fails the whole scrape, as it does in Prometheus.

use std::collections::HashMap;

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    fn parse(text: &str) -> Option<MetricType> {
        Some(match text {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "untyped" | "unknown" => MetricType::Unknown,
            _ => return None,
        })
    }
}

/// One sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carries one.
    pub timestamp_ms: Option<i64>,
    pub kind: MetricType,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a body could not be parsed: the line (from 1) and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The suffixes a family's samples may carry.
const SUFFIXES: [&str; 8] = [
    "_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info",
];

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// A float as the formats write them (`NaN`, `+Inf`, `-Inf`, Go's float syntax).
fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ if text
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') =>
        {
            None
        }
        _ => text.parse().ok(),
    }
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    fn name(&mut self, first: fn(char) -> bool, rest: fn(char) -> bool) -> Option<&'a str> {
        let start = self.pos;
        if !self.peek().is_some_and(first) {
            return None;
        }
        while self.peek().is_some_and(rest) {
            self.pos += 1;
        }
        Some(&self.text[start..self.pos])
    }

    /// `{name="value",…}`, the opening brace already seen.
    fn labels(&mut self) -> Result<Vec<(String, String)>, String> {
        let mut labels: Vec<(String, String)> = Vec::new();
        loop {
            self.skip_spaces();
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(labels);
            }
            let name = self
                .name(
                    |c| c.is_ascii_alphabetic() || c == '_',
                    |c| c.is_ascii_alphanumeric() || c == '_',
                )
                .ok_or("expected a label name")?
                .to_string();
            self.skip_spaces();
            if self.bump() != Some('=') {
                return Err(format!("expected '=' after label {name:?}"));
            }
            self.skip_spaces();
            if self.bump() != Some('"') {
                return Err(format!("expected '\"' to open the value of label {name:?}"));
            }
            let mut value = String::new();
            loop {
                match self.bump() {
                    None => return Err(format!("unterminated value of label {name:?}")),
                    Some('"') => break,
                    Some('\\') => match self.bump() {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => return Err(format!("invalid escape {other:?} in label {name:?}")),
                    },
                    Some(c) => value.push(c),
                }
            }
            if labels.iter().any(|(k, _)| *k == name) {
                return Err(format!("duplicate label {name:?}"));
            }
            labels.push((name, value));
            self.skip_spaces();
            match self.bump() {
                Some(',') => {}
                Some('}') => return Ok(labels),
                _ => return Err("expected ',' or '}' after a label".into()),
            }
        }
    }
}

/// Parses a scrape body; `openmetrics` when the response's content type said so (timestamps in
/// seconds, `# EOF` required).
pub fn parse(body: &str, openmetrics: bool) -> Result<Vec<Sample>, ParseError> {
    let mut types: HashMap<String, MetricType> = HashMap::new();
    let mut samples = Vec::new();
    let mut eof = false;
    for (i, raw) in body.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let fail = |message: String| ParseError { line: i + 1, message };
        if eof {
            if line.trim().is_empty() {
                continue;
            }
            return Err(fail("content after # EOF".into()));
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("EOF"), None, _) => eof = true,
                (Some("TYPE"), Some(name), Some(kind)) => {
                    let kind = MetricType::parse(kind.trim())
                        .ok_or_else(|| fail(format!("unknown metric type {:?}", kind.trim())))?;
                    if types.insert(name.to_string(), kind).is_some() {
                        return Err(fail(format!("second TYPE line for {name}")));
                    }
                }
                (Some("TYPE"), ..) => return Err(fail("TYPE needs a metric name and a type".into())),
                // HELP, UNIT and plain comments carry nothing a sample needs.
                _ => {}
            }
            continue;
        }
        let mut cursor = Cursor { text: line, pos: 0 };
        cursor.skip_spaces();
        let name = cursor
            .name(is_name_start, is_name_char)
            .ok_or_else(|| fail("expected a metric name".into()))?
            .to_string();
        cursor.skip_spaces();
        let labels = if cursor.peek() == Some('{') {
            cursor.pos += 1;
            cursor.labels().map_err(&fail)?
        } else {
            Vec::new()
        };
        let rest = &line[cursor.pos..];
        // An OpenMetrics exemplar follows " # ".
        let rest = rest.split(" # ").next().unwrap_or_default();
        let mut fields = rest.split_whitespace();
        let value = fields
            .next()
            .ok_or_else(|| fail(format!("expected a value for {name}")))?;
        let value = parse_float(value).ok_or_else(|| fail(format!("{value:?} is not a value")))?;
        let timestamp_ms = match fields.next() {
            None => None,
            Some(t) if openmetrics => Some(
                parse_float(t)
                    .filter(|s| s.is_finite())
                    .map(|s| (s * 1000.0) as i64)
                    .ok_or_else(|| fail(format!("{t:?} is not a timestamp")))?,
            ),
            Some(t) => Some(t.parse().map_err(|_| fail(format!("{t:?} is not a timestamp")))?),
        };
        if fields.next().is_some() {
            return Err(fail(format!("unexpected text after the sample of {name}")));
        }
        let kind = types.get(&name).copied().or_else(|| {
            SUFFIXES
                .iter()
                .find_map(|s| name.strip_suffix(s).and_then(|family| types.get(family).copied()))
        });
        samples.push(Sample {
            name,
            labels,
            value,
            timestamp_ms,
            kind: kind.unwrap_or(MetricType::Unknown),
        });
    }
    if openmetrics && !eof {
        return Err(ParseError {
            line: body.lines().count(),
            message: "OpenMetrics text must end with # EOF".into(),
        });
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_with_types_escapes_and_timestamps() {
        let body = "# HELP http_requests_total The total.\n# TYPE http_requests_total counter\n\
            http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
            http_requests_total{method=\"get\", code=\"400\",} 3\n\
            # A comment\n\
            msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
            # TYPE rpc_duration_seconds summary\n\
            rpc_duration_seconds{quantile=\"0.5\"} 4773\nrpc_duration_seconds_sum 1.7560473e+07\nrpc_duration_seconds_count 2693\n\
            # TYPE latency histogram\nlatency_bucket{le=\"+Inf\"} 144320\n\
            something_weird{problem=\"division by zero\"} +Inf -3982045\nmissing NaN\n";
        let samples = parse(body, false).unwrap();
        assert_eq!(samples.len(), 9);
        assert_eq!(samples[0].kind, MetricType::Counter);
        assert_eq!(samples[0].timestamp_ms, Some(1395066363000));
        assert_eq!(samples[1].label("code"), Some("400"));
        assert_eq!(samples[2].label("path"), Some("C:\\DIR\\FILE.TXT"));
        assert_eq!(samples[2].label("error"), Some("Cannot find file:\n\"FILE.TXT\""));
        assert_eq!(samples[2].kind, MetricType::Unknown);
        assert_eq!(
            (samples[4].name.as_str(), samples[4].kind),
            ("rpc_duration_seconds_sum", MetricType::Summary)
        );
        assert_eq!(samples[6].kind, MetricType::Histogram);
        assert_eq!(samples[7].value, f64::INFINITY);
        assert_eq!(samples[7].timestamp_ms, Some(-3982045));
        assert!(samples[8].value.is_nan());
    }

    #[test]
    fn openmetrics_counters_exemplars_and_eof() {
        let body = "# TYPE foo counter\n# UNIT foo seconds\nfoo_total{a=\"b\"} 17.0 1520879607.789 # {trace_id=\"x\"} 1 1520879607.7\nfoo_created 1520430000.123\n# EOF\n";
        let samples = parse(body, true).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!((samples[0].kind, samples[0].value), (MetricType::Counter, 17.0));
        assert_eq!(samples[0].timestamp_ms, Some(1520879607789));
        assert_eq!(samples[1].kind, MetricType::Counter);
        assert!(parse("foo 1\n", true).unwrap_err().message.contains("# EOF"));
        assert!(parse("# EOF\nfoo 1\n", true).is_err());
    }

    #[test]
    fn garbage_is_refused_with_its_line() {
        for (body, line) in [
            ("ok 1\n{} 2\n", 2),
            ("ok 1\nx{a=\"b} 1\n", 2),
            ("x{a=b} 1\n", 1),
            ("x{a=\"1\",a=\"2\"} 1\n", 1),
            ("x one\n", 1),
            ("x 1 2 3\n", 1),
            ("# TYPE x counter\n# TYPE x gauge\n", 2),
            ("# TYPE x sometimes\n", 1),
            ("x{a=\"\\q\"} 1\n", 1),
            ("\u{0}\u{1}binary", 1),
        ] {
            let e = parse(body, false).unwrap_err();
            assert_eq!(e.line, line, "{body:?}: {e}");
        }
        assert_eq!(parse("", false), Ok(vec![]));
    }
}
