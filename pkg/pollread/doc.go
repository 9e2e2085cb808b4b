// Package pollread reads pipes and FIFOs that stay idle most of their life
// (a container's output, a shim's log) without holding a buffer while
// waiting: the wait happens in the runtime's poller, the buffer is borrowed
// from a pool only for the read(2) itself, and the caller gets an exact-size
// copy of what arrived. With a buffer on every waiting reader's stack, xd
// held 64 KiB of stack per container stream, most of its memory at a
// thousand containers.
//
// Internal to xstack; no API stability.
package pollread
