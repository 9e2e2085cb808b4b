// Package xd holds the end-to-end tests of the daemon and its client: a
// real xd (with real xshim and xrunc, or containerd-shim-runc-v2 and runc)
// started per test in temp dirs, driven with the real xctl binary and over
// ttrpc, with images built from the host's busybox, imported, and pulled
// from a real registry (Debian's docker-registry on 127.0.0.1).
package xd
