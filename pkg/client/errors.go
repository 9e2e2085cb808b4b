package client

import (
	"errors"
	"regexp"
	"strings"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Code is the RPC status code of err (codes.OK for nil, codes.Unknown for
// errors that carry none).
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Code()
	}
	return codes.Unknown
}

// IsNotFound reports whether xd answered NotFound.
func IsNotFound(err error) bool { return Code(err) == codes.NotFound }

var rpcPrefix = regexp.MustCompile(`(?:rpc error|ttrpc): code = [A-Za-z]+ desc = `)

// categories are the error strings of github.com/containerd/errdefs that
// xd's handlers append when they wrap a category ("...: not found").
var categories = []string{
	"not found", "already exists", "invalid argument", "failed precondition",
	"unavailable", "not implemented", "unknown", "conflict", "permission denied",
	"resource exhausted", "deadline exceeded", "canceled", "aborted",
	"out of range", "data loss", "unauthenticated", "internal",
}

// Message is err as a user should read it: the RPC status message without
// the "rpc error: code = X desc = " prefixes (also when nested, as when xd
// wraps a shim's error) nor a trailing errdefs category word.
func Message(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, ttrpc.ErrClosed) {
		return "connection to xd closed"
	}
	msg := err.Error()
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		if m := se.GRPCStatus().Message(); m != "" {
			msg = m
		}
	}
	msg = rpcPrefix.ReplaceAllString(msg, "")
	for _, c := range categories {
		if t, ok := strings.CutSuffix(msg, ": "+c); ok && t != "" {
			msg = t
			break
		}
	}
	return strings.TrimSpace(msg)
}
