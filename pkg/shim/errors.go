package shim

import "fmt"

// classed is an error with an errdefs class (which decides the ttrpc
// status code) that does not show in its text.
type classed struct{ class, err error }

func (e *classed) Error() string   { return e.err.Error() }
func (e *classed) Unwrap() []error { return []error{e.class, e.err} }

// withClass wraps err (keeping it for errors.Is/As) under class.
func withClass(class, err error) error { return &classed{class: class, err: err} }

// classf formats a new error of class.
func classf(class error, format string, args ...any) error {
	return &classed{class: class, err: fmt.Errorf(format, args...)}
}
