//! A container's environment, as the kubelet builds it (`kubelet_pods.go` `makeEnvironmentVariables`):
//! the service variables of the pod's namespace (when `enableServiceLinks`), then `envFrom`, then `env`
//! with `$(VAR)` references expanded against what came before; `value`, and `valueFrom` with `fieldRef`,
//! `resourceFieldRef`, `configMapKeyRef` and `secretKeyRef`. A missing ConfigMap, Secret or key that is
//! not optional is an error whose text becomes the container's `CreateContainerConfigError` message.
//! Glasshouse adds `POD_IP`, `POD_NAME` and `POD_NAMESPACE` (a pod's own settings win) and what an
//! image would have provided: `PATH`, `HOSTNAME`, `HOME`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ListParams};

use crate::scheduler::fit::milli_value;

/// The `PATH` an image without one gets from the runtime.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the environment is built from besides the pod.
pub struct EnvContext<'a> {
    pub client: &'a kube::Client,
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    /// The node's allocatable resources: the value of a `resourceFieldRef` limit that is not set.
    pub allocatable: &'a BTreeMap<String, Quantity>,
}

/// Builds `container`'s environment, in a stable order (the kubelet's map order is not one).
pub async fn resolve(
    ctx: &EnvContext<'_>,
    pod: &Pod,
    container: &Container,
) -> Result<Vec<(String, String)>, String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let spec = pod.spec.as_ref().ok_or("the pod has no spec")?;
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut service_env = BTreeMap::new();
    if spec.enable_service_links.unwrap_or(true) {
        let services: Api<Service> = Api::namespaced(ctx.client.clone(), namespace);
        let list = services
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing the services of {namespace}: {e}"))?;
        service_env = service_variables(&list.items);
    }
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.clone().unwrap_or_default();
        if let Some(reference) = &source.config_map_ref {
            let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
            match api.get_opt(&reference.name).await.map_err(|e| e.to_string())? {
                Some(map) => {
                    for (key, value) in map.data.unwrap_or_default() {
                        env.insert(format!("{prefix}{key}"), value);
                    }
                }
                None if reference.optional == Some(true) => {}
                None => return Err(format!("configmap \"{}\" not found", reference.name)),
            }
        }
        if let Some(reference) = &source.secret_ref {
            let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
            match api.get_opt(&reference.name).await.map_err(|e| e.to_string())? {
                Some(secret) => {
                    for (key, value) in secret_data(&secret) {
                        env.insert(format!("{prefix}{key}"), value);
                    }
                }
                None if reference.optional == Some(true) => {}
                None => return Err(format!("secret \"{}\" not found", reference.name)),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(source) = &var.value_from {
            if let Some(field) = &source.field_ref {
                Some(field_value(pod, &field.field_path, ctx)?)
            } else if let Some(resource) = &source.resource_field_ref {
                let target = match resource.container_name.as_deref() {
                    Some(name) if !name.is_empty() => spec
                        .containers
                        .iter()
                        .chain(spec.init_containers.iter().flatten())
                        .find(|c| c.name == name)
                        .ok_or_else(|| format!("container {name} not found in the pod"))?,
                    _ => container,
                };
                Some(resource_value(
                    target,
                    &resource.resource,
                    resource.divisor.as_ref(),
                    ctx.allocatable,
                )?)
            } else if let Some(key) = &source.config_map_key_ref {
                let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
                let optional = key.optional == Some(true);
                match api.get_opt(&key.name).await.map_err(|e| e.to_string())? {
                    Some(map) => match map.data.unwrap_or_default().remove(&key.key) {
                        Some(value) => Some(value),
                        None if optional => None,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {namespace}/{}",
                                key.key, key.name
                            ));
                        }
                    },
                    None if optional => None,
                    None => return Err(format!("configmap \"{}\" not found", key.name)),
                }
            } else if let Some(key) = &source.secret_key_ref {
                let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
                let optional = key.optional == Some(true);
                match api.get_opt(&key.name).await.map_err(|e| e.to_string())? {
                    Some(secret) => match secret_data(&secret).remove(&key.key) {
                        Some(value) => Some(value),
                        None if optional => None,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {namespace}/{}",
                                key.key, key.name
                            ));
                        }
                    },
                    None if optional => None,
                    None => return Err(format!("secret \"{}\" not found", key.name)),
                }
            } else {
                None
            }
        } else {
            let raw = var.value.clone().unwrap_or_default();
            Some(expand(&raw, |name| {
                env.get(name).or_else(|| service_env.get(name)).cloned()
            }))
        };
        if let Some(value) = value {
            env.insert(var.name.clone(), value);
        }
    }
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let defaults = [
        ("POD_IP", ctx.pod_ip.to_string()),
        ("POD_NAME", pod_name.clone()),
        ("POD_NAMESPACE", namespace.to_string()),
        ("PATH", DEFAULT_PATH.to_string()),
        ("HOSTNAME", pod_name),
        ("HOME", "/root".to_string()),
    ];
    for (key, value) in service_env
        .into_iter()
        .chain(defaults.map(|(k, v)| (k.to_string(), v)))
    {
        env.entry(key).or_insert(value);
    }
    Ok(env.into_iter().collect())
}

