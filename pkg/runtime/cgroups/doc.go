// Package cgroups places a container's processes in their own control groups
// and manages them for the short-lived xrunc commands: it resolves the OCI
// cgroupsPath to a directory in every mounted hierarchy (cgroup v1, including a
// hybrid host's v2 mount, or the single cgroup v2 tree), creates those
// directories, writes the spec's resource limits, lists, freezes and kills the
// processes inside, reports usage statistics and removes the directories again.
// It talks to cgroupfs directly with as few system calls as it can, keeps the
// paths it resolved so a later command can rebuild the manager without scanning
// the filesystem, and depends only on the standard library, golang.org/x/sys
// and the OCI runtime-spec types.
//
// Internal to xstack; no API stability.
package cgroups
