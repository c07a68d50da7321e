//! Validation of objects before they are stored, with upstream's field paths and messages
//! (k/k `pkg/apis/*/validation`, apimachinery `pkg/util/validation`). Runs after defaulting, on the
//! stored version's JSON.

use std::collections::BTreeSet;

use serde_json::Value;

use super::error::Cause;
use super::selectors::LabelSelector;

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', \
and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is \
'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is \
'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with \
an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for \
validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start \
and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is \
'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' \
or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex \
used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
/// Upstream's limit on the total size of an object's annotations.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// The character rules of an RFC 1123 label; length is checked separately, as upstream reports it apart.
fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(is_lower_alnum)
        && s.ends_with(is_lower_alnum)
        && s.chars().all(|c| is_lower_alnum(c) || c == '-')
}

pub fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !is_dns1123_label(s) {
        errors.push(DNS1123_LABEL_MSG.to_string());
    }
    errors
}

pub fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > 253 {
        errors.push("must be no more than 253 characters".to_string());
    }
    if !s
        .split('.')
        .all(|part| !part.is_empty() && part.len() <= 63 && is_dns1123_label(part))
    {
        errors.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    errors
}

fn dns1035_label_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !(is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())) {
        errors.push(DNS1035_LABEL_MSG.to_string());
    }
    errors
}

fn is_qualified_part(s: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.starts_with(edge)
        && s.ends_with(edge)
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Problems with a label key or other qualified name (`prefix/name`).
pub fn qualified_name_errors(s: &str) -> Vec<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    let mut errors = Vec::new();
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errors.push("prefix part must be non-empty".to_string());
        } else {
            errors.extend(
                dns1123_subdomain_errors(prefix)
                    .into_iter()
                    .map(|e| format!("prefix part {e}")),
            );
        }
    }
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_string());
    } else if !is_qualified_part(name) {
        errors.push(QUALIFIED_NAME_MSG.to_string());
    }
    errors
}

pub fn label_value_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !s.is_empty() && !is_qualified_part(s) {
        errors.push(LABEL_VALUE_MSG.to_string());
    }
    errors
}

/// How a kind's names are validated.
fn name_errors(kind: &str, name: &str) -> Vec<String> {
    match kind {
        "Namespace" => dns1123_label_errors(name),
        "Service" => dns1035_label_errors(name),
        _ => dns1123_subdomain_errors(name),
    }
}

/// Validates a stored-version object of `kind`. `old` is the stored object on update.
pub fn validate(kind: &str, object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = validate_metadata(kind, object);
    let spec = object.get("spec").unwrap_or(&Value::Null);
    match kind {
        "Pod" => {
            causes.extend(
                validate_pod_spec(spec, &["Always", "OnFailure", "Never"])
                    .into_iter()
                    .map(|c| c.under("spec")),
            );
            if let Some(old) = old {
                causes.extend(validate_pod_update(object, old));
            }
        }
        "Deployment" | "ReplicaSet" => causes.extend(validate_workload(kind, spec, old)),
        "Service" => causes.extend(validate_service(spec)),
        "HorizontalPodAutoscaler" => causes.extend(validate_hpa(spec)),
        _ => {}
    }
    causes
}

fn validate_metadata(kind: &str, object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = object.get("metadata").unwrap_or(&Value::Null);
    match meta.get("name").and_then(Value::as_str) {
        None | Some("") => {
            causes.push(Cause::required("metadata.name").with_message("name or generateName is required"))
        }
        Some(name) => {
            for e in name_errors(kind, name) {
                causes.push(Cause::invalid("metadata.name", &Value::from(name), e));
            }
        }
    }
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        for (key, value) in labels {
            for e in qualified_name_errors(key) {
                causes.push(Cause::invalid("metadata.labels", &Value::from(key.as_str()), e));
            }
            let value_str = value.as_str().unwrap_or_default();
            for e in label_value_errors(value_str) {
                causes.push(Cause::invalid("metadata.labels", value, e));
            }
        }
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let mut total = 0;
        for (key, value) in annotations {
            for e in qualified_name_errors(&key.to_lowercase()) {
                causes.push(Cause::invalid(
                    "metadata.annotations",
                    &Value::from(key.as_str()),
                    e,
                ));
            }
            total += key.len() + value.as_str().map_or(0, str::len);
        }
        if total > TOTAL_ANNOTATION_SIZE_LIMIT {
            causes.push(Cause {
                reason: "FieldValueTooLong",
                field: "metadata.annotations".into(),
                message: format!("Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
            });
        }
    }
    causes
}

