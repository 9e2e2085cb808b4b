// Package client is the Go client of xd's ttrpc API (proto/xd/v1): it dials
// xd's unix socket, puts the namespace on every call, unary and streaming,
// and hands out the typed service clients. xctl and the integration tests
// use it; it imports nothing of the daemon.
//
// Internal to xstack; no API stability.
package client
