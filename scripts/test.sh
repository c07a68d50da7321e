#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: installs what the tests need (Debian packages,
# playwright-core, @grafana/schema and typescript from npm; the machine's own kubectl must be on PATH),
# starts an etcd on loopback for the etcd store's conformance run, then checks formatting and lints and
# runs every test with the etcd backend built in.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/etcd.sh

# The UI test drives Debian's Chromium with playwright-core, installed from npm by name; the external
# metrics test queries Debian's Prometheus.
install_missing chromium:chromium node:nodejs npm:npm prometheus:prometheus
(cd tests/ui && { [ -d node_modules/playwright-core ] || npm install --no-audit --no-fund --silent; })
# The dashboards are type-checked against Grafana's schema types (@grafana/schema, typescript from npm).
(cd tests/dashboards && { [ -d node_modules/@grafana/schema ] || npm install --no-audit --no-fund --silent; })
if ! command -v kubectl >/dev/null; then
  echo "error: the end-to-end tests drive the real kubectl, and none is on PATH" >&2
  exit 1
fi
start_etcd

# A one-off build gains nothing from incremental artifacts, which would double the target directory.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features etcd -- -D warnings
log=$(mktemp)
cargo test --workspace --features etcd 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary, the last often a doc-test run
# of zero).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
