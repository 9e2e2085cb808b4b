// Package content is xstack's content-addressed blob store.
//
// Blobs live at <root>/blobs/<algorithm>/<hex> and are only ever created by
// renaming a fully written, size- and digest-verified, fsync'd temporary
// file from <root>/ingest/ into place, so a reader (or a crash) never sees a
// partial blob under its final name. Digest strings are validated before
// they are turned into paths; a hostile digest cannot name a file outside
// the store.
//
// The store knows nothing about images: which blobs are worth keeping is
// decided by the caller, which passes the set of roots to GC.
//
// Internal to xstack; no API stability.
package content
