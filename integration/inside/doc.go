// The Go runtime must not open files of its own (it keeps cgroup CPU limit
// files open for GOMAXPROCS): the fds verb reports every open descriptor.

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command inside is the static helper that the integration suites place at
// /xtest in every test rootfs. It asserts from inside the container: each verb
// prints machine-readable output (one value per line, key=value lines or JSON)
// and exits non-zero with a message on stderr when the verb itself fails.
//
// It is built with CGO_ENABLED=0 by integration/internal/testenv.
//
// Internal to xstack; no API stability.
package main