impl Cause {
    fn with_message(mut self, message: &str) -> Self {
        self.message = format!("{}: {message}", self.message);
        self
    }
}

fn validate_pod_spec(spec: &Value, restart_policies: &[&str]) -> Vec<Cause> {
    let mut causes = Vec::new();
    let containers = spec.get("containers").and_then(Value::as_array);
    match containers {
        None => causes.push(Cause::required("containers")),
        Some(list) if list.is_empty() => causes.push(Cause::required("containers")),
        Some(_) => {}
    }
    let mut names = BTreeSet::new();
    for field in ["initContainers", "containers"] {
        for (i, container) in spec
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let path = format!("{field}[{i}]");
            causes.extend(
                validate_container(container, &mut names)
                    .into_iter()
                    .chain(validate_probes(container, field == "initContainers"))
                    .map(|c| c.under(&path)),
            );
        }
    }
    if let Some(policy) = spec.get("restartPolicy")
        && !restart_policies.contains(&policy.as_str().unwrap_or_default())
    {
        causes.push(Cause::not_supported("restartPolicy", policy, restart_policies));
    }
    causes
}

fn validate_container(container: &Value, names: &mut BTreeSet<String>) -> Vec<Cause> {
    let mut causes = Vec::new();
    match container.get("name").and_then(Value::as_str) {
        None | Some("") => causes.push(Cause::required("name")),
        Some(name) => {
            for e in dns1123_label_errors(name) {
                causes.push(Cause::invalid("name", &Value::from(name), e));
            }
            if !names.insert(name.to_string()) {
                causes.push(Cause::duplicate("name", &Value::from(name)));
            }
        }
    }
    if container
        .get("image")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        causes.push(Cause::required("image"));
    }
    for (i, port) in container
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let value = port.get("containerPort").cloned().unwrap_or(Value::Null);
        if !value.as_i64().is_some_and(|p| (1..=65535).contains(&p)) {
            causes.push(Cause::invalid(
                format!("ports[{i}].containerPort"),
                &value,
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    causes
}

/// A container's probes (k/k `validateLivenessProbe`, `validateReadinessProbe`, `validateStartupProbe`,
/// `validateProbe`, `validateHandler`): one handler, non-negative numbers, a success threshold of 1 for
/// liveness and startup, no grace period on readiness, valid ports. Beyond upstream, a named port must
/// be one of the container's ports (the kubelet would fail every attempt at it).
fn validate_probes(container: &Value, init: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let port_names: Vec<&str> = container
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("name").and_then(Value::as_str))
        .collect();
    for field in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(probe) = container.get(field).filter(|p| !p.is_null()) else {
            continue;
        };
        if init && container.get("restartPolicy").and_then(Value::as_str) != Some("Always") {
            causes.push(Cause::forbidden(
                field,
                "may not be set for init containers without restartPolicy=Always",
            ));
            continue;
        }
        let at = |name: &str| format!("{field}.{name}");
        for name in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            if let Some(value) = probe.get(name)
                && value.as_i64().is_some_and(|v| v < 0)
            {
                causes.push(Cause::invalid(
                    at(name),
                    value,
                    "must be greater than or equal to 0",
                ));
            }
        }
        if field != "readinessProbe"
            && let Some(value) = probe.get("successThreshold")
            && value.as_i64().is_some_and(|v| v != 1)
        {
            causes.push(Cause::invalid(at("successThreshold"), value, "must be 1"));
        }
        if let Some(value) = probe
            .get("terminationGracePeriodSeconds")
            .filter(|v| !v.is_null())
        {
            if field == "readinessProbe" {
                causes.push(Cause::invalid(
                    at("terminationGracePeriodSeconds"),
                    value,
                    "must not be set for readinessProbes",
                ));
            } else if value.as_i64().is_some_and(|v| v <= 0) {
                causes.push(Cause::invalid(
                    at("terminationGracePeriodSeconds"),
                    value,
                    "must be greater than 0",
                ));
            }
        }
        let mut handlers = 0;
        for handler in ["exec", "httpGet", "tcpSocket", "grpc"] {
            let Some(action) = probe.get(handler).filter(|h| !h.is_null()) else {
                continue;
            };
            if handlers > 0 {
                causes.push(Cause::forbidden(
                    at(handler),
                    "may not specify more than 1 handler type",
                ));
                continue;
            }
            handlers += 1;
            let path = at(handler);
            match handler {
                "exec" => {
                    if action
                        .get("command")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty)
                    {
                        causes.push(Cause::required(format!("{path}.command")));
                    }
                }
                "httpGet" => {
                    if action
                        .get("path")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        causes.push(Cause::required(format!("{path}.path")));
                    }
                    let scheme = action.get("scheme").cloned().unwrap_or(Value::from(""));
                    if !["HTTP", "HTTPS"].contains(&scheme.as_str().unwrap_or_default()) {
                        causes.push(Cause::not_supported(
                            format!("{path}.scheme"),
                            &scheme,
                            &["HTTP", "HTTPS"],
                        ));
                    }
                    causes.extend(probe_port(
                        action.get("port"),
                        &port_names,
                        &format!("{path}.port"),
                    ));
                }
                "tcpSocket" => {
                    causes.extend(probe_port(
                        action.get("port"),
                        &port_names,
                        &format!("{path}.port"),
                    ));
                }
                _ => {
                    let port = action.get("port").cloned().unwrap_or(Value::Null);
                    if !port.as_i64().is_some_and(|p| (1..=65535).contains(&p)) {
                        causes.push(Cause::invalid(
                            format!("{path}.port"),
                            &port,
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
            }
        }
        if handlers == 0 {
            causes.push(Cause::required(field).with_message("must specify a handler type"));
        }
    }
    causes
}

/// A probe's port: a number in range, or a valid port name (`IsValidPortName`) of one of the
/// container's ports.
fn probe_port(port: Option<&Value>, names: &[&str], path: &str) -> Vec<Cause> {
    let port = port.cloned().unwrap_or(Value::Null);
    if let Some(number) = port.as_i64() {
        if !(1..=65535).contains(&number) {
            return vec![Cause::invalid(
                path,
                &port,
                "must be between 1 and 65535, inclusive",
            )];
        }
        return Vec::new();
    }
    let Some(name) = port.as_str() else {
        return vec![Cause::required(path)];
    };
    let mut problems = Vec::new();
    if name.len() > 15 {
        problems.push("must be no more than 15 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        problems.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if name.contains("--") {
        problems.push("must not contain consecutive hyphens");
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        problems.push("must contain at least one letter (a-z)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        problems.push("must not begin or end with a hyphen");
    }
    if problems.is_empty() && !names.contains(&name) {
        problems.push("must be the name of one of the container's ports");
    }
    problems
        .into_iter()
        .map(|p| Cause::invalid(path, &port, p))
        .collect()
}

/// Upstream allows only a few pod spec fields to change after creation.
fn validate_pod_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mutable_masked = |pod: &Value| {
        let mut spec = pod.get("spec").cloned().unwrap_or(Value::Null);
        for field in ["containers", "initContainers"] {
            for container in spec
                .get_mut(field)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                container["image"] = Value::Null;
            }
        }
        for field in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
        ] {
            if let Some(spec) = spec.as_object_mut() {
                spec.remove(field);
            }
        }
        spec
    };
    if mutable_masked(new) == mutable_masked(old) {
        return Vec::new();
    }
    vec![Cause::forbidden(
        "spec",
        "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,\
`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),\
`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
    )]
}

