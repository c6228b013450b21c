#!/bin/sh
# docker-image.sh prepares Docker for the benchmark harnesses' docker peers:
# it installs the daemon and debootstrap from the configured Debian mirror
# when they are missing, starts dockerd without networking (no bridge, no
# iptables, no forwarding) when no daemon answers, and builds a minimal
# Debian image with python3, pybox-bench-python:latest, from a debootstrap
# root file system. It is idempotent: each step is skipped when done.
#
#	sh bench/docker-image.sh            # or IMAGE=name:tag sh bench/docker-image.sh
set -eu

IMAGE=${IMAGE:-pybox-bench-python:latest}
SUITE=${SUITE:-bookworm}
ROOTFS=${ROOTFS:-/tmp/pybox-bench-rootfs}
start=$(date +%s)

# The mirror of the first deb.debian.org-style entry in the apt sources: the
# only Debian archive this machine is meant to reach.
mirror() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' "$f"
	done | head -n 1
	grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
		awk '$2 ~ /debian\/?$/ {print $2}' | head -n 1
}
MIRROR=${MIRROR:-$(mirror | head -n 1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

step() { echo "docker-image: $* ($(($(date +%s) - start)) s)"; }

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
	step "installing docker.io and debootstrap"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap
fi

if ! docker info >/dev/null 2>&1; then
	step "starting dockerd (no bridge, no iptables, no forwarding)"
	nohup dockerd --bridge=none --iptables=false --ip-forward=false \
		>/var/log/pybox-bench-dockerd.log 2>&1 &
	i=0
	until docker info >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 60 ]; then
			echo "docker-image: dockerd did not answer in 60 s; see /var/log/pybox-bench-dockerd.log" >&2
			exit 1
		fi
		sleep 1
	done
fi

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
	step "$IMAGE exists"
	exit 0
fi

step "debootstrap $SUITE from $MIRROR into $ROOTFS"
rm -rf "$ROOTFS"
debootstrap --variant=minbase --include=python3 "$SUITE" "$ROOTFS" "$MIRROR"
step "importing $ROOTFS as $IMAGE"
tar -C "$ROOTFS" -c . | docker import - "$IMAGE"
rm -rf "$ROOTFS"
docker run --rm --network none "$IMAGE" python3 -c 'import sys; print(sys.version)'
step "done"
