package xctl

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/xstack/xstack/pkg/client"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// cleanupTimeout bounds --rm's deletes, which run even after a Ctrl-C.
const cleanupTimeout = 30 * time.Second

// runRun is `xctl run`: Containers.Create, Tasks.Create, then either
// Tasks.Start (-d) or attachStartWait; with --rm, Tasks.Delete and
// Containers.Delete after the exit.
func runRun(ctx context.Context, e *env, fs *flagSet, args []string) error {
	req, err := containerRequest(fs, args, os.LookupEnv)
	if err != nil {
		return runFailure(err)
	}
	rm, detach := fs.boolean("rm"), fs.boolean("detach")
	if rm && detach {
		return runFailure(usagef("--rm and -d cannot be combined: xd does not remove containers by itself"))
	}
	if r := req.Options.Restart; rm && r != "" && r != "no" {
		return runFailure(usagef("--rm and --restart cannot be combined: a container removed when it exits is not restarted"))
	}
	opts := req.Options
	if _, isTerm := terminalFd(e.stdin); opts.Tty && opts.Stdin && !isTerm && !detach {
		return runFailure(fmt.Errorf("the input device is not a TTY"))
	}
	c, err := e.connect()
	if err != nil {
		return runFailure(err)
	}
	ctr, err := c.Containers().Create(ctx, req)
	if err != nil {
		return runFailure(err)
	}
	id := ctr.Id
	if _, err := c.Tasks().Create(ctx, &xdv1.CreateTaskRequest{ContainerId: id}); err != nil {
		if rm {
			e.removeContainer(c, id, false)
		}
		return runFailure(err)
	}
	if detach {
		if _, err := c.Tasks().Start(ctx, &xdv1.StartRequest{ContainerId: id}); err != nil {
			return runFailure(err)
		}
		fmt.Fprintln(e.stdout, id)
		return nil
	}
	status, err := e.attachStartWait(ctx, c, procSpec{containerID: id, stdin: opts.Stdin, tty: opts.Tty})
	if rm {
		e.removeContainer(c, id, true)
	}
	if err != nil {
		if _, ok := err.(*errNotStarted); ok {
			return runFailure(err)
		}
		return err
	}
	if status != 0 {
		return &exitCode{code: int(status)}
	}
	return nil
}

// removeContainer is --rm: delete the task (if any) then the container,
// warning on stderr instead of failing. It does not use the command's
// context, so it still runs after a cancel.
func (e *env) removeContainer(c *client.Client, id string, withTask bool) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if withTask {
		if _, err := c.Tasks().Delete(ctx, &xdv1.DeleteTaskRequest{ContainerId: id, Force: true}); err != nil && !client.IsNotFound(err) {
			fmt.Fprintf(e.stderr, "xctl: remove task %s: %s\n", id, client.Message(err))
		}
	}
	if _, err := c.Containers().Delete(ctx, &xdv1.DeleteContainerRequest{Id: id, Force: true}); err != nil && !client.IsNotFound(err) {
		fmt.Fprintf(e.stderr, "xctl: remove container %s: %s\n", id, client.Message(err))
	}
}

// runCreate is `xctl create`: Containers.Create only, prints the name.
func runCreate(ctx context.Context, e *env, fs *flagSet, args []string) error {
	req, err := containerRequest(fs, args, os.LookupEnv)
	if err != nil {
		return runFailure(err)
	}
	c, err := e.connect()
	if err != nil {
		return runFailure(err)
	}
	ctr, err := c.Containers().Create(ctx, req)
	if err != nil {
		return runFailure(err)
	}
	fmt.Fprintln(e.stdout, ctr.Id)
	return nil
}

// runStart is `xctl start`: Containers.Get, Tasks.Get, then Tasks.Create
// when there is no task (after Tasks.Delete of a stopped one, so an exited
// container runs again), then Tasks.Start, or attachStartWait with -a.
func runStart(ctx context.Context, e *env, fs *flagSet, args []string) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	attach := fs.boolean("attach")
	if attach && len(args) > 1 {
		return usagef("you cannot start and attach multiple containers at once")
	}
	for _, id := range args {
		ctr, err := c.Containers().Get(ctx, &xdv1.GetContainerRequest{Id: id})
		if err != nil {
			return err
		}
		running, err := prepareTask(ctx, c, id)
		if err != nil {
			return err
		}
		if running {
			if attach {
				return fmt.Errorf("container %s is already running", id)
			}
			fmt.Fprintln(e.stdout, id)
			continue
		}
		if !attach {
			if _, err := c.Tasks().Start(ctx, &xdv1.StartRequest{ContainerId: id}); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, id)
			continue
		}
		tty := ctr.GetOptions().GetTty()
		stdin := fs.boolean("interactive") && ctr.GetOptions().GetStdin()
		status, err := e.attachStartWait(ctx, c, procSpec{containerID: id, stdin: stdin, tty: tty})
		if err != nil {
			return err
		}
		if status != 0 {
			return &exitCode{code: int(status)}
		}
	}
	return nil
}

