# Sourced by the test and benchmark scripts: starts a throwaway etcd on free loopback ports, exports its
# address as GLASSHOUSE_TEST_ETCD, and stops it (keeping the script's exit status) when the script exits.

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_etcd() {
  etcd_dir=$(mktemp -d)
  local client_port peer_port
  client_port=$(free_port)
  peer_port=$(free_port)
  etcd --name test --data-dir "$etcd_dir/data" \
    --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "test=http://127.0.0.1:$peer_port" >"$etcd_dir/log" 2>&1 &
  etcd_pid=$!
  trap stop_etcd EXIT
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$client_port/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! curl -fsS "http://127.0.0.1:$client_port/health" >/dev/null; then
    cat "$etcd_dir/log"
    echo "error: etcd did not start" >&2
    exit 1
  fi
  export GLASSHOUSE_TEST_ETCD="127.0.0.1:$client_port" GLASSHOUSE_TEST_ETCD_PID="$etcd_pid"
}

stop_etcd() {
  local status=$?
  kill "$etcd_pid" 2>/dev/null || true
  wait "$etcd_pid" 2>/dev/null || true
  rm -rf "$etcd_dir"
  exit "$status"
}

# Installs the Debian packages the scripts need when their commands are missing; extra needs are
# given as COMMAND:PACKAGE arguments.
install_missing() {
  local missing=() need
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v protoc >/dev/null || missing+=(protobuf-compiler)
  command -v curl >/dev/null || missing+=(curl)
  for need in "$@"; do
    command -v "${need%%:*}" >/dev/null || missing+=("${need#*:}")
  done
  if ((${#missing[@]})); then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    echo "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
