//! Label and field selectors as the API server evaluates them (k8s.io/apimachinery `pkg/labels` and
//! `pkg/fields`): parsing of the query-string syntax, and matching against stored objects.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::ApiError;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector: every requirement must hold. Empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut parser = Parser {
            chars: input.chars().collect(),
            pos: 0,
        };
        let mut requirements = Vec::new();
        parser.skip_ws();
        if parser.at_end() {
            return Ok(LabelSelector(requirements));
        }
        loop {
            requirements.push(
                parser
                    .requirement()
                    .map_err(|e| ApiError::BadRequest(format!("unable to parse requirement: {e}")))?,
            );
            parser.skip_ws();
            match parser.next() {
                None => break,
                Some(',') => continue,
                Some(c) => {
                    return Err(ApiError::BadRequest(format!(
                        "unable to parse requirement: found '{c}', expected: ',' or 'end of string'"
                    )));
                }
            }
        }
        for r in &requirements {
            validate_key(r.key())?;
        }
        Ok(LabelSelector(requirements))
    }

    /// Builds the selector of a `metav1.LabelSelector` (matchLabels and matchExpressions).
    pub fn from_label_selector(selector: &Value) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                requirements.push(Requirement::Equals(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        for expr in selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = expr
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let values: Vec<String> = expr
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let operator = expr.get("operator").and_then(Value::as_str).unwrap_or_default();
            requirements.push(match operator {
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => return Err(format!("{other:?} is not a valid label selector operator")),
            });
        }
        Ok(LabelSelector(requirements))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }

    /// Matches against an object's `metadata.labels`.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.is_empty() || self.matches(&labels_of(object))
    }
}

impl std::fmt::Display for LabelSelector {
    /// The canonical string form (what `/scale` reports as `status.selector`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl Requirement {
    fn key(&self) -> &str {
        match self {
            Requirement::Equals(k, _)
            | Requirement::NotEquals(k, _)
            | Requirement::In(k, _)
            | Requirement::NotIn(k, _)
            | Requirement::Exists(k)
            | Requirement::DoesNotExist(k) => k,
        }
    }
}

pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn validate_key(key: &str) -> Result<(), ApiError> {
    if super::validation::qualified_name_errors(key).is_empty() {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "unable to parse requirement: invalid label key {key:?}"
        )))
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| !c.is_whitespace() && !"=!,()".contains(c))
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        self.skip_ws();
        if self.peek() == Some('!') {
            self.pos += 1;
            let key = self.word();
            if key.is_empty() {
                return Err("expected a key after '!'".into());
            }
            return Ok(Requirement::DoesNotExist(key));
        }
        let key = self.word();
        if key.is_empty() {
            return Err(format!(
                "found '{}', expected: identifier",
                self.peek().unwrap_or(' ')
            ));
        }
        self.skip_ws();
        match self.peek() {
            None | Some(',') => Ok(Requirement::Exists(key)),
            Some('=') => {
                self.pos += 1;
                if self.peek() == Some('=') {
                    self.pos += 1;
                }
                Ok(Requirement::Equals(key, self.value()?))
            }
            Some('!') => {
                self.pos += 1;
                if self.next() != Some('=') {
                    return Err("expected '=' after '!'".into());
                }
                Ok(Requirement::NotEquals(key, self.value()?))
            }
            Some(_) => {
                let op = self.word();
                let values = self.set()?;
                match op.as_str() {
                    "in" => Ok(Requirement::In(key, values)),
                    "notin" => Ok(Requirement::NotIn(key, values)),
                    other => Err(format!("found '{other}', expected: in, notin, =, ==, !=")),
                }
            }
        }
    }

    fn value(&mut self) -> Result<String, String> {
        let value = self.word();
        if !value.is_empty() && !super::validation::label_value_errors(&value).is_empty() {
            return Err(format!("invalid label value: {value:?}"));
        }
        Ok(value)
    }

    fn set(&mut self) -> Result<Vec<String>, String> {
        self.skip_ws();
        if self.next() != Some('(') {
            return Err("found end of values, expected: '('".into());
        }
        let mut values = Vec::new();
        loop {
            values.push(self.value()?);
            self.skip_ws();
            match self.next() {
                Some(',') => continue,
                Some(')') => return Ok(values),
                _ => return Err("expected ',' or ')' in a set of values".into()),
            }
        }
    }
}

/// One term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    pub value: String,
    pub equal: bool,
}

/// A parsed field selector: every term must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<FieldTerm>);