/// Expands `$(VAR)` in a command, argument or value as the kubelet does: unknown references stay as
/// written, `$$` is a literal `$`.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The docker-link style variables of the services (`envvars.FromServices`).
pub fn service_variables(services: &[Service]) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for service in services {
        let Some(spec) = &service.spec else { continue };
        let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        else {
            continue;
        };
        let ports = spec.ports.clone().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        let name = env_name(service.metadata.name.as_deref().unwrap_or_default());
        vars.insert(format!("{name}_SERVICE_HOST"), ip.to_string());
        vars.insert(format!("{name}_SERVICE_PORT"), first.port.to_string());
        let protocol =
            |p: &k8s_openapi::api::core::v1::ServicePort| p.protocol.clone().unwrap_or_else(|| "TCP".into());
        vars.insert(
            format!("{name}_PORT"),
            format!("{}://{ip}:{}", protocol(first).to_lowercase(), first.port),
        );
        for port in &ports {
            if let Some(port_name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                vars.insert(
                    format!("{name}_SERVICE_PORT_{}", env_name(port_name)),
                    port.port.to_string(),
                );
            }
            let proto = protocol(port);
            let prefix = format!("{name}_PORT_{}_{}", port.port, proto.to_uppercase());
            vars.insert(
                prefix.clone(),
                format!("{}://{ip}:{}", proto.to_lowercase(), port.port),
            );
            vars.insert(format!("{prefix}_PROTO"), proto.to_lowercase());
            vars.insert(format!("{prefix}_PORT"), port.port.to_string());
            vars.insert(format!("{prefix}_ADDR"), ip.to_string());
        }
    }
    vars
}

fn env_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

fn secret_data(secret: &Secret) -> BTreeMap<String, String> {
    let mut data: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone());
    }
    data
}

/// A `fieldRef`'s value (the paths the downward API supports for environment variables).
fn field_value(pod: &Pod, path: &str, ctx: &EnvContext<'_>) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("['").or_else(|| rest.strip_prefix("[\"")))
            .and_then(|rest| rest.strip_suffix("']").or_else(|| rest.strip_suffix("\"]")))
    };
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => ctx.host_ip.to_string(),
        "status.podIP" | "status.podIPs" => ctx.pod_ip.to_string(),
        _ => {
            if let Some(key) = subscript("metadata.labels") {
                meta.labels
                    .as_ref()
                    .and_then(|l| l.get(key).cloned())
                    .unwrap_or_default()
            } else if let Some(key) = subscript("metadata.annotations") {
                meta.annotations
                    .as_ref()
                    .and_then(|a| a.get(key).cloned())
                    .unwrap_or_default()
            } else {
                return Err(format!("unsupported fieldPath: {path}"));
            }
        }
    };
    Ok(value)
}

