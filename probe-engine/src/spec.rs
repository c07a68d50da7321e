//! A `Probe` of the API turned into what the engine runs: the defaulted parameters (`spec/probes.md` §1.1)
//! and a handler with its port resolved against the container's ports (K `pkg/probe/util.go`).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Which probe: its name in events (`Liveness probe failed: …`) and in metrics (`probe_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeType {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeType::Liveness => "Liveness",
            ProbeType::Readiness => "Readiness",
            ProbeType::Startup => "Startup",
        }
    }
}

impl std::fmt::Display for ProbeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The timing of a probe, defaults applied (0 or absent → the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// The probe's own grace period for a kill it caused (liveness, startup).
    pub termination_grace_period: Option<Duration>,
}

impl Params {
    pub fn of(probe: &Probe) -> Params {
        let positive = |v: Option<i32>, default: u32| match v {
            Some(v) if v > 0 => v as u32,
            _ => default,
        };
        Params {
            initial_delay: Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64),
            period: Duration::from_secs(u64::from(positive(probe.period_seconds, 10))),
            timeout: Duration::from_secs(u64::from(positive(probe.timeout_seconds, 1))),
            success_threshold: positive(probe.success_threshold, 1),
            failure_threshold: positive(probe.failure_threshold, 3),
            termination_grace_period: probe
                .termination_grace_period_seconds
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(s as u64)),
        }
    }
}

/// `http` or `https`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// What one attempt does, with its target resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handler {
    Http {
        scheme: Scheme,
        host: String,
        port: u16,
        /// Path and query, as given (`/` by default).
        path: String,
        headers: Vec<(String, String)>,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Grpc {
        host: String,
        port: u16,
        service: String,
    },
    Exec {
        command: Vec<String>,
    },
}

/// A probe ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    pub probe_type: ProbeType,
    pub params: Params,
    pub handler: Handler,
}

/// Why a probe cannot run (each attempt is then an error, as upstream's port resolution errors are).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("missing probe handler for {0}")]
    NoHandler(String),
    #[error("{0}")]
    Port(String),
}

impl ProbeSpec {
    /// The probe of `container` (running at `pod_ip`), its port names resolved against the container's
    /// ports; an exec command's words go through `expand` (the caller's `$(VAR)` expansion).
    pub fn resolve(
        probe_type: ProbeType,
        probe: &Probe,
        container: &Container,
        pod_ip: &str,
        expand: &dyn Fn(&str) -> String,
    ) -> Result<ProbeSpec, SpecError> {
        let host = |h: &Option<String>| h.clone().filter(|h| !h.is_empty()).unwrap_or(pod_ip.into());
        let handler = if let Some(http) = &probe.http_get {
            let scheme = match http.scheme.as_deref() {
                Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
                _ => Scheme::Http,
            };
            Handler::Http {
                scheme,
                host: host(&http.host),
                port: resolve_port(&http.port, container)?,
                path: http
                    .path
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "/".into()),
                headers: http
                    .http_headers
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            }
        } else if let Some(tcp) = &probe.tcp_socket {
            Handler::Tcp {
                host: host(&tcp.host),
                port: resolve_port(&tcp.port, container)?,
            }
        } else if let Some(grpc) = &probe.grpc {
            Handler::Grpc {
                host: pod_ip.into(),
                port: u16::try_from(grpc.port)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| SpecError::Port(format!("invalid port number: {}", grpc.port)))?,
                service: grpc.service.clone().unwrap_or_default(),
            }
        } else if let Some(exec) = &probe.exec {
            Handler::Exec {
                command: exec.command.iter().flatten().map(|arg| expand(arg)).collect(),
            }
        } else {
            return Err(SpecError::NoHandler(container.name.clone()));
        };
        Ok(ProbeSpec {
            probe_type,
            params: Params::of(probe),
            handler,
        })
    }
}

/// A port by number, by the name of one of the container's ports, or a number written as a string.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, SpecError> {
    let number = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()));
            match named {
                Some(p) => i64::from(p.container_port),
                None => name.parse::<i64>().map_err(|_| {
                    SpecError::Port(format!("couldn't find port: {name:?} in {:?}", container.name))
                })?,
            }
        }
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| SpecError::Port(format!("invalid port number: {number}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, ExecAction, HTTPGetAction, TCPSocketAction};

    fn container() -> Container {
        Container {
            name: "app".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..ContainerPort::default()
            }]),
            ..Container::default()
        }
    }

    #[test]
    fn defaults_fill_zeros_and_absent_fields() {
        let params = Params::of(&Probe {
            period_seconds: Some(0),
            failure_threshold: Some(5),
            ..Probe::default()
        });
        assert_eq!(
            params,
            Params {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 5,
                termination_grace_period: None,
            }
        );
    }

    #[test]
    fn ports_resolve_by_name_by_number_and_by_digits() {
        let c = container();
        assert_eq!(resolve_port(&IntOrString::String("http".into()), &c), Ok(8080));
        assert_eq!(resolve_port(&IntOrString::Int(81), &c), Ok(81));
        assert_eq!(resolve_port(&IntOrString::String("118".into()), &c), Ok(118));
        assert!(resolve_port(&IntOrString::String("admin".into()), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(70000), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
    }

    #[test]
    fn handlers_take_the_pod_ip_and_their_defaults() {
        let same = |arg: &str| arg.to_string();
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::String("http".into()),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        };
        let spec =
            ProbeSpec::resolve(ProbeType::Readiness, &probe, &container(), "127.100.0.9", &same).unwrap();
        assert_eq!(
            spec.handler,
            Handler::Http {
                scheme: Scheme::Http,
                host: "127.100.0.9".into(),
                port: 8080,
                path: "/".into(),
                headers: vec![],
            }
        );
        let tcp = Probe {
            tcp_socket: Some(TCPSocketAction {
                host: Some("127.0.0.1".into()),
                port: IntOrString::Int(22),
            }),
            ..Probe::default()
        };
        let spec = ProbeSpec::resolve(ProbeType::Liveness, &tcp, &container(), "127.100.0.9", &same).unwrap();
        assert_eq!(
            spec.handler,
            Handler::Tcp {
                host: "127.0.0.1".into(),
                port: 22
            }
        );
        let exec = Probe {
            exec: Some(ExecAction {
                command: Some(vec!["cat".into(), "$(A)".into()]),
            }),
            ..Probe::default()
        };
        let expand = |arg: &str| arg.replace("$(A)", "/tmp/ok");
        let spec =
            ProbeSpec::resolve(ProbeType::Startup, &exec, &container(), "127.100.0.9", &expand).unwrap();
        assert_eq!(
            spec.handler,
            Handler::Exec {
                command: vec!["cat".into(), "/tmp/ok".into()]
            }
        );
        assert!(ProbeSpec::resolve(ProbeType::Startup, &Probe::default(), &container(), "x", &same).is_err());
    }
}
