// Package procattr turns the per-process kernel attributes of a runtime
// spec (process.scheduler, process.ioPriority, linux.personality) into
// their syscall values, and applies them to the calling process. The
// parent validates with the converters at create and exec, so a bad value
// fails before anything exists; the init applies them right before execve.
package procattr
