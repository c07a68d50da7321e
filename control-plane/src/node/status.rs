//! The pod status the kubelet writes (`kubelet_pods.go` `generateAPIPodStatus`, `getPhase`,
//! `status/generate.go`): phase, the conditions PodReadyToStartContainers, Initialized, ContainersReady and
//! Ready (PodScheduled stays the scheduler's), container statuses with state and last state, restart
//! counts, pod and host IPs, start time.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::runtime::ExitRecord;
use super::worker::{Track, Worker, is_sidecar};

/// Whether every app container of the pod runs.
pub(super) fn all_running(worker: &Worker) -> bool {
    let Some(pod) = &worker.pod else { return false };
    pod.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .all(|c| worker.tracks.get(&c.name).is_some_and(Track::running))
    })
}

pub(super) fn build(pod: &Pod, worker: &Worker, host_ip: &str, ip: Ipv4Addr) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let init_containers: Vec<&Container> = spec.init_containers.iter().flatten().collect();
    let init_statuses: Vec<ContainerStatus> = init_containers
        .iter()
        .map(|c| init_container_status(c, worker.tracks.get(&c.name)))
        .collect();
    let mut statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, worker.tracks.get(&c.name)))
        .collect();
    let sidecars = || {
        init_containers
            .iter()
            .zip(&init_statuses)
            .filter(|(c, _)| is_sidecar(c))
            .map(|(_, s)| s)
    };
    let exit_code = |s: &ContainerStatus| {
        s.state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .map(|t| t.exit_code)
    };

    // `GeneratePodInitializedCondition`: init containers that did not exit 0, sidecars that have not
    // started. Once the app containers ran, the pod stays initialized whatever its sidecars do.
    let incomplete: Vec<&str> = if worker.initialized_before(&spec) {
        Vec::new()
    } else {
        init_containers
            .iter()
            .zip(&init_statuses)
            .filter(|(c, s)| {
                if is_sidecar(c) {
                    s.started != Some(true)
                } else {
                    exit_code(s) != Some(0)
                }
            })
            .map(|(_, s)| s.name.as_str())
            .collect()
    };
    let init_failed = worker.init_failed(&spec);
    if !incomplete.is_empty() {
        // App containers wait for the init containers.
        for status in statuses.iter_mut().filter(|s| s.container_id.is_none()) {
            if let Some(waiting) = status.state.as_mut().and_then(|s| s.waiting.as_mut()) {
                waiting.reason = Some("PodInitializing".into());
            }
        }
    }
    let sidecar_runs = sidecars().any(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()));
    let phase = if init_failed {
        "Failed"
    } else if !incomplete.is_empty() {
        "Pending"
    } else {
        match phase(&statuses, policy) {
            // The app containers are done, the sidecars still stopping.
            "Succeeded" | "Failed" if sidecar_runs => "Running",
            phase => phase,
        }
    };
    // A deleted pod whose containers all stopped ends in a terminal phase (kubelet 1.27 and later): it
    // will not run again, whatever its restart policy.
    let stopped = statuses
        .iter()
        .all(|s| s.state.as_ref().is_none_or(|st| st.running.is_none()));
    let phase = if pod.metadata.deletion_timestamp.is_some() && stopped && phase != "Succeeded" {
        let all_zero = statuses.iter().all(|s| exit_code(s) == Some(0));
        if all_zero && incomplete.is_empty() {
            "Succeeded"
        } else {
            "Failed"
        }
    } else {
        phase
    };
    // `GenerateContainersReadyCondition`: sidecars first, then the app containers.
    let unready: Vec<&str> = sidecars()
        .chain(&statuses)
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let terminal = phase == "Succeeded" || phase == "Failed";

    let now = Time(jiff::Timestamp::now());
    let condition = |type_: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        // A transition time changes only with the status.
        let since = old
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.map(str::to_string),
            message,
            last_transition_time: Some(since),
            last_probe_time: None,
            observed_generation: None,
        }
    };
    let list = |names: &[&str]| format!("[{}]", names.join(" "));
    let (ready_reason, ready_message) = if terminal {
        (Some("PodCompleted"), None)
    } else if unready.is_empty() {
        (None, None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!("containers with unready status: {}", list(&unready))),
        )
    };
    let ready = unready.is_empty() && !terminal;
    let mut conditions = vec![
        condition("PodReadyToStartContainers", !terminal, None, None),
        if incomplete.is_empty() {
            condition("Initialized", true, None, None)
        } else {
            condition(
                "Initialized",
                false,
                Some("ContainersNotInitialized"),
                Some(format!(
                    "containers with incomplete status: {}",
                    list(&incomplete)
                )),
            )
        },
        condition("Ready", ready, ready_reason, ready_message.clone()),
        condition("ContainersReady", ready, ready_reason, ready_message),
    ];
    if let Some(scheduled) = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled")
    {
        conditions.push(scheduled.clone());
    }

    let pod_ip = ip.to_string();
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_string(),
        }]),
        pod_ip: Some(pod_ip.clone()),
        pod_ips: Some(vec![PodIP { ip: pod_ip }]),
        start_time: old.start_time.clone().or(Some(now)),
        qos_class: old.qos_class.clone(),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        ..PodStatus::default()
    }
}

