package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// crun 1.8.1 refuses the hybrid cgroup layout of this machine ("cgroups in
// hybrid mode not supported") because of the cgroup2 mount at
// /sys/fs/cgroup/unified. It works as a pure cgroup v1 runtime once that
// mount is gone from its view. So crun runs from a worker: this same binary,
// re-executed once in a new mount namespace (clone with CLONE_NEWNS), which
// makes all its mounts private and lazily unmounts every cgroup2 mount below
// /sys/fs/cgroup before doing anything else. The host keeps its mounts.
//
// The main process sends the worker one request per measured sequence over
// a pipe; the worker runs it with the very Runtime methods the host uses for
// runc and xrunc (same fork+exec+wait timing, same pidfd+wait4 wait, the
// worker being the subreaper of crun's containers) and sends the figures
// back. The pipe round trip is outside every timed interval, and no wrapper
// process (nsenter, unshare) is added to any crun call.

// workerEnv marks the re-executed worker.
const workerEnv = "XSTACK_BENCH_CRUN_WORKER"

// The worker reads requests on fd 3 and writes replies on fd 4.
const (
	workerReqFD   = 3
	workerReplyFD = 4
)

type workerRequest struct {
	// Op is one of "init", "lifecycle", "state", "run", "rss", "close".
	Op        string    `json:"op"`
	Runtime   *Runtime  `json:"runtime,omitempty"`
	Container Container `json:"container"`
}

type workerReply struct {
	Lifecycle LifecycleSample `json:"lifecycle"`
	State     time.Duration   `json:"state"`
	Run       RunSample       `json:"run"`
	// CreateMaxRSS is the peak RSS (KiB) of create from an "rss" request.
	CreateMaxRSS int64  `json:"create_maxrss_kib"`
	Strays       int    `json:"strays"`
	Err          string `json:"err,omitempty"`
}

// remoteRuntime is the main process's handle on a worker.
type remoteRuntime struct {
	cmd *exec.Cmd
	enc *json.Encoder
	dec *json.Decoder
	req *os.File
	rep *os.File
}

var _ executor = (*remoteRuntime)(nil)

// startWorker re-executes this binary as a worker in a new mount namespace
// and hands it rt.
func startWorker(rt *Runtime) (*remoteRuntime, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{reqR, repW} // fds 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS,
		// Out of the terminal's process group: on ^C the main process
		// stops the benchmark and then tells the worker to clean up.
		Setpgid: true,
	}
	err = cmd.Start()
	reqR.Close()
	repW.Close()
	if err != nil {
		reqW.Close()
		repR.Close()
		return nil, fmt.Errorf("start %s worker: %w", rt.Name, err)
	}
	w := &remoteRuntime{cmd: cmd, enc: json.NewEncoder(reqW), dec: json.NewDecoder(repR), req: reqW, rep: repR}
	if _, err := w.call(workerRequest{Op: "init", Runtime: rt}); err != nil {
		w.req.Close()
		w.rep.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("%s worker: %w", rt.Name, err)
	}
	return w, nil
}

func (w *remoteRuntime) call(req workerRequest) (workerReply, error) {
	var rep workerReply
	if err := w.enc.Encode(req); err != nil {
		return rep, fmt.Errorf("send %s to worker: %w", req.Op, err)
	}
	if err := w.dec.Decode(&rep); err != nil {
		return rep, fmt.Errorf("worker reply to %s: %w", req.Op, err)
	}
	if rep.Err != "" {
		return rep, errors.New(rep.Err)
	}
	return rep, nil
}

func (w *remoteRuntime) Lifecycle(c Container) (LifecycleSample, error) {
	rep, err := w.call(workerRequest{Op: "lifecycle", Container: c})
	return rep.Lifecycle, err
}

func (w *remoteRuntime) StateProbe(c Container) (time.Duration, error) {
	rep, err := w.call(workerRequest{Op: "state", Container: c})
	return rep.State, err
}

func (w *remoteRuntime) Run(c Container) (RunSample, error) {
	rep, err := w.call(workerRequest{Op: "run", Container: c})
	return rep.Run, err
}

