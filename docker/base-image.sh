#!/usr/bin/env bash
# Build a Debian bookworm base image with Python from Debian's own packages, for hosts
# that can reach Debian's package mirrors and PyPI but no image registry (CI).
#
#   docker/base-image.sh [TAG]        (default tag: hypolab/base:bookworm)
#
# debootstrap uses its default mirror unless DEBIAN_MIRROR is set. The result is what
# `BASE_IMAGE` points at when images are built offline: `make base-image` then
# `make images BASE_IMAGE=hypolab/base:bookworm`. Skips work when the tag exists
# (set FORCE=1 to rebuild).
set -euo pipefail

tag="${1:-hypolab/base:bookworm}"
suite="${DEBIAN_SUITE:-bookworm}"
packages="python3,python3-venv,python3-pip,ca-certificates"

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already exists (FORCE=1 rebuilds it)"
  exit 0
fi
for tool in debootstrap docker; do
  command -v "$tool" >/dev/null || { echo "base-image: '$tool' not found (apt-get install $tool)" >&2; exit 1; }
done

rootfs="$(mktemp -d /tmp/hypolab-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

echo "debootstrap $suite into $rootfs (takes a minute or two)"
# shellcheck disable=SC2086
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" ${DEBIAN_MIRROR:-} >"$rootfs.log" 2>&1 \
  || { tail -n 20 "$rootfs.log" >&2; echo "base-image: debootstrap failed (full log: $rootfs.log)" >&2; exit 1; }
rm -f "$rootfs.log"

# Smaller image: no apt lists, docs or caches.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*

tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  - "$tag" >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