impl FieldSelector {
    /// Parses `a=b,c!=d` and checks every field is selectable on `kind`.
    pub fn parse(input: &str, kind: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for part in split_unescaped(input) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid selector: '{input}'; can't understand '{part}'"
                )));
            };
            let field = canonical_field(kind, field.trim()).ok_or_else(|| {
                ApiError::BadRequest(format!("field label not supported: {}", field.trim()))
            })?;
            terms.push(FieldTerm {
                field: field.to_string(),
                value: unescape(value.trim()),
                equal,
            });
        }
        Ok(FieldSelector(terms))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value a term asks for `field`, when it is an equality (used to narrow a list to one name).
    pub fn equal_value(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|t| t.equal && t.field == field)
            .map(|t| t.value.as_str())
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|t| {
            let actual = field_value(object, &t.field);
            (actual == t.value) == t.equal
        })
    }
}

/// Splits on commas that are not escaped with a backslash (upstream's escaping of field values).
fn split_unescaped(input: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in input.chars() {
        let part = parts.last_mut().expect("parts starts non-empty");
        if escaped {
            part.push('\\');
            part.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            parts.push(String::new());
        } else {
            part.push(c);
        }
    }
    parts
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in value.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// The selectable fields of each kind (k/k `pkg/apis/core/v1/conversion.go` and the type strategies),
/// with aliases mapped to their canonical name.
fn canonical_field(kind: &str, field: &str) -> Option<&'static str> {
    const COMMON: &[&str] = &["metadata.name", "metadata.namespace"];
    const POD: &[&str] = &[
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ];
    const EVENT: &[&str] = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];
    let field = match (kind, field) {
        ("Pod", "spec.host") => "spec.nodeName",
        _ => field,
    };
    let per_kind: &[&str] = match kind {
        "Pod" => POD,
        "Event" => EVENT,
        "ReplicaSet" => &["status.replicas"],
        "Node" => &["spec.unschedulable"],
        "Namespace" => &["status.phase"],
        "Secret" => &["type"],
        _ => &[],
    };
    COMMON.iter().chain(per_kind).find(|f| **f == field).copied()
}

/// An object's value for a selectable field, as the string upstream compares.
fn field_value(object: &Value, field: &str) -> String {
    let value = match field {
        "source" => object.pointer("/source/component").cloned(),
        "spec.hostNetwork" | "spec.unschedulable" => Some(
            object
                .pointer(&pointer(field))
                .cloned()
                .unwrap_or(Value::Bool(false)),
        ),
        "status.replicas" => Some(
            object
                .pointer("/status/replicas")
                .cloned()
                .unwrap_or(Value::from(0)),
        ),
        _ => object.pointer(&pointer(field)).cloned(),
    };
    match value {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn pointer(field: &str) -> String {
    format!("/{}", field.replace('.', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_operators() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        for (selector, expected) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("app", true),
            ("!app", false),
            ("missing", false),
            ("!missing", true),
            ("app=web,tier!=db", true),
            ("app in (web), tier in (back)", false),
            ("missing notin (x)", true),
        ] {
            let parsed = LabelSelector::parse(selector).unwrap();
            assert_eq!(parsed.matches(&l), expected, "{selector}");
        }
    }

    #[test]
    fn label_selector_errors() {
        for bad in [
            "app=",
            "=web",
            "app in web",
            "app in (a",
            "app=web extra",
            "a b",
            "app=we b",
            "Bad Key=x",
        ] {
            // `app=` is legal upstream (empty value); everything else must fail.
            let result = LabelSelector::parse(bad);
            if bad == "app=" {
                assert!(result.is_ok());
            } else {
                assert!(result.is_err(), "{bad} should not parse");
            }
        }
    }

    #[test]
    fn selector_from_label_selector_round_trips() {
        let s = LabelSelector::from_label_selector(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
        }))
        .unwrap();
        assert_eq!(s.to_string(), "app=web,tier in (a,b)");
        assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"nodeName": "n1"},
                         "status": {"phase": "Running"}});
        let s = FieldSelector::parse("metadata.name=web,status.phase!=Failed,spec.host=n1", "Pod").unwrap();
        assert!(s.matches(&pod));
        assert_eq!(s.equal_value("metadata.name"), Some("web"));
        assert!(
            !FieldSelector::parse("spec.nodeName=", "Pod")
                .unwrap()
                .matches(&pod)
        );
        let err = FieldSelector::parse("spec.foo=bar", "Pod").unwrap_err();
        assert_eq!(err.to_string(), "field label not supported: spec.foo");

        let event =
            json!({"involvedObject": {"kind": "Pod", "uid": "u1"}, "source": {"component": "kubelet"}});
        let s = FieldSelector::parse(
            "involvedObject.kind=Pod,involvedObject.uid=u1,source=kubelet",
            "Event",
        )
        .unwrap();
        assert!(s.matches(&event));
    }
}