/// A `resourceFieldRef`'s value: the container's request or limit (the node's allocatable for a limit
/// not set) divided by the divisor, rounded up, as `resource.ExtractContainerResourceValue` does.
fn resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&Quantity>,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, String> {
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource: {resource}"))?;
    if !["cpu", "memory", "ephemeral-storage"].contains(&name) || !["limits", "requests"].contains(&kind) {
        return Err(format!("unsupported container resource: {resource}"));
    }
    let resources = container.resources.clone().unwrap_or_default();
    let set = if kind == "limits" {
        resources.limits
    } else {
        resources.requests
    };
    let quantity = set.and_then(|m| m.get(name).cloned());
    let quantity = match quantity {
        Some(q) => q,
        None if kind == "limits" => allocatable.get(name).cloned().unwrap_or(Quantity("0".into())),
        // A request not set is zero (the kubelet defaults requests to limits first, as the scheduler does).
        None => resources_limit(container, name).unwrap_or(Quantity("0".into())),
    };
    let value = milli_value(&quantity.0).ok_or_else(|| format!("invalid quantity {}", quantity.0))?;
    let divisor = match divisor {
        Some(d) => milli_value(&d.0).ok_or_else(|| format!("invalid divisor {}", d.0))?,
        None => 1000,
    };
    if divisor <= 0 {
        return Err(format!("invalid divisor for {resource}"));
    }
    let result = (value + divisor - 1).div_euclid(divisor);
    Ok(result
        .max(if name == "cpu" && value > 0 { 1 } else { 0 })
        .to_string())
}

fn resources_limit(container: &Container, name: &str) -> Option<Quantity> {
    container.resources.as_ref()?.limits.as_ref()?.get(name).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_the_kubelet() {
        let lookup = |name: &str| (name == "A").then(|| "x".to_string());
        assert_eq!(expand("$(A)-$(B)-$$(A)-$-$", lookup), "x-$(B)-$(A)-$-$");
        assert_eq!(expand("$(A", lookup), "$(A");
    }

    #[test]
    fn service_variables_have_the_upstream_shape() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-front"},
            "spec": {"clusterIP": "127.101.0.7", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        }))
        .unwrap();
        let headless: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        }))
        .unwrap();
        let vars = service_variables(&[service, headless]);
        assert_eq!(vars["WEB_FRONT_SERVICE_HOST"], "127.101.0.7");
        assert_eq!(vars["WEB_FRONT_SERVICE_PORT"], "80");
        assert_eq!(vars["WEB_FRONT_SERVICE_PORT_HTTP"], "80");
        assert_eq!(vars["WEB_FRONT_PORT"], "tcp://127.101.0.7:80");
        assert_eq!(vars["WEB_FRONT_PORT_80_TCP_ADDR"], "127.101.0.7");
        assert!(!vars.keys().any(|k| k.starts_with("H_")));
    }

    #[test]
    fn resource_fields_round_up_by_the_divisor() {
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}}
        }))
        .unwrap();
        let allocatable = BTreeMap::from([("cpu".to_string(), Quantity("2".into()))]);
        let pick = |resource: &str, divisor: Option<&str>| {
            let divisor = divisor.map(|d| Quantity(d.into()));
            resource_value(&container, resource, divisor.as_ref(), &allocatable).unwrap()
        };
        assert_eq!(pick("limits.cpu", None), "1");
        assert_eq!(pick("limits.cpu", Some("1m")), "250");
        assert_eq!(pick("limits.memory", Some("1Mi")), "64");
        assert_eq!(pick("requests.cpu", Some("1m")), "250");
        assert!(resource_value(&container, "limits.gpu", None, &allocatable).is_err());
    }
}
