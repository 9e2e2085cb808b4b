// Package idmap makes id-mapped bind mounts (a spec mount with uidMappings
// and gidMappings): the runtime, still on the host with all its
// privileges, clones the source tree detached, id-maps it with a user
// namespace holding the mount's mappings, and hands the tree to the init,
// which only attaches it in the container. Doing it in the init would fail
// in a user-namespaced container: id-mapping needs CAP_SYS_ADMIN over the
// source filesystem's user namespace, the host's.
package idmap