// CreateRSS launches crun's create under GNU time inside the worker, as
// every crun call is made there.
func (w *remoteRuntime) CreateRSS(c Container) (int64, error) {
	rep, err := w.call(workerRequest{Op: "rss", Container: c})
	return rep.CreateMaxRSS, err
}

// Close makes the worker clean up its containers and exit, and waits for it.
func (w *remoteRuntime) Close() (int, error) {
	rep, err := w.call(workerRequest{Op: "close"})
	w.req.Close()
	w.rep.Close()
	if werr := w.cmd.Wait(); werr != nil {
		err = errors.Join(err, fmt.Errorf("worker: %w", werr))
	}
	return rep.Strays, err
}

// workerMain is the worker's whole life. It returns the exit code.
func workerMain() int {
	// fds 3 and 4 were inherited without close-on-exec: keep them from
	// leaking into crun and its containers.
	unix.CloseOnExec(workerReqFD)
	unix.CloseOnExec(workerReplyFD)
	in := os.NewFile(workerReqFD, "requests")
	out := os.NewFile(workerReplyFD, "replies")
	// The main process decides when to stop; we stop when it says so or
	// when it goes away (EOF). Swallow SIGINT and SIGHUP rather than ignore
	// them: an ignored signal would stay ignored in crun and its containers
	// across exec, unlike in the host where runc and xrunc run.
	signal.Notify(make(chan os.Signal, 1), os.Interrupt, syscall.SIGHUP)

	setupErr := errors.Join(initProcState(), isolateFromCgroup2(), setSubreaper())
	dec := json.NewDecoder(in)
	enc := json.NewEncoder(out)
	var rt *Runtime
	for {
		var req workerRequest
		if err := dec.Decode(&req); err != nil {
			if rt != nil {
				if _, err := workerClose(rt); err != nil {
					fmt.Fprintf(os.Stderr, "bench worker: cleanup: %v\n", err)
				}
			}
			if err == io.EOF {
				return 0
			}
			fmt.Fprintf(os.Stderr, "bench worker: %v\n", err)
			return 1
		}
		var rep workerReply
		var err error
		switch {
		case req.Op == "init":
			if err = setupErr; err == nil {
				rt = req.Runtime
				if rt == nil {
					err = errors.New("init without a runtime")
				}
			}
		case rt == nil:
			err = fmt.Errorf("%s before init", req.Op)
		case req.Op == "lifecycle":
			rep.Lifecycle, err = rt.Lifecycle(req.Container)
		case req.Op == "state":
			rep.State, err = rt.StateProbe(req.Container)
		case req.Op == "run":
			rep.Run, err = rt.Run(req.Container)
		case req.Op == "rss":
			rep.CreateMaxRSS, err = rt.CreateRSS(req.Container)
		case req.Op == "close":
			rep.Strays, err = workerClose(rt)
		default:
			err = fmt.Errorf("unknown request %q", req.Op)
		}
		if err != nil {
			rep.Err = err.Error()
		}
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(os.Stderr, "bench worker: reply: %v\n", err)
			return 1
		}
		if req.Op == "close" {
			return 0
		}
	}
}

// workerClose deletes leftover containers and reaps every child of the
// worker: the worker only ever has children it started or inherited as
// their subreaper.
func workerClose(rt *Runtime) (int, error) {
	err := rt.Close()
	n, rerr := reapStrays(nil, rt.WaitTimeout)
	return n, errors.Join(err, rerr)
}

// isolateFromCgroup2 makes this process's mount namespace (new, from
// CLONE_NEWNS) private and lazily unmounts the cgroup2 mounts below
// /sys/fs/cgroup so crun sees a plain cgroup v1 layout. It first checks that
// it really is in a mount namespace of its own: unmounting in the host's
// namespace would break every other user of this machine.
func isolateFromCgroup2() error {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return err
	}
	parent, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	if err != nil {
		return err
	}
	if self == parent {
		return fmt.Errorf("worker shares its parent's mount namespace (%s); refusing to unmount", self)
	}
	// Without this, a shared host mount would carry our unmount back to
	// the host through its peer group.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return err
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return nil // unified mode: crun handles it as is
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if !strings.HasPrefix(m, "/sys/fs/cgroup/") {
			continue
		}
		if err := unix.Statfs(m, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			continue
		}
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	return nil
}
