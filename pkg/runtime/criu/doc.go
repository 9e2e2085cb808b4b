// Package criu answers whether checkpoint/restore can work here. xrunc
// does not implement checkpoint and restore yet; its commands exist with
// runc's flags so that callers get an error that says why (no CRIU, or a
// CRIU that cannot run on this kernel), not "command does not exist".
package criu
