// Package xdv1 is xd's ttrpc API (Containers, Images, Tasks, Events,
// Version), generated from the .proto files beside it by `make protos`.
// The namespace of a call travels in the ttrpc metadata key "xd-namespace".
package xdv1

// NamespaceHeader is the ttrpc metadata key that carries the namespace.
const NamespaceHeader = "xd-namespace"

// DefaultNamespace is used when a call names none.
const DefaultNamespace = "default"
