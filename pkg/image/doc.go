// Package image turns image references, archives and registries into
// content in a content.Store and into named image records.
//
// It understands OCI and Docker schema2 manifests and indexes, picks the
// linux/amd64 image out of multi-platform indexes (Resolve), imports OCI
// image-layout and docker-archive tarballs (Import), and pulls from OCI
// distribution (v2) registries with anonymous, Basic and Bearer-token auth
// (Pull). Every blob is verified against its digest before it is stored;
// on failure nothing is named, and blobs already stored are left for GC.
//
// Internal to xstack; no API stability.
package image
