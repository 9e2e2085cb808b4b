package shim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestClassedErrors(t *testing.T) {
	t.Parallel()
	cause := fmt.Errorf("open /b/config.json: %w", fs.ErrNotExist)
	tests := []struct {
		name  string
		err   error
		class error
		is    func(error) bool
		code  codes.Code
		text  string
		cause error // still found by errors.Is, if set
	}{
		{"classf not found", classf(errdefs.ErrNotFound, "container %s does not exist", "c1"), errdefs.ErrNotFound, errdefs.IsNotFound, codes.NotFound, "container c1 does not exist", nil},
		{"classf invalid argument", classf(errdefs.ErrInvalidArgument, "bundle %q is not an absolute path", "b"), errdefs.ErrInvalidArgument, errdefs.IsInvalidArgument, codes.InvalidArgument, `bundle "b" is not an absolute path`, nil},
		{"classf failed precondition", classf(errdefs.ErrFailedPrecondition, "namespace is required"), errdefs.ErrFailedPrecondition, errdefs.IsFailedPrecondition, codes.FailedPrecondition, "namespace is required", nil},
		{"classf already exists", classf(errdefs.ErrAlreadyExists, "exec %s already exists", "e1"), errdefs.ErrAlreadyExists, errdefs.IsAlreadyExists, codes.AlreadyExists, "exec e1 already exists", nil},
		{"classf not implemented", classf(errdefs.ErrNotImplemented, "checkpoint is not implemented"), errdefs.ErrNotImplemented, errdefs.IsNotImplemented, codes.Unimplemented, "checkpoint is not implemented", nil},
		{"classf unknown", classf(errdefs.ErrUnknown, "OCI runtime start failed: boom"), errdefs.ErrUnknown, errdefs.IsUnknown, codes.Unknown, "OCI runtime start failed: boom", nil},
		{"classf wrapping with %w", classf(errdefs.ErrNotFound, "bundle /b: %w", cause), errdefs.ErrNotFound, errdefs.IsNotFound, codes.NotFound, "bundle /b: open /b/config.json: file does not exist", fs.ErrNotExist},
		{"withClass keeps the cause", withClass(errdefs.ErrInvalidArgument, cause), errdefs.ErrInvalidArgument, errdefs.IsInvalidArgument, codes.InvalidArgument, "open /b/config.json: file does not exist", fs.ErrNotExist},
		// The class decides, even if the cause carries another one.
		{"class over the cause's class", withClass(errdefs.ErrNotFound, fmt.Errorf("x: %w", errdefs.ErrInvalidArgument)), errdefs.ErrNotFound, errdefs.IsNotFound, codes.NotFound, "x: invalid argument", errdefs.ErrInvalidArgument},
		{"wrapped classed", fmt.Errorf("stdio: %w", classf(errdefs.ErrInvalidArgument, "bad scheme")), errdefs.ErrInvalidArgument, errdefs.IsInvalidArgument, codes.InvalidArgument, "stdio: bad scheme", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.text {
				t.Errorf("text %q, want %q (no class suffix)", got, tt.text)
			}
			if !errors.Is(tt.err, tt.class) || !tt.is(tt.err) {
				t.Errorf("errors.Is(%v, %v) = false", tt.err, tt.class)
			}
			if tt.cause != nil && !errors.Is(tt.err, tt.cause) {
				t.Errorf("the cause %v is lost", tt.cause)
			}
			gerr := errgrpc.ToGRPC(tt.err)
			st, ok := status.FromError(gerr)
			if !ok {
				t.Fatalf("ToGRPC(%v) is not a status: %v", tt.err, gerr)
			}
			if st.Code() != tt.code || st.Message() != tt.text {
				t.Errorf("status (%v, %q), want (%v, %q)", st.Code(), st.Message(), tt.code, tt.text)
			}
			// And back, as containerd reads it.
			if back := errgrpc.ToNative(gerr); !errors.Is(back, tt.class) {
				t.Errorf("ToNative(ToGRPC(err)) = %v, not %v", back, tt.class)
			}
		})
	}
}

// TestUnclassedIsUnknown: an error without a class becomes codes.Unknown
// with its text.
func TestUnclassedIsUnknown(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("signal exec e1: %w", os.ErrPermission)
	st, _ := status.FromError(errgrpc.ToGRPC(err))
	if st.Code() != codes.Unknown || st.Message() != err.Error() {
		t.Errorf("status (%v, %q)", st.Code(), st.Message())
	}
}

func TestClassedDoesNotMatchOtherClasses(t *testing.T) {
	t.Parallel()
	err := classf(errdefs.ErrNotFound, "gone")
	for _, other := range []error{errdefs.ErrInvalidArgument, errdefs.ErrAlreadyExists, errdefs.ErrFailedPrecondition, errdefs.ErrUnknown, errdefs.ErrNotImplemented} {
		if errors.Is(err, other) {
			t.Errorf("a NotFound error is also %v", other)
		}
	}
}
