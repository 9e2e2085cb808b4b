package client

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
		code codes.Code
	}{
		{"status", status.Error(codes.NotFound, `container "web" not found: not found`), `container "web" not found`, codes.NotFound},
		{"wrapped status", fmt.Errorf("start: %w", status.Error(codes.FailedPrecondition, "task is running")), "task is running", codes.FailedPrecondition},
		{"nested prefix", status.Error(codes.Unknown, `create task: rpc error: code = Unknown desc = xrunc create: exec: "nope": not found`), `create task: xrunc create: exec: "nope"`, codes.Unknown},
		{"string only", errors.New(`rpc error: code = AlreadyExists desc = container "a" already exists: already exists`), `container "a" already exists`, codes.Unknown},
		{"ttrpc prefix", errors.New("ttrpc: code = Unavailable desc = shim gone"), "shim gone", codes.Unknown},
		{"plain", errors.New("boom"), "boom", codes.Unknown},
		{"category only", status.Error(codes.NotFound, "not found"), "not found", codes.NotFound},
		{"closed", ttrpc.ErrClosed, "connection to xd closed", codes.Unknown},
		{"nil", nil, "", codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Message(tc.err); got != tc.want {
				t.Errorf("Message = %q, want %q", got, tc.want)
			}
			if got := Code(tc.err); got != tc.code {
				t.Errorf("Code = %v, want %v", got, tc.code)
			}
		})
	}
}
