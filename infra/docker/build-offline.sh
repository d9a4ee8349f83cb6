#!/usr/bin/env bash
# Build the image where no registry can be pulled from (podman, no Docker engine):
#   1. a Debian bookworm base made locally with debootstrap (once), imported into podman
#   2. the Dockerfile built on it, with chroot isolation and vfs storage
#   3. pip's CA bundle (a TLS-intercepting proxy) passed as the build secret `pipca`,
#      and a directory of local wheels (the CPU torch) bind-mounted for pip, if given
# Prints the image's size and the build's duration at the end.
#
#   infra/docker/build-offline.sh [IMAGE [PODMAN_BUILD_ARGS...]]
#                                     (default localhost/memnode:0.1.0; e.g. --no-cache)
#
# Env: BASE_IMAGE (localhost/bookworm-min), DEBIAN_MIRROR (from apt's sources),
# PIP_CA (pip's configured cert), WHEELS (a directory with the torch +cpu wheel, e.g.
# /opt/wheels), TORCH_INDEX_URL (an index with torch +cpu; with WHEELS: PyPI),
# WORK (/var/tmp/memnode-build: the base's root filesystem). Needs root.
set -euo pipefail

image="${1:-localhost/memnode:0.1.0}"
shift || true
root="$(cd "$(dirname "$0")/../.." && pwd)"
base="${BASE_IMAGE:-localhost/bookworm-min}"
work="${WORK:-/var/tmp/memnode-build}"
podman=(podman --storage-driver vfs --cgroup-manager cgroupfs --runtime runc)

for tool in podman debootstrap; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-offline.sh: needs $tool: apt-get install -y --no-install-recommends" \
      "podman buildah runc debootstrap" >&2
    exit 2
  fi
done

if ! "${podman[@]}" image exists "$base"; then
  mirror="${DEBIAN_MIRROR:-$(grep -rhoE 'https?://[^ ]+/debian/?' /etc/apt/sources.list \
    /etc/apt/sources.list.d/ 2>/dev/null | head -n1)}"
  mirror="${mirror:-http://deb.debian.org/debian}"
  echo "build-offline.sh: making $base from $mirror" >&2
  rm -rf "$work/rootfs"
  mkdir -p "$work"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log"
  rm -rf "$work"/rootfs/var/cache/apt/* "$work"/rootfs/var/lib/apt/lists/*
  tar -C "$work/rootfs" -c . | "${podman[@]}" import - "$base" >/dev/null
  rm -rf "$work/rootfs"
fi

args=(--pull=never --isolation chroot --format docker --build-arg "BASE_IMAGE=$base")
ca="${PIP_CA:-$({ pip config list || python3 -m pip config list; } 2>/dev/null \
  | sed -n "s/^global\.cert='\(.*\)'$/\1/p" | head -n1)}"
if [ -n "$ca" ] && [ -f "$ca" ]; then
  args+=(--secret "id=pipca,src=$ca")
fi
if [ -n "${WHEELS:-}" ]; then
  args+=(-v "$WHEELS:/wheels:ro" --build-arg PIP_FIND_LINKS=/wheels
         --build-arg "TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://pypi.org/simple}")
elif [ -n "${TORCH_INDEX_URL:-}" ]; then
  args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
fi

start=$(date +%s)
"${podman[@]}" build "${args[@]}" "$@" -f "$root/infra/docker/Dockerfile" -t "$image" "$root"
seconds=$(( $(date +%s) - start ))
size=$("${podman[@]}" image inspect "$image" --format '{{.Size}}')
echo "built $image: $((size / 1000000)) MB in ${seconds} s"
