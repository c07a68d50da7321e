#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: installs what the tests need (Debian packages; the
# machine's own kubectl must be on PATH), starts an etcd on loopback for the etcd store's conformance
# run, then checks formatting and lints and runs every test with the etcd backend built in.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v kubectl >/dev/null; then
  echo "error: the end-to-end tests drive the real kubectl, and none is on PATH" >&2
  exit 1
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
etcd_dir=$(mktemp -d)
client_port=$(free_port)
peer_port=$(free_port)
etcd --name test --data-dir "$etcd_dir/data" \
  --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "test=http://127.0.0.1:$peer_port" >"$etcd_dir/log" 2>&1 &
etcd_pid=$!
cleanup() {
  local status=$?
  kill "$etcd_pid" 2>/dev/null || true
  wait "$etcd_pid" 2>/dev/null || true
  rm -rf "$etcd_dir"
  exit "$status"
}
trap cleanup EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$client_port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$client_port/health" >/dev/null || { cat "$etcd_dir/log"; echo "error: etcd did not start" >&2; exit 1; }
export GLASSHOUSE_TEST_ETCD="127.0.0.1:$client_port"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features etcd -- -D warnings
cargo test --workspace --features etcd
