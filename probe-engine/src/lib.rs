//! Probe engine: liveness, readiness and startup probes (httpGet, tcpSocket, exec, grpc) with the kubelet's thresholds. Not built yet; see the issue tracker.
