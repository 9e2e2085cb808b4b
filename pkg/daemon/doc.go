// Package daemon is xd's core: it owns the metadata database, the content
// store, the overlay snapshotter, the event exchange and the shims, and
// serves xd's ttrpc API (proto/xd/v1) plus the events Forward service its
// shims publish to. API handlers are thin adapters over Server methods.
//
// xd keeps no container state only in memory: the database holds what the
// user asked for, each task's bundle holds its shim's address, and the shim
// holds the process state, so Recover rebuilds everything after a restart.
//
// Internal to xstack; no API stability.
package daemon
