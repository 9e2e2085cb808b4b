// Package version holds the build's version strings, set by the Makefile
// through -ldflags. Internal to xstack; no API stability.
package version

// Version and Commit are overridden at link time (see Makefile).
var (
	Version = "0.1.0-dev"
	Commit  = "unknown"
)

// OCISpec is the newest OCI runtime-spec version xrunc implements: 1.3's
// Linux additions (netDevices, memoryPolicy) and its poststart rule (a
// failing hook fails start and stops the container) are in; intelRdt is
// refused with the reason, as on a host without resctrl.
const OCISpec = "1.3.0"
