// Package archive applies an uncompressed OCI image layer (a tar stream) to
// the upper directory of an overlay snapshot. Layers are hostile input: every
// entry is confined to the target directory (names are cleaned as if the
// directory were "/", parents are resolved with openat2 RESOLVE_IN_ROOT, the
// last component is never followed), device nodes are not created, and OCI
// whiteouts are converted to overlayfs ones.
//
// Internal to xstack; no API stability.
package archive
