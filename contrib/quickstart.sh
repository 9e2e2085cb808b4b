#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root: install what is
# needed, build, and run a busybox container with xrunc.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
contrib/deps.sh
make build

bundle=$(mktemp -d /tmp/xstack-quickstart.XXXXXX)
trap 'bin/xrunc delete --force quickstart >/dev/null 2>&1 || true; rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/"
for applet in sh echo cat ls ps hostname id; do ln -s busybox "$bundle/rootfs/bin/$applet"; done
bin/xrunc spec --bundle "$bundle"
# Non-interactive: no terminal, and a command that shows where it runs.
jq '.process.terminal = false | .process.args = ["sh", "-c", "echo hello from $(hostname): pid $$, $(id)"]' \
	"$bundle/config.json" > "$bundle/config.json.new" && mv "$bundle/config.json.new" "$bundle/config.json"
bin/xrunc run --bundle "$bundle" quickstart
