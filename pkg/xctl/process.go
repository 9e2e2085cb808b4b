package xctl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/xstack/xstack/pkg/client"
	"github.com/xstack/xstack/pkg/flowctl"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// procSpec names a process to attach to and start, and how.
type procSpec struct {
	containerID string
	execID      string // "" for the container's init
	stdin       bool   // forward our stdin
	tty         bool   // the process has a terminal
	// running: attach to the process as it runs, without starting it or
	// closing its stdin when ours ends (another client may attach later).
	running bool
}

// errNotStarted wraps an error that happened before the process started.
type errNotStarted struct{ err error }

func (e *errNotStarted) Error() string { return e.err.Error() }
func (e *errNotStarted) Unwrap() error { return e.err }

// attachStartWait runs a created process in the foreground: Tasks.Attach
// (first message names the process; xd acknowledges it), Tasks.Wait,
// Tasks.Start (unless p.running), then it copies the output until the
// attach stream ends and returns the exit status from Wait. While it runs,
// SIGINT/SIGTERM/SIGHUP/SIGQUIT are forwarded with Tasks.Kill and, with a
// terminal, our window size follows with Tasks.ResizePty. Errors before the
// process started are *errNotStarted.
func (e *env) attachStartWait(ctx context.Context, c *client.Client, p procSpec) (uint32, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Tasks().Attach(ctx)
	if err != nil {
		return 0, &errNotStarted{fmt.Errorf("attach: %w", err)}
	}
	if err := stream.Send(&xdv1.AttachRequest{ContainerId: p.containerID, ExecId: p.execID, Namespace: c.Namespace(), FlowControl: true}); err != nil {
		return 0, &errNotStarted{fmt.Errorf("attach: %w", err)}
	}
	// xd acknowledges once the stream is attached: from then on no output
	// is missed, so Start may go.
	ack, err := stream.Recv()
	if err != nil {
		return 0, &errNotStarted{fmt.Errorf("attach: %w", err)}
	}
	// With flow control (see pkg/flowctl) our stdin waits for xd to pass
	// it on, and xd's output for us to write it out.
	var stdinFlow *flowctl.Sender
	if ack.FlowControl {
		stdinFlow = flowctl.NewSender()
		defer stdinFlow.ReceiverGone()
	}
	waitCh := c.WaitAsync(ctx, p.containerID, p.execID)

	inFd, inTerm := terminalFd(e.stdin)
	if p.tty && p.stdin && inTerm {
		old, err := term.MakeRaw(inFd)
		if err != nil {
			return 0, &errNotStarted{fmt.Errorf("set terminal raw: %w", err)}
		}
		defer term.Restore(inFd, old)
	}

	sigs, stopSigs := notifySignals(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGWINCH)
	defer stopSigs()

	if !p.running {
		if _, err := c.Tasks().Start(ctx, &xdv1.StartRequest{ContainerId: p.containerID, ExecId: p.execID}); err != nil {
			return 0, &errNotStarted{err}
		}
	}

	if p.tty {
		e.resize(ctx, c, p)
	}
	go func() {
		for {
			var s os.Signal
			select {
			case <-ctx.Done():
				return
			case s = <-sigs:
			}
			switch s {
			case syscall.SIGWINCH:
				if p.tty {
					e.resize(ctx, c, p)
				}
			default:
				sig := s.(syscall.Signal)
				if _, err := c.Tasks().Kill(ctx, &xdv1.KillRequest{ContainerId: p.containerID, ExecId: p.execID, Signal: uint32(sig)}); err != nil && ctx.Err() == nil {
					fmt.Fprintf(e.stderr, "xctl: forward %s: %s\n", unix.SignalName(sig), client.Message(err))
				}
			}
		}
	}()
	if p.stdin {
		go copyStdin(ctx, e.stdin, stream, stdinFlow, !p.running)
	}

	var consumed flowctl.Receiver
	for {
		resp, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return 0, fmt.Errorf("attach: %w", err)
		}
		if resp.StdinConsumed > 0 && stdinFlow != nil {
			stdinFlow.Acked(resp.StdinConsumed)
		}
		if len(resp.Stdout) == 0 && len(resp.Stderr) == 0 {
			continue
		}
		if len(resp.Stdout) > 0 {
			if _, err := e.stdout.Write(resp.Stdout); err != nil {
				return 0, err
			}
		}
		if len(resp.Stderr) > 0 {
			e.stderr.Write(resp.Stderr)
		}
		if n, due := consumed.Consumed(); stdinFlow != nil && due {
			if err := stream.Send(&xdv1.AttachRequest{OutputConsumed: n}); err != nil {
				return 0, fmt.Errorf("attach: %w", err)
			}
		}
	}
	r := <-waitCh
	if r.Err != nil {
		return 0, fmt.Errorf("wait: %w", r.Err)
	}
	return r.Status.GetExitStatus(), nil
}

// copyStdin sends our stdin to the process, then, if asked, closes the
// process's. With flow (xd acknowledges), it sends no further ahead of the
// process than the window.
func copyStdin(ctx context.Context, in io.Reader, stream xdv1.Tasks_AttachClient, flow *flowctl.Sender, closeAtEnd bool) {
	send := func(req *xdv1.AttachRequest) error {
		if flow != nil {
			if err := flow.Wait(ctx); err != nil {
				return err
			}
		}
		return stream.Send(req)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if send(&xdv1.AttachRequest{Stdin: append([]byte(nil), buf[:n]...)}) != nil {
				return
			}
		}
		if err != nil {
			if closeAtEnd {
				send(&xdv1.AttachRequest{CloseStdin: true})
			}
			return
		}
	}
}

// resize sends our terminal's size (of stdout, else stdin) to the process.
func (e *env) resize(ctx context.Context, c *client.Client, p procSpec) {
	fd, ok := terminalFd(e.stdout)
	if !ok {
		if fd, ok = terminalFd(e.stdin); !ok {
			return
		}
	}
	w, h, err := term.GetSize(fd)
	if err != nil || w <= 0 || h <= 0 {
		return
	}
	if _, err := c.Tasks().ResizePty(ctx, &xdv1.ResizePtyRequest{ContainerId: p.containerID, ExecId: p.execID, Width: uint32(w), Height: uint32(h)}); err != nil && e.debug {
		fmt.Fprintf(e.stderr, "DEBU resize: %v\n", err)
	}
}

// terminalFd returns the descriptor of f when it is a terminal.
func terminalFd(f any) (int, bool) {
	file, ok := f.(*os.File)
	if !ok || file == nil {
		return 0, false
	}
	fd := int(file.Fd())
	return fd, term.IsTerminal(fd)
}

// randomID is 12 hex digits.
func randomID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
