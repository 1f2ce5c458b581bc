#!/usr/bin/env bash
# Builds the demo image from busybox-static (no internet needed) and pushes
# it to a registry over plain HTTP.
#   build-demo-image.sh REGISTRY_HOST [NAME:TAG]     e.g. 127.0.0.1:5000 berth/demo:latest
# With DEST_CREDS=user:password it pushes with those credentials; with
# MARKER=text the image also holds /etc/berth-marker (a layer of its own).
set -euo pipefail
REGISTRY=${1:?usage: build-demo-image.sh REGISTRY_HOST [NAME:TAG]}
NAME=${2:-berth/demo:latest}
BUSYBOX=${BUSYBOX:-/bin/busybox}
file -L "$BUSYBOX" | grep -q "statically linked" || { echo "$BUSYBOX is not static: install busybox-static" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
layout=$work/layout
umoci init --layout "$layout"
umoci new --image "$layout:demo"
umoci unpack --rootless --image "$layout:demo" "$work/bundle" >/dev/null
root=$work/bundle/rootfs
mkdir -p "$root/bin" "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in sh ash echo cat sleep yes head tail dd ls env true false seq hostname id wc grep sed printf kill ps \
  ping touch cut tr test [ rm mkdir httpd nc wget; do
  ln -sf busybox "$root/bin/$applet"
done
# A setuid-root `su`, for the isolation tests to show that no-new-privileges
# keeps a setuid binary from raising a process's privileges.
cp "$BUSYBOX" "$root/bin/su"
chmod 4755 "$root/bin/su"
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "nobody:x:65534:65534:nobody:/:/bin/false" >> "$root/etc/passwd"
if [ -n "${MARKER:-}" ]; then echo "$MARKER" > "$root/etc/berth-marker"; fi
umoci repack --image "$layout:demo" "$work/bundle" >/dev/null
umoci config --image "$layout:demo" --config.cmd /bin/sh --config.env PATH=/bin --config.workingdir / >/dev/null
creds=(); if [ -n "${DEST_CREDS:-}" ]; then creds=(--dest-creds "$DEST_CREDS"); fi
skopeo copy --quiet --dest-tls-verify=false "${creds[@]}" "oci:$layout:demo" "docker://$REGISTRY/$NAME"
echo "pushed $REGISTRY/$NAME"
