#!/usr/bin/env bash
# The benchmarks recorded in BENCHMARKS.md, each measuring Glasshouse against its peer in the same run:
# the store alone (redb against etcd), the event correlator, the event shipper, the API under load
# with either store plus idle memory, pod start-up, the log pipeline, the probe engine, the HPA's
# reaction time and metrics-server's memory.
# Starts its own etcd on loopback. Takes a few minutes; results go to stdout (and target/criterion).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/etcd.sh

# The probe benchmark's target and peer: nginx, prometheus-blackbox-exporter and wrk.
install_missing nginx:nginx prometheus-blackbox-exporter:prometheus-blackbox-exporter wrk:wrk
start_etcd
echo "## store throughput (criterion; elements are single-key operations, 64 in flight)"
cargo bench -p control-plane --features etcd --bench store -- --noplot 2>&1 | grep -E "^store/|time:|thrpt:"
echo
echo "## event correlator throughput on one core (criterion; elements are events)"
taskset -c 0 cargo bench -p eventer --bench correlator -- --noplot 2>&1 | grep -E "^correlator/|time:|thrpt:"
echo
echo "## event shipper: events/s to a file and a webhook sink, memory with a sink down"
cargo bench --bench shipper
echo
echo "## API latency, 50 clients at 500 requests/s in all"
cargo bench --features etcd --bench api
echo
echo "## pod start-up: 200 pods from one Deployment, then idle memory and CPU"
cargo bench --bench pods
echo
echo "## log pipeline: ingest against raw tantivy, write-to-searchable at 50,000 lines/s"
cargo bench -p logpipe --bench ingest
echo
echo "## log search over 10,000,000 lines, and peak memory while they are ingested"
cargo bench -p logpipe --bench search
echo
echo "## probe engine on one core: 10,000 httpGet and 10,000 tcpSocket probes a second, against blackbox_exporter"
cargo bench -p probe-engine --bench probes
echo
echo "## HPA reaction time: load step to /scale write, 1 s resolution and sync against 15 s and 15 s"
cargo bench --bench hpa
echo
echo "## metrics-server memory for 200 pods"
cargo bench -p metrics-server --bench memory
echo
echo "## scrape cost: 100,000 series through prometheus-client and the text conversion, /metrics/state for 200 and 6,000 pods"
cargo bench -p control-plane --bench exposition
echo
echo "## scrape cost of every endpoint of glasshouse up with 200 pods"
cargo bench --bench scrape