/// `getPhase` for the app containers, once initialization is done.
fn phase(statuses: &[ContainerStatus], policy: &str) -> &'static str {
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for status in statuses {
        let state = status.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(terminated) = &state.terminated {
            stopped += 1;
            if terminated.exit_code == 0 {
                succeeded += 1;
            }
        } else if status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some()
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if policy == "Always" {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if policy == "Never" {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Pending"
    }
}

fn terminated(exit: &ExitRecord, id: &str) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: exit.exit_code,
        signal: exit.signal,
        reason: Some(exit.reason.clone()),
        message: exit.message.clone(),
        started_at: exit.started_at.map(Time),
        finished_at: Some(Time(exit.finished_at)),
        container_id: Some(container_id(id)),
    }
}

fn container_id(id: &str) -> String {
    format!("glasshouse://{id}")
}

/// An init container's status: a sidecar's as an app container's; another is ready once it exited 0
/// (`prober_manager.go` `UpdatePodStatus`).
fn init_container_status(container: &Container, track: Option<&Track>) -> ContainerStatus {
    let mut status = container_status(container, track);
    if !is_sidecar(container) {
        status.ready = status
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code == 0);
    }
    status
}

fn container_status(container: &Container, track: Option<&Track>) -> ContainerStatus {
    let current = track.and_then(|t| t.current.as_ref());
    let previous = track.and_then(|t| t.previous.as_ref());
    let waiting = track.and_then(|t| t.waiting.clone());
    let state_of = |run: &super::worker::Run| match &run.exit {
        Some(exit) => ContainerState {
            terminated: Some(terminated(exit, &run.id)),
            ..ContainerState::default()
        },
        None => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: run.started_at.map(Time),
            }),
            ..ContainerState::default()
        },
    };
    let (state, last_state) = match (waiting, current) {
        (Some((reason, message)), current) => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason),
                    message: Some(message),
                }),
                ..ContainerState::default()
            },
            current.filter(|r| r.exit.is_some()).map(state_of),
        ),
        (None, Some(run)) => (state_of(run), previous.filter(|r| r.exit.is_some()).map(state_of)),
        (None, None) => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ContainerCreating".into()),
                    message: None,
                }),
                ..ContainerState::default()
            },
            None,
        ),
    };
    let running = state.running.is_some();
    ContainerStatus {
        name: container.name.clone(),
        image: container.image.clone().unwrap_or_default(),
        image_id: String::new(),
        container_id: current.map(|r| container_id(&r.id)),
        // Running, and its probes passed: startup for `started`, readiness too for `ready`.
        ready: running && current.is_some_and(|r| r.ready(container)),
        started: Some(running && current.is_some_and(|r| r.started(container))),
        restart_count: current.map_or(0, |r| r.restart_count),
        state: Some(state),
        last_state: Some(last_state.unwrap_or_default()),
        ..ContainerStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str, exit: i32, last_terminated: bool) -> ContainerStatus {
        let mut s = ContainerState::default();
        match state {
            "running" => s.running = Some(Default::default()),
            "terminated" => {
                s.terminated = Some(ContainerStateTerminated {
                    exit_code: exit,
                    ..Default::default()
                })
            }
            _ => s.waiting = Some(Default::default()),
        }
        ContainerStatus {
            state: Some(s),
            last_state: last_terminated.then(|| ContainerState {
                terminated: Some(Default::default()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn phases_follow_get_phase() {
        assert_eq!(phase(&[status("running", 0, false)], "Always"), "Running");
        assert_eq!(phase(&[status("waiting", 0, false)], "Always"), "Pending");
        assert_eq!(phase(&[status("waiting", 0, true)], "Always"), "Running");
        assert_eq!(phase(&[status("terminated", 0, false)], "Never"), "Succeeded");
        assert_eq!(phase(&[status("terminated", 1, false)], "Never"), "Failed");
        assert_eq!(phase(&[status("terminated", 1, false)], "OnFailure"), "Running");
        assert_eq!(
            phase(
                &[status("terminated", 0, false), status("running", 0, false)],
                "Never"
            ),
            "Running"
        );
    }
}
