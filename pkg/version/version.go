// Package version holds the build's version strings, set by the Makefile
// through -ldflags. Internal to xstack; no API stability.
package version

// Version and Commit are overridden at link time (see Makefile).
var (
	Version = "0.1.0-dev"
	Commit  = "unknown"
)

// OCISpec is the newest OCI runtime-spec version xrunc implements.
const OCISpec = "1.2.0"
