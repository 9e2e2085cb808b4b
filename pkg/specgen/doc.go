// Package specgen turns an image's config and the user's run options
// (xdv1.RunOptions) into the OCI runtime spec xd writes into a bundle and
// hands to the shim, and builds the process of an exec into such a
// container. The defaults (mounts, capabilities, masked paths, device
// rules) follow what containerd's default Linux spec gives, so images
// behave as they do under docker, nerdctl and ctr.
//
// User and group names are resolved in the container's rootfs, which the
// image controls: /etc/passwd and /etc/group are opened with
// pkg/safepath (openat2 RESOLVE_IN_ROOT), so a symlink planted in the
// image can never make xd read a host file.
//
// Internal to xstack; no API stability.
package specgen
