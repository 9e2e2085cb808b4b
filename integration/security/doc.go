// Package security is xstack's CVE regression suite (package security_test;
// this file only documents it). Each test sets up the precondition of one
// class of published runtime flaw (../shared/docs/security.md) and asserts
// that the runtime did not fall for it, without ever performing the
// dangerous write: marker files in temp dirs stand in for host secrets.
//
// Every probe runs against each runtime in XSTACK_RUNTIMES (runc and xrunc
// by default). Debian 12's runc 1.1.5 predates several fixes, so for each
// CVE the suite records what runc 1.1.5 does: where it is known vulnerable
// the probe must find the flaw in it, which proves the test can fail. The
// table of verdicts is printed at the end of the run.
//
// Internal to xstack; no API stability.
package security