fn validate_workload(kind: &str, spec: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(replicas) = spec.get("replicas")
        && replicas.as_i64().is_some_and(|r| r < 0)
    {
        causes.push(Cause::invalid(
            "spec.replicas",
            replicas,
            "must be greater than or equal to 0",
        ));
    }
    let selector = spec.get("selector");
    match selector {
        None | Some(Value::Null) => causes.push(Cause::required("spec.selector")),
        Some(selector) => match LabelSelector::from_label_selector(selector) {
            Err(e) => causes.push(Cause::invalid("spec.selector", selector, e)),
            Ok(parsed) if parsed.is_empty() => causes.push(Cause::invalid(
                "spec.selector",
                selector,
                format!("empty selector is invalid for {}", kind.to_lowercase()),
            )),
            Ok(parsed) => {
                let template = spec.get("template").unwrap_or(&Value::Null);
                if !parsed.matches_object(template) {
                    let labels = template
                        .pointer("/metadata/labels")
                        .cloned()
                        .unwrap_or(Value::Null);
                    causes.push(Cause::invalid(
                        "spec.template.metadata.labels",
                        &labels,
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        },
    }
    if let Some(old_selector) = old.and_then(|o| o.pointer("/spec/selector"))
        && let Some(selector) = selector
        && selector != old_selector
    {
        causes.push(Cause::invalid("spec.selector", selector, "field is immutable"));
    }
    let pod_spec = spec.pointer("/template/spec").unwrap_or(&Value::Null);
    causes.extend(
        validate_pod_spec(pod_spec, &["Always"])
            .into_iter()
            .map(|c| c.under("spec.template.spec")),
    );
    if kind == "Deployment"
        && let Some(strategy) = spec.pointer("/strategy/type")
        && !["RollingUpdate", "Recreate"].contains(&strategy.as_str().unwrap_or_default())
    {
        causes.push(Cause::not_supported(
            "spec.strategy.type",
            strategy,
            &["Recreate", "RollingUpdate"],
        ));
    }
    causes
}

fn validate_service(spec: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let kind = spec.get("type").and_then(Value::as_str).unwrap_or("ClusterIP");
    let supported = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if !supported.contains(&kind) {
        causes.push(Cause::not_supported("spec.type", &Value::from(kind), &supported));
    }
    let ports = spec.get("ports").and_then(Value::as_array);
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    if ports.is_none_or(Vec::is_empty) && kind != "ExternalName" && !headless {
        causes.push(Cause::required("spec.ports"));
    }
    let mut names = BTreeSet::new();
    let many = ports.is_some_and(|p| p.len() > 1);
    for (i, port) in ports.into_iter().flatten().enumerate() {
        let value = port.get("port").cloned().unwrap_or(Value::Null);
        if !value.as_i64().is_some_and(|p| (1..=65535).contains(&p)) {
            causes.push(Cause::invalid(
                format!("spec.ports[{i}].port"),
                &value,
                "must be between 1 and 65535, inclusive",
            ));
        }
        let name = port.get("name").and_then(Value::as_str).unwrap_or_default();
        if many && name.is_empty() {
            causes.push(Cause::required(format!("spec.ports[{i}].name")));
        } else if !names.insert(name.to_string()) {
            causes.push(Cause::duplicate(
                format!("spec.ports[{i}].name"),
                &Value::from(name),
            ));
        }
    }
    causes
}

fn validate_hpa(spec: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for field in ["kind", "name"] {
        if spec
            .pointer(&format!("/scaleTargetRef/{field}"))
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(Cause::required(format!("spec.scaleTargetRef.{field}")));
        }
    }
    let min = spec.get("minReplicas").and_then(Value::as_i64).unwrap_or(1);
    if min < 1 {
        causes.push(Cause::invalid(
            "spec.minReplicas",
            &Value::from(min),
            "must be greater than or equal to 1",
        ));
    }
    let max = spec.get("maxReplicas").cloned().unwrap_or(Value::Null);
    match max.as_i64() {
        None => causes.push(Cause::required("spec.maxReplicas")),
        Some(m) if m < min => causes.push(Cause::invalid(
            "spec.maxReplicas",
            &max,
            "must be greater than or equal to `minReplicas`",
        )),
        Some(_) => {}
    }
    for direction in ["scaleUp", "scaleDown"] {
        if let Some(rules) = spec.pointer(&format!("/behavior/{direction}")) {
            causes.extend(validate_scaling_rules(
                rules,
                &format!("spec.behavior.{direction}"),
            ));
        }
    }
    for (i, metric) in spec
        .get("metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        causes.extend(validate_metric_spec(metric, &format!("spec.metrics[{i}]")));
    }
    causes
}

/// `validateScalingRules` (k/k `pkg/apis/autoscaling/validation`).
fn validate_scaling_rules(rules: &Value, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(window) = rules.get("stabilizationWindowSeconds").and_then(Value::as_i64) {
        if window < 0 {
            causes.push(Cause::invalid(
                format!("{path}.stabilizationWindowSeconds"),
                &Value::from(window),
                "must be greater than or equal to zero",
            ));
        } else if window > 3600 {
            causes.push(Cause::invalid(
                format!("{path}.stabilizationWindowSeconds"),
                &Value::from(window),
                "must be less than or equal to 3600",
            ));
        }
    }
    if let Some(select) = rules.get("selectPolicy")
        && !["Max", "Min", "Disabled"].contains(&select.as_str().unwrap_or_default())
    {
        causes.push(Cause::not_supported(
            format!("{path}.selectPolicy"),
            select,
            &["Disabled", "Max", "Min"],
        ));
    }
    match rules.get("policies").and_then(Value::as_array) {
        Some(policies) if policies.is_empty() => causes.push(
            Cause::required(format!("{path}.policies")).with_message("must specify at least one Policy"),
        ),
        policies => {
            for (i, policy) in policies.into_iter().flatten().enumerate() {
                let at = format!("{path}.policies[{i}]");
                let kind = policy.get("type").cloned().unwrap_or(Value::Null);
                if !["Pods", "Percent"].contains(&kind.as_str().unwrap_or_default()) {
                    causes.push(Cause::not_supported(
                        format!("{at}.type"),
                        &kind,
                        &["Percent", "Pods"],
                    ));
                }
                let value = policy.get("value").cloned().unwrap_or(Value::Null);
                if value.as_i64().is_none_or(|v| v <= 0) {
                    causes.push(Cause::invalid(
                        format!("{at}.value"),
                        &value,
                        "must be greater than zero",
                    ));
                }
                let period = policy.get("periodSeconds").cloned().unwrap_or(Value::Null);
                match period.as_i64() {
                    Some(p) if p > 1800 => causes.push(Cause::invalid(
                        format!("{at}.periodSeconds"),
                        &period,
                        "must be less than or equal to 1800",
                    )),
                    Some(p) if p > 0 => {}
                    _ => causes.push(Cause::invalid(
                        format!("{at}.periodSeconds"),
                        &period,
                        "must be greater than zero",
                    )),
                }
            }
        }
    }
    if let Some(tolerance) = rules.get("tolerance")
        && crate::scheduler::fit::milli_value(tolerance.as_str().unwrap_or_default()).is_none_or(|m| m < 0)
    {
        causes.push(Cause::invalid(
            format!("{path}.tolerance"),
            tolerance,
            "must be greater than or equal to 0",
        ));
    }
    causes
}

/// `validateMetricSpec`: the source named by `type` is set, alone, with a target of its kind.
fn validate_metric_spec(metric: &Value, path: &str) -> Vec<Cause> {
    const TYPES: [(&str, &str); 5] = [
        ("Object", "object"),
        ("Pods", "pods"),
        ("Resource", "resource"),
        ("ContainerResource", "containerResource"),
        ("External", "external"),
    ];
    let mut causes = Vec::new();
    let kind = metric.get("type").cloned().unwrap_or(Value::Null);
    let Some((_, field)) = TYPES.iter().find(|(t, _)| Some(*t) == kind.as_str()) else {
        causes.push(Cause::not_supported(
            format!("{path}.type"),
            &kind,
            &TYPES.map(|(t, _)| t),
        ));
        return causes;
    };
    for (other, other_field) in TYPES {
        if other_field != *field && metric.get(other_field).is_some_and(|v| !v.is_null()) {
            causes.push(Cause::invalid(
                format!("{path}.{other_field}"),
                &Value::from("..."),
                format!("must populate the given metric source only ({other} is set)"),
            ));
        }
    }
    let Some(source) = metric.get(*field).filter(|v| !v.is_null()) else {
        causes.push(
            Cause::required(format!("{path}.{field}"))
                .with_message("must populate information for the given metric source"),
        );
        return causes;
    };
    let at = format!("{path}.{field}");
    match *field {
        "resource" | "containerResource" => {
            if source
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                causes.push(Cause::required(format!("{at}.name")));
            }
            if *field == "containerResource"
                && source
                    .get("container")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                causes.push(Cause::required(format!("{at}.container")));
            }
        }
        _ => {
            if source
                .pointer("/metric/name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                causes.push(Cause::required(format!("{at}.metric.name")));
            }
            if *field == "object"
                && ["kind", "name"].iter().any(|f| {
                    source
                        .pointer(&format!("/describedObject/{f}"))
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                })
            {
                causes.push(Cause::required(format!("{at}.describedObject")));
            }
        }
    }
    let target = source.get("target").cloned().unwrap_or(Value::Null);
    let allowed: &[&str] = match *field {
        "resource" | "containerResource" => &["Utilization", "AverageValue"],
        "pods" => &["AverageValue"],
        _ => &["Value", "AverageValue"],
    };
    let target_type = target.get("type").cloned().unwrap_or(Value::Null);
    if !allowed.contains(&target_type.as_str().unwrap_or_default()) {
        causes.push(Cause::not_supported(
            format!("{at}.target.type"),
            &target_type,
            allowed,
        ));
        return causes;
    }
    let needed = match target_type.as_str() {
        Some("Utilization") => "averageUtilization",
        Some("AverageValue") => "averageValue",
        _ => "value",
    };
    match target.get(needed) {
        None | Some(Value::Null) => causes.push(Cause::required(format!("{at}.target.{needed}"))),
        Some(v) if needed == "averageUtilization" && v.as_i64().is_none_or(|u| u <= 0) => causes.push(
            Cause::invalid(format!("{at}.target.{needed}"), v, "must be greater than 0"),
        ),
        Some(v)
            if needed != "averageUtilization"
                && crate::scheduler::fit::milli_value(v.as_str().unwrap_or(&v.to_string()))
                    .is_none_or(|q| q <= 0) =>
        {
            causes.push(Cause::invalid(
                format!("{at}.target.{needed}"),
                v,
                "must be positive",
            ))
        }
        Some(_) => {}
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert!(dns1123_subdomain_errors("web-1.example").is_empty());
        assert!(!dns1123_subdomain_errors("Web").is_empty());
        assert!(!dns1123_subdomain_errors("-web").is_empty());
        assert!(dns1123_label_errors("kube-system").is_empty());
        assert!(!dns1123_label_errors("a.b").is_empty());
        assert!(!dns1123_label_errors(&"a".repeat(64)).is_empty());
        assert!(!dns1035_label_errors("1web").is_empty());
        assert!(qualified_name_errors("app.kubernetes.io/name").is_empty());
        assert!(!qualified_name_errors("bad key").is_empty());
        assert!(!qualified_name_errors("/x").is_empty());
        assert!(label_value_errors("").is_empty());
        assert!(!label_value_errors("-x").is_empty());
    }

    #[test]
    fn deployment_selector_must_match_template() {
        let d = json!({"metadata": {"name": "web"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "other"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx"}], "restartPolicy": "Always"}}}});
        let causes = validate("Deployment", &d, None);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
    }

    #[test]
    fn probes_keep_upstreams_rules() {
        let p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{
            "name": "a", "image": "x", "ports": [{"name": "http", "containerPort": 80}],
            "livenessProbe": {"httpGet": {"path": "/", "port": "admin", "scheme": "HTTP"},
                              "tcpSocket": {"port": 80}, "successThreshold": 2},
            "readinessProbe": {"periodSeconds": -1, "terminationGracePeriodSeconds": 5},
            "startupProbe": {"httpGet": {"path": "/", "port": "http", "scheme": "HTTP"}}}],
            "initContainers": [{"name": "i", "image": "x", "readinessProbe": {"exec": {"command": ["true"]}}}]}});
        let causes: Vec<(String, String)> = validate("Pod", &p, None)
            .into_iter()
            .map(|c| (c.field, c.message))
            .collect();
        let expect = [
            (
                "spec.initContainers[0].readinessProbe",
                "Forbidden: may not be set for init containers without restartPolicy=Always",
            ),
            (
                "spec.containers[0].livenessProbe.successThreshold",
                "Invalid value: 2: must be 1",
            ),
            (
                "spec.containers[0].livenessProbe.httpGet.port",
                "Invalid value: \"admin\": must be the name of one of the container's ports",
            ),
            (
                "spec.containers[0].livenessProbe.tcpSocket",
                "Forbidden: may not specify more than 1 handler type",
            ),
            (
                "spec.containers[0].readinessProbe.periodSeconds",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "spec.containers[0].readinessProbe.terminationGracePeriodSeconds",
                "Invalid value: 5: must not be set for readinessProbes",
            ),
            (
                "spec.containers[0].readinessProbe",
                "Required value: must specify a handler type",
            ),
        ];
        for (field, message) in expect {
            assert!(
                causes.iter().any(|(f, m)| f == field && m == message),
                "{field}: {message} in {causes:#?}"
            );
        }
        assert_eq!(causes.len(), expect.len(), "{causes:#?}");
    }

    #[test]
    fn pod_needs_containers_with_images_and_unique_names() {
        let p = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "a"}]}});
        let fields: Vec<_> = validate("Pod", &p, None).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, ["spec.containers[1].name", "spec.containers[1].image"]);
    }

    #[test]
    fn invalid_labels_are_reported() {
        let o = json!({"metadata": {"name": "x", "labels": {"bad key": "ok", "k": "-bad"}}});
        assert_eq!(validate("ConfigMap", &o, None).len(), 2);
    }
}
