#!/usr/bin/env bash
# `make up`: runs Berth on this machine with everything it needs, then the
# demo job, and keeps running until Ctrl-C, when it stops what it started.
#
# - containerd: the system's, if one answers at /run/containerd/containerd.sock;
#   otherwise its own, with root, state and socket under .berth/containerd.
# - a local OCI registry on 127.0.0.1:5000 holding berth/demo:latest, built
#   from busybox-static (there is no internet).
# - `berth up`: API server on an embedded store, controllers, one agent.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
STATE=${BERTH_STATE_DIR:-$ROOT/.berth}
BERTH=${BERTH:-$ROOT/target/debug/berth}
REGISTRY=127.0.0.1:5000
mkdir -p "$STATE"
export KUBECONFIG="$STATE/kubeconfig"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [ -n "${CTRD_ROOT:-}" ]; then
    # containerd is gone; unmount what its shims left behind.
    grep -o " $STATE/containerd/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  fi
  echo "stopped."
}
trap cleanup INT TERM EXIT

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
}

# containerd
SOCK=/run/containerd/containerd.sock
if ! ctr --address "$SOCK" version >/dev/null 2>&1; then
  CTRD_ROOT=$STATE/containerd
  SOCK=$CTRD_ROOT/containerd.sock
  mkdir -p "$CTRD_ROOT/root" "$CTRD_ROOT/state"
  cat > "$CTRD_ROOT/config.toml" <<TOML
version = 2
root = "$CTRD_ROOT/root"
state = "$CTRD_ROOT/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
TOML
  echo "starting containerd (state in $CTRD_ROOT)"
  containerd --config "$CTRD_ROOT/config.toml" >"$CTRD_ROOT/containerd.log" 2>&1 &
  pids+=($!)
  wait_for 30 containerd ctr --address "$SOCK" version
fi

# registry and demo image
if ! curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; then
  mkdir -p "$STATE/registry"
  cat > "$STATE/registry/config.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE/registry/data
http:
  addr: $REGISTRY
YML
  echo "starting a local registry at $REGISTRY"
  docker-registry serve "$STATE/registry/config.yml" >"$STATE/registry/registry.log" 2>&1 &
  pids+=($!)
  wait_for 30 "the registry" curl -fsS "http://$REGISTRY/v2/"
fi
bash e2e/scripts/build-demo-image.sh "$REGISTRY" berth/demo:latest

# berth
"$BERTH" up --state-dir "$STATE" --containerd-socket "$SOCK" --listen 127.0.0.1:6443 --logs-listen 127.0.0.1:10250 &
pids+=($!)
wait_for 60 "the API server" kubectl get --raw /readyz
wait_for 60 "the agent to register" sh -c "kubectl get agents.berth.dev -o name | grep -q ."

echo
echo "== applying manifests/examples/hello-job.yaml"
kubectl delete -f manifests/examples/hello-job.yaml --ignore-not-found --wait >/dev/null
kubectl apply -f manifests/examples/hello-job.yaml
kubectl wait --for=condition=Complete --timeout=180s jobs.berth.dev/hello
kubectl get jobs.berth.dev,placements.berth.dev
echo
echo "== berth logs hello"
"$BERTH" logs hello
echo
echo "Berth is running. In another terminal:"
echo "  export KUBECONFIG=$KUBECONFIG"
echo "  kubectl get agents.berth.dev,jobs.berth.dev,placements.berth.dev"
echo "  $BERTH logs hello"
echo "Press Ctrl-C to stop."
wait "${pids[-1]}"
