package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"

	"github.com/xstack/xstack/pkg/flowctl"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// attach streams a process's output to a client and its stdin from it. The
// first response is an empty acknowledgement: once the client has it, no
// output written after that is missed, so clients attach before Start.
// With flow control, output waits for the client's acknowledgements, and
// stdin goes to the process from a queue the client does not overrun, so
// that acknowledgements are read while the process is slow to take its
// stdin (a process blocked writing output it cannot be sent would
// otherwise never read its stdin again).
func (s *Server) attach(ctx context.Context, stream xdv1.Tasks_AttachServer) error {
	first, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("attach: no request: %w", errdefs.ErrInvalidArgument)
	}
	if ctx, err = streamNamespace(ctx, first.Namespace); err != nil {
		return err
	}
	t, err := s.requireTask(ctx, first.ContainerId)
	if err != nil {
		return err
	}
	p, err := t.proc(first.ExecId)
	if err != nil {
		return err
	}
	if p.io == nil {
		return fmt.Errorf("%s: stdio not available: %w", procName(t.id, first.ExecId), errdefs.ErrUnavailable)
	}
	sub := p.io.Attach()
	defer sub.Close()
	var output *flowctl.Sender
	if first.FlowControl {
		output = flowctl.NewSender()
	}
	if err := stream.Send(&xdv1.AttachResponse{FlowControl: output != nil}); err != nil {
		return err
	}
	if len(first.Stdin) > 0 || first.CloseStdin {
		if err := s.feedStdin(ctx, t, p, first); err != nil {
			return err
		}
	}
	var sendMu sync.Mutex
	send := func(resp *xdv1.AttachResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(resp)
	}
	stdin := make(chan *xdv1.AttachRequest, flowctl.Window)
	go func() {
		defer close(stdin)
		for {
			req, err := stream.Recv()
			if err != nil {
				if output != nil {
					output.ReceiverGone()
				}
				return
			}
			if output != nil && req.OutputConsumed > 0 {
				output.Acked(req.OutputConsumed)
			}
			if len(req.Stdin) > 0 || req.CloseStdin {
				stdin <- req
			}
		}
	}()
	go func() {
		var consumed flowctl.Receiver
		for req := range stdin {
			if err := s.feedStdin(ctx, t, p, req); err != nil {
				t.log.Debug("attach stdin", "error", err)
				for range stdin {
					// Drained: the client's acknowledged stdin goes nowhere.
				}
				return
			}
			if n, due := consumed.Consumed(); due && output != nil {
				if err := send(&xdv1.AttachResponse{StdinConsumed: n}); err != nil {
					return
				}
			}
		}
	}()
	for {
		select {
		case c, ok := <-sub.C:
			if !ok {
				return nil
			}
			if output != nil {
				if err := output.Wait(ctx); err != nil {
					return err
				}
			}
			resp := &xdv1.AttachResponse{}
			if c.Stream == "stderr" {
				resp.Stderr = c.Data
			} else {
				resp.Stdout = c.Data
			}
			if err := send(resp); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Server) feedStdin(ctx context.Context, t *task, p *process, req *xdv1.AttachRequest) error {
	if len(req.Stdin) > 0 {
		if err := p.io.WriteStdin(req.Stdin); err != nil {
			return err
		}
	}
	if req.CloseStdin {
		return s.closeIO(ctx, t.id, p.execID)
	}
	return nil
}

// closeIO closes a process's stdin: xd's writer and the shim's.
func (s *Server) closeIO(ctx context.Context, id, execID string) error {
	t, err := s.requireTask(ctx, id)
	if err != nil {
		return err
	}
	p, err := t.proc(execID)
	if err != nil {
		return err
	}
	if p.io != nil {
		p.io.CloseStdin()
	}
	if _, err := t.shim.Task().CloseIO(ctx, &taskapi.CloseIORequest{ID: id, ExecID: execID, Stdin: true}); err != nil {
		if err = errgrpc.ToNative(err); !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("close stdin of %s: %w", procName(id, execID), err)
		}
	}
	return nil
}

func (s *Server) resizePty(ctx context.Context, r *xdv1.ResizePtyRequest) error {
	t, err := s.requireTask(ctx, r.ContainerId)
	if err != nil {
		return err
	}
	if _, err := t.shim.Task().ResizePty(ctx, &taskapi.ResizePtyRequest{ID: r.ContainerId, ExecID: r.ExecId, Width: r.Width, Height: r.Height}); err != nil {
		return fmt.Errorf("resize %s: %w", procName(r.ContainerId, r.ExecId), errgrpc.ToNative(err))
	}
	return nil
}
