// Package oom tells the shim when the kernel's OOM killer acts in a
// container's memory cgroup, so it can publish TaskOOM: on cgroup v1 through
// an eventfd registered on memory.oom_control, on cgroup v2 by watching
// memory.events with inotify and comparing its oom_kill count. Each watch
// is one goroutine blocked on a non-blocking descriptor in the Go runtime's
// poller, so idle watches hold no OS thread.
//
// Internal to xstack; no API stability.
package oom
