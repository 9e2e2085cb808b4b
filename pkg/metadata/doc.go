// Package metadata is xd's persistent record of containers, images and the
// last known state of each container's task, in a bbolt database grouped by
// namespace like containerd's. Every change is one bbolt transaction, so the
// database is consistent after a crash at any point.
//
// Internal to xstack; no API stability.
package metadata
