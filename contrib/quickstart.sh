#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root: install what is
# needed, build, start xd (unless one already serves /run/xd/xd.sock),
# import a busybox image built from the host's busybox-static, and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
contrib/deps.sh
make build

sock=/run/xd/xd.sock
image=xstack.local/busybox:latest
if ! bin/xctl --address "$sock" version >/dev/null 2>&1; then
	# Under systemd use `make install && systemctl enable --now xd` instead.
	mkdir -p /var/log
	setsid bin/xd --address "$sock" >>/var/log/xd.log 2>&1 < /dev/null &
	for _ in $(seq 100); do
		bin/xctl --address "$sock" version >/dev/null 2>&1 && break
		sleep 0.1
	done
	echo "xd started (pid $!, log /var/log/xd.log)"
fi
archive=$(mktemp /tmp/busybox-image.XXXXXX.tar)
trap 'rm -f "$archive"' EXIT
go run ./contrib/busybox-image -o "$archive" -name "$image"
bin/xctl --address "$sock" images import "$archive"
bin/xctl --address "$sock" run --rm "$image" echo hello
