// Package runtime holds the black-box end-to-end suite of the OCI runtime
// CLI (package runtime_test; this file only documents it). Every test runs
// against each runtime in XSTACK_RUNTIMES (runc and xrunc by default) and
// proves that xrunc is a drop-in for runc 1.1: commands, flags, state JSON,
// error words, exit codes and container behaviour. The tests need root; see
// integration/README.md.
//
// Internal to xstack; no API stability.
package runtime
