// Package snapshot is xd's overlayfs snapshotter: a tree of filesystem
// snapshots (image layers committed once and shared by every child, plus
// writable and read-only snapshots on top of them) and the mounts that
// assemble them.
//
// Layout under the root: metadata.db (bbolt) holds one record per snapshot;
// snapshots/<id>/fs is the snapshot's own directory (an overlay upper dir
// for active snapshots, a lower dir once committed) and snapshots/<id>/work
// the overlay work dir. Directories are built under a temporary name and
// renamed into place inside the bbolt transaction that records them, and
// removed the same way, so after a crash at any point every leftover
// directory without a record is garbage, which NewOverlay deletes.
//
// Internal to xstack; no API stability.
package snapshot
