//go:build !amd64

package nsenter

// helperELF is only built for amd64 so far; see Program.
const helperELF = ""
