#!/usr/bin/env bash
# End-to-end scenario of edgewatch against a real Kubernetes cluster (kind or k3d).
#
# It cannot run where edgewatch is built (no cluster there); tests/operator_e2e.rs runs
# the same scenario against the in-process API stand-in. Here the API server is real;
# the operator replicas and the IoT Hub simulator run on this machine, the operator
# reaching the cluster through the current kubeconfig context.
#
# Usage:
#   tests/e2e-cluster.sh                 # use the current kubectl context
#   E2E_CREATE_CLUSTER=kind tests/e2e-cluster.sh   # create (and delete) a kind cluster
#   E2E_CREATE_CLUSTER=k3d  tests/e2e-cluster.sh   # same with k3d
#
# Needs: cargo, kubectl, curl, and kind or k3d when asked to create the cluster.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NS=iot
WATCH=plant-a-gateways
CLUSTER=edgewatch-e2e
WORK="$(mktemp -d)"
PIDS=()

log() { printf '[e2e] %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

cleanup() {
  local status=$?
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done
  kubectl delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  kubectl -n default delete lease edgewatch-e2e --ignore-not-found >/dev/null 2>&1 || true
  case "${E2E_CREATE_CLUSTER:-}" in
    kind) kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true ;;
    k3d) k3d cluster delete "$CLUSTER" >/dev/null 2>&1 || true ;;
  esac
  if [[ $status -ne 0 ]]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $status
}
trap cleanup EXIT

for tool in cargo kubectl curl; do
  command -v "$tool" >/dev/null || fail "$tool is required"
done

case "${E2E_CREATE_CLUSTER:-}" in
  kind) kind create cluster --name "$CLUSTER" --wait 120s ;;
  k3d) k3d cluster create "$CLUSTER" --wait ;;
  "") ;;
  *) fail "E2E_CREATE_CLUSTER must be kind or k3d" ;;
esac
kubectl version >/dev/null || fail "no reachable cluster in the current context"

log "building edgewatch"
cargo build --manifest-path "$ROOT/Cargo.toml" --quiet
BIN="$ROOT/target/debug/edgewatch"

# --- the simulated hub ---------------------------------------------------------------
cat >"$WORK/scenario.yaml" <<'YAML'
hub: plant-a
devices:
  - id: line1-gw
    tags: {site: plant-a}
  - id: line2-gw
    tags: {site: plant-a}
YAML
"$BIN" sim --scenario "$WORK/scenario.yaml" --devices 0 --port 0 --tls self-signed \
  --ca-out "$WORK/sim-ca.pem" >"$WORK/sim.out" 2>"$WORK/sim.err" &
PIDS+=($!)
for _ in $(seq 1 100); do
  grep -q '^connection string:' "$WORK/sim.out" 2>/dev/null && break
  sleep 0.1
done
CS="$(sed -n 's/^connection string: *//p' "$WORK/sim.out")"
[[ -n "$CS" ]] || fail "the simulator printed no connection string"
SIM_URL="https://$(sed -n 's/^HostName=\([^;]*\);.*/\1/p' <<<"$CS")"
sim_action() { # device, action JSON
  curl -fsS --cacert "$WORK/sim-ca.pem" -X POST -H 'content-type: application/json' \
    -d "$2" "$SIM_URL/_sim/devices/$1/actions" >/dev/null
}

# --- the cluster side ----------------------------------------------------------------
log "installing the CRD and the example watch"
"$BIN" crd | kubectl apply --server-side -f - >/dev/null
kubectl wait --for=condition=Established crd/edgedevicewatches.edgewatch.dev --timeout=60s >/dev/null
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$NS" create secret generic plant-a-iothub --from-literal=connectionString="$CS" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
sed 's/^\(  devices:\)$/  interval: 10s\n  ping: {interval: 10s, timeoutSeconds: 5}\n\1/' \
  "$ROOT/examples/watch-minimal.yaml" | kubectl apply -f - >/dev/null

start_replica() { # name
  POD_NAME="$1" POD_NAMESPACE=default "$BIN" run --log-format json \
    --lease-name edgewatch-e2e --lease-duration 6s --iothub-ca-file "$WORK/sim-ca.pem" \
    >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  echo $!
}

jsonpath() { kubectl -n "$NS" get edw "$WATCH" -o "jsonpath=$1" 2>/dev/null || true; }
condition() { jsonpath "{.status.conditions[?(@.type==\"$1\")].$2}"; }
wait_until() { # description, timeout seconds, command...
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    (( SECONDS < deadline )) || fail "timed out waiting for: $what"
    sleep 1
  done
  log "ok: $what"
}
is() { [[ "$("${@:1:$#-1}")" == "${!#}" ]]; }
warning_event() {
  kubectl -n "$NS" get events.events.k8s.io -o \
    "jsonpath={range .items[?(@.regarding.name==\"$WATCH\")]}{.type}/{.reason}{\"\n\"}{end}" |
    grep -qx "$1"
}

FIRST="$(start_replica edgewatch-a)"
wait_until "replica a leads" 30 is kubectl -n default get lease edgewatch-e2e -o 'jsonpath={.spec.holderIdentity}' edgewatch-a
start_replica edgewatch-b >/dev/null

wait_until "Ready True" 60 is condition Ready status True
is jsonpath '{.status.summary.devices}' 2 || fail "two devices expected"

log "module crash"
sim_action line1-gw '{"crash": {"module": "SimulatedTemperatureSensor", "exitCode": 1}}'
wait_until "ModulesHealthy False" 40 is condition ModulesHealthy status False
wait_until "a Warning Event for the module" 20 warning_event "Warning/$(condition ModulesHealthy reason)"
sim_action line1-gw '{"recover": {"module": "SimulatedTemperatureSensor"}}'
wait_until "ModulesHealthy True again" 60 is condition ModulesHealthy status True
wait_until "a Normal recovery Event" 20 warning_event "Normal/AllModulesHealthy"

log "device offline"
sim_action line2-gw '{"offline": {}}'
wait_until "Reachable False (DeviceNotOnline)" 40 is condition Reachable reason DeviceNotOnline
sim_action line2-gw '{"online": {}}'
wait_until "Reachable True again" 40 is condition Reachable status True

log "deployment pending, then in sync"
sim_action line1-gw '{"deploy": {"images": {"SimulatedTemperatureSensor": "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5.1"}, "outcome": "applied", "delay": "15s"}}'
wait_until "InSync not True while the deployment is applied" 30 bash -c "[[ \"\$(kubectl -n $NS get edw $WATCH -o 'jsonpath={.status.conditions[?(@.type==\"InSync\")].status}')\" != True ]]"
wait_until "InSync True again" 60 is condition InSync status True

log "leader failover"
WRITES_BEFORE="$(jsonpath '{.metadata.resourceVersion}')"
kill -9 "$FIRST"
wait_until "replica b takes over the Lease" 30 is kubectl -n default get lease edgewatch-e2e -o 'jsonpath={.spec.holderIdentity}' edgewatch-b
sim_action line2-gw '{"offline": {}}'
wait_until "replica b writes the status" 40 is condition Reachable reason DeviceNotOnline
[[ "$(jsonpath '{.metadata.resourceVersion}')" != "$WRITES_BEFORE" ]] || fail "no write after failover"

log "all checks passed"
