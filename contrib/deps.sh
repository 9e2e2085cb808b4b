#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing xstack need.
# Idempotent; run as root.
set -euo pipefail
packages=(
	build-essential     # gcc and the static libc for the C constructor of xrunc
	busybox-static      # test and quick-start rootfs
	runc crun           # reference runtimes for differential tests and benchmarks
	containerd          # reference shim (containerd-shim-runc-v2) and daemon for interop tests
	podman              # podman 4.3 and conmon drive xrunc in integration/podman
	docker-registry     # a real OCI registry on 127.0.0.1 for the pull tests
	skopeo              # pushes the test image into it
	systemd             # systemd-analyze verifies the xd unit
	criu                # checkpoint/restore: xrunc says why it cannot (CRIU 3.17 fails criu check on this kernel)
	jq iproute2 procps util-linux
	time                # GNU time: the bench measures the peak RSS of create with it
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	echo "note: Go is at /usr/local/go/bin; add it to PATH" >&2
fi
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || { echo "Go 1.26+ is required (https://go.dev/dl)" >&2; exit 1; }