// runAttach is `xctl attach`: a running container's output from now on,
// with our stdin if it was created with -i (and not --no-stdin), and our
// signals forwarded, until it exits; xctl exits with its status.
func runAttach(ctx context.Context, e *env, fs *flagSet, args []string) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	id := args[0]
	ctr, err := c.Containers().Get(ctx, &xdv1.GetContainerRequest{Id: id})
	if err != nil {
		return err
	}
	t, err := c.Tasks().Get(ctx, &xdv1.ContainerRequest{ContainerId: id})
	if err != nil && !client.IsNotFound(err) {
		return err
	}
	if !isLive(t) {
		return fmt.Errorf("container %s is not running: start it first (or xctl start -a)", id)
	}
	status, err := e.attachStartWait(ctx, c, procSpec{containerID: id, running: true,
		tty: ctr.GetOptions().GetTty(), stdin: !fs.boolean("no-stdin") && ctr.GetOptions().GetStdin()})
	if err != nil {
		return err
	}
	if status != 0 {
		return &exitCode{code: int(status)}
	}
	return nil
}

// runRestart is `xctl restart`: each container stopped if it runs
// (SIGTERM, then SIGKILL after the grace period), then started again.
func runRestart(ctx context.Context, e *env, fs *flagSet, args []string) error {
	timeout, err := graceSeconds(fs)
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	return e.forEach(args, func(id string) error {
		if _, err := c.Containers().Get(ctx, &xdv1.GetContainerRequest{Id: id}); err != nil {
			return err
		}
		if t, err := c.Tasks().Get(ctx, &xdv1.ContainerRequest{ContainerId: id}); err == nil && isLive(t) {
			if _, err := c.Tasks().Stop(ctx, &xdv1.StopRequest{ContainerId: id, TimeoutSeconds: timeout}); err != nil {
				return err
			}
		}
		running, err := prepareTask(ctx, c, id)
		if err != nil || running {
			return err
		}
		_, err = c.Tasks().Start(ctx, &xdv1.StartRequest{ContainerId: id})
		return err
	})
}

// prepareTask leaves the container with a created task, or reports that
// its task is already running.
func prepareTask(ctx context.Context, c *client.Client, id string) (running bool, err error) {
	t, err := c.Tasks().Get(ctx, &xdv1.ContainerRequest{ContainerId: id})
	switch {
	case client.IsNotFound(err):
	case err != nil:
		return false, err
	case t.Status == xdv1.Status_CREATED:
		return false, nil
	case t.Status == xdv1.Status_STOPPED || t.Status == xdv1.Status_UNKNOWN:
		if _, err := c.Tasks().Delete(ctx, &xdv1.DeleteTaskRequest{ContainerId: id}); err != nil && !client.IsNotFound(err) {
			return false, err
		}
	default:
		return true, nil
	}
	_, err = c.Tasks().Create(ctx, &xdv1.CreateTaskRequest{ContainerId: id})
	return false, err
}

// runExec is `xctl exec`: Tasks.Exec with a generated id, then
// attachStartWait, then Tasks.Delete of the exec; with -d, Exec + Start.
func runExec(ctx context.Context, e *env, fs *flagSet, args []string) error {
	if len(args) < 2 {
		return usagef("exec needs a container and a command")
	}
	req := &xdv1.ExecRequest{
		ContainerId: args[0],
		ExecId:      "exec-" + randomID(),
		Args:        args[1:],
		User:        fs.str("user"),
		Cwd:         fs.str("workdir"),
		Tty:         fs.boolean("tty"),
		Stdin:       fs.boolean("interactive"),
	}
	for _, kv := range fs.list("env") {
		if k, _, ok := strings.Cut(kv, "="); !ok {
			if v, found := os.LookupEnv(k); found {
				req.Env = append(req.Env, k+"="+v)
			}
			continue
		}
		req.Env = append(req.Env, kv)
	}
	detach := fs.boolean("detach")
	if _, isTerm := terminalFd(e.stdin); req.Tty && req.Stdin && !isTerm && !detach {
		return fmt.Errorf("the input device is not a TTY")
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	if _, err := c.Tasks().Exec(ctx, req); err != nil {
		return err
	}
	if detach {
		_, err := c.Tasks().Start(ctx, &xdv1.StartRequest{ContainerId: req.ContainerId, ExecId: req.ExecId})
		return err
	}
	status, err := e.attachStartWait(ctx, c, procSpec{containerID: req.ContainerId, execID: req.ExecId, stdin: req.Stdin, tty: req.Tty})
	dctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if _, derr := c.Tasks().Delete(dctx, &xdv1.DeleteTaskRequest{ContainerId: req.ContainerId, ExecId: req.ExecId, Force: true}); derr != nil && !client.IsNotFound(derr) && e.debug {
		fmt.Fprintf(e.stderr, "DEBU delete exec %s: %v\n", req.ExecId, derr)
	}
	if err != nil {
		return err
	}
	if status != 0 {
		return &exitCode{code: int(status)}
	}
	return nil
}
