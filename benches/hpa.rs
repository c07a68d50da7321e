//! HPA reaction time: from a load step to the write of the target's `/scale`, on `glasshouse up` (release
//! build). A Deployment of CPU-bound HTTP servers (each request burns 20 ms of CPU; 100m requested) sits
//! idle at one replica under an HPA on 50 % CPU; at a random moment of the sync cycle two clients start
//! sending requests through its Service, and the clock stops when the Deployment's `/scale` shows more
//! than one replica. Each trial starts from a fresh HPA on an idle, one-replica Deployment.
//!
//! Measured with Glasshouse's defaults (1 s metric resolution, 1 s HPA sync) and, in the same run, with
//! upstream's (15 s metrics-server resolution as its manifest ships, 15 s HPA sync period).
//!
//! `cargo bench --bench hpa`

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const APP: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "busy"},
 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "busy"}},
  "template": {"metadata": {"labels": {"app": "busy"}},
   "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "web", "image": "python:3",
    "command": ["python3", "-c", "import http.server, os, time\nclass H(http.server.BaseHTTPRequestHandler):\n  def do_GET(self):\n    end = time.process_time() + 0.02\n    while time.process_time() < end: pass\n    self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')\n  def log_message(self, *a): pass\nhttp.server.HTTPServer((os.environ['POD_IP'], 8080), H).serve_forever()\n"],
    "ports": [{"name": "http", "containerPort": 8080}],
    "resources": {"requests": {"cpu": "100m"}},
    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}}"#;

struct Api {
    http: reqwest::Client,
    base: String,
    bearer: String,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("Authorization", &self.bearer);
        if let Some(body) = body {
            let content_type = if method == reqwest::Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            request = request
                .header("Content-Type", content_type)
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        response.json().await.unwrap_or(Value::Null)
    }

    async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await
    }
}

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/default/deployments/busy";
const HPAS: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";

fn request(addr: &str) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reply = Vec::new();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok()
        && stream.read_to_end(&mut reply).is_ok()
        && reply.starts_with(b"HTTP/1.0 200")
}

/// Two clients looping over requests until `stop` (or two minutes).
fn load(addr: String, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..2)
        .map(|_| {
            let (addr, stop) = (addr.clone(), stop.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                    if !request(&addr) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect()
}

async fn until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One setting's trials: the reaction times in seconds.
async fn trials(resolution: u64, sync: u64, count: usize) -> Vec<f64> {
    let seconds = |s: u64| format!("{s}s");
    let server = common::start(&[
        "--metric-resolution",
        &seconds(resolution),
        "--hpa-sync-period",
        &seconds(sync),
    ]);
    let api = Api {
        http: server.http(2),
        base: server.api.clone(),
        bearer: format!("Bearer {}", server.token),
    };
    until("the node", Duration::from_secs(60), async || {
        api.get("/api/v1/nodes").await["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty())
    })
    .await;
    api.send(
        reqwest::Method::POST,
        "/apis/apps/v1/namespaces/default/deployments",
        Some(serde_json::from_str(APP).unwrap()),
    )
    .await;
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "busy"},
        "spec": {"selector": {"app": "busy"}, "ports": [{"port": 80, "targetPort": "http"}]}});
    let service = api
        .send(
            reqwest::Method::POST,
            "/api/v1/namespaces/default/services",
            Some(service),
        )
        .await;
    let addr = format!("{}:80", service["spec"]["clusterIP"].as_str().unwrap());
    let mut reactions = Vec::new();
    for trial in 0..count {
        // Idle at one ready replica, with usage windows that show it.
        api.send(
            reqwest::Method::PATCH,
            DEPLOYMENT,
            Some(json!({"spec": {"replicas": 1}})),
        )
        .await;
        until("one ready replica", Duration::from_secs(120), async || {
            let d = api.get(DEPLOYMENT).await;
            d["status"]["replicas"] == 1 && d["status"]["readyReplicas"] == 1
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2 * resolution + 2)).await;
        let name = format!("busy-{trial}");
        let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "busy"},
                "minReplicas": 1, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}});
        api.send(reqwest::Method::POST, HPAS, Some(hpa)).await;
        let hpa_path = format!("{HPAS}/{name}");
        until("the HPA's first metric", Duration::from_secs(120), async || {
            api.get(&hpa_path).await["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
                .is_number()
        })
        .await;
        // A load step at a random moment of the longer of the two cycles.
        let cycle = resolution.max(sync) * 1000;
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..cycle))).await;
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let clients = load(addr.clone(), stop.clone());
        until("the rescale", Duration::from_secs(110), async || {
            api.get(&format!("{DEPLOYMENT}/scale")).await["spec"]["replicas"]
                .as_i64()
                .is_some_and(|r| r > 1)
        })
        .await;
        let reaction = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        api.send(reqwest::Method::DELETE, &hpa_path, None).await;
        println!("    trial {}: {reaction:.1} s", trial + 1);
        reactions.push(reaction);
    }
    reactions
}

fn summary(label: &str, reactions: &[f64]) {
    let mean = reactions.iter().sum::<f64>() / reactions.len() as f64;
    let max = reactions.iter().cloned().fold(0.0, f64::max);
    let min = reactions.iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "  {label}: load step → /scale write over {} trials: mean {mean:.1} s, min {min:.1} s, max {max:.1} s",
        reactions.len()
    );
}

#[tokio::main]
async fn main() {
    println!("  glasshouse defaults (--metric-resolution 1s --hpa-sync-period 1s):");
    let fast = trials(1, 1, 5).await;
    println!("  upstream-equivalent (--metric-resolution 15s --hpa-sync-period 15s):");
    let upstream = trials(15, 15, 3).await;
    summary("1 s resolution, 1 s sync", &fast);
    summary("15 s resolution, 15 s sync", &upstream);
}
