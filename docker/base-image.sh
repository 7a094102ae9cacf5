#!/usr/bin/env bash
# docker/base-image.sh - make the debian:bookworm-slim base image from Debian's
# package mirror (no image registry is reachable here): debootstrap minbase,
# apt lists and cached debs removed, imported with `podman import`. Cached:
# does nothing when the image already exists (FORCE=1 rebuilds it).
set -euo pipefail
IMAGE=${BASE_IMAGE:-debian:bookworm-slim}

if [[ ${FORCE:-0} != 1 ]] && podman image exists "$IMAGE"; then
    echo "base image $IMAGE: cached"
    exit 0
fi

# The mirror the host's apt uses (deb822 .sources or one-line .list files).
mirror() {
    local f u
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        u=$(awk '/^URIs:/ {uri=$2} /^Suites:/ && / bookworm( |$)/ && uri !~ /security/ {print uri; exit}' "$f")
        [[ -n $u ]] && { echo "$u"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        u=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' "$f")
        [[ -n $u ]] && { echo "$u"; return; }
    done
    echo "https://deb.debian.org/debian"
}

MIRROR=${MIRROR:-$(mirror)}
root=$(mktemp -d "${TMPDIR:-/tmp}/tripletd-rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
echo "base image $IMAGE: debootstrap --variant=minbase bookworm from $MIRROR"
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 ||
    { tail -n 30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb \
       "$root"/var/cache/apt/*.bin "$root"/var/log/* "$root"/tmp/*
mkdir -p "$root"/var/lib/apt/lists/partial
# Keep images small, as debian:*-slim does: no docs or man pages from later installs.
cat >"$root/etc/dpkg/dpkg.cfg.d/tripletd-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
tar --numeric-owner -C "$root" -c . |
    podman import --quiet --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "base image $IMAGE: imported ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
