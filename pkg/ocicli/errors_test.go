package ocicli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"log message wins", Error{Command: "create", ExitStatus: 1, Output: "ignored", LogMessage: "runc create failed: container with given ID already exists"},
			"create: runc create failed: container with given ID already exists"},
		{"log message trimmed? no: kept as logged", Error{Command: "start", ExitStatus: 1, LogMessage: "container does not exist"},
			"start: container does not exist"},
		{"plain output trimmed", Error{Command: "kill", ExitStatus: 1, Output: "\n container not running \n"},
			"kill: container not running"},
		{"logrus text on stderr (no --log)", Error{Command: "state", ExitStatus: 1,
			Output: `time="2026-11-28T15:16:48Z" level=error msg="container does not exist"` + "\n"},
			"state: container does not exist"},
		{"last logrus error line, quotes unescaped", Error{Command: "update", ExitStatus: 1,
			Output: "time=\"t\" level=warning msg=\"first\"\ntime=\"t\" level=error msg=\"command \\\"update\\\" does not exist\"\n"},
			`update: command "update" does not exist`},
		{"logrus bare value", Error{Command: "pause", ExitStatus: 1, Output: "time=t level=error msg=frozen"},
			"pause: frozen"},
		{"usage text kept whole", Error{Command: "start", ExitStatus: 1, Output: "Incorrect Usage.\n\nNAME:\n   runc start\n"},
			"start: Incorrect Usage.\n\nNAME:\n   runc start"},
		{"nothing: exit status", Error{Command: "exec", ExitStatus: 3}, "exec: exit status 3"},
		{"blank output: exit status", Error{Command: "delete", ExitStatus: 137, Output: " \n"}, "delete: exit status 137"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPredicates(t *testing.T) {
	type preds struct{ notFound, notExist, stopped, exists bool }
	tests := []struct {
		name string
		err  error
		want preds
	}{
		{"does not exist (log)", &Error{LogMessage: "container does not exist"}, preds{notFound: true, notExist: true}},
		{"does not exist (output)", &Error{Output: "container does not exist\n"}, preds{notFound: true, notExist: true}},
		{"not running", &Error{LogMessage: "container not running"}, preds{notFound: true, stopped: true}},
		{"no such process", &Error{Output: "no such process"}, preds{notFound: true, stopped: true}},
		{"process already finished", &Error{LogMessage: "process already finished"}, preds{notFound: true, stopped: true}},
		{"start of a stopped container", &Error{LogMessage: "cannot start a container that has stopped"}, preds{stopped: true}},
		{"duplicate id", &Error{LogMessage: "runc create failed: container with given ID already exists"}, preds{exists: true}},
		{"other failure", &Error{LogMessage: "unable to freeze"}, preds{}},
		{"exit status only", &Error{ExitStatus: 1}, preds{}},
		{"wrapped", fmt.Errorf("OCI runtime kill failed: %w", &Error{LogMessage: "container not running"}), preds{notFound: true, stopped: true}},
		// Not a runtime's answer: the words must not match by accident.
		{"plain error with the words", errors.New("open /x: file does not exist"), preds{}},
		{"os.ErrNotExist", fmt.Errorf("start: %w", os.ErrNotExist), preds{}},
		{"nil", nil, preds{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := preds{IsNotFound(tt.err), IsNotExist(tt.err), IsAlreadyStopped(tt.err), IsAlreadyExists(tt.err)}
			if got != tt.want {
				t.Errorf("(IsNotFound, IsNotExist, IsAlreadyStopped, IsAlreadyExists) = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseLastError(t *testing.T) {
	tests := []struct {
		name, log, want string
	}{
		{"empty", "", ""},
		{"one error", `{"level":"error","msg":"container does not exist","time":"2026-11-28T11:29:46Z"}` + "\n", "container does not exist"},
		{"last error of several", `{"level":"error","msg":"first","time":"t"}
{"level":"info","msg":"between","time":"t"}
{"level":"error","msg":"second","time":"t"}
{"level":"warning","msg":"after","time":"t"}
`, "second"},
		{"torn last line", `{"level":"error","msg":"complete","time":"t"}
{"level":"error","msg":"torn in the mid`, "complete"},
		{"torn first line (cut by the tail bound)", `rror","msg":"cut","time":"t"}
{"level":"info","msg":"x","time":"t"}
`, ""},
		{"no error line", `{"level":"info","msg":"a","time":"t"}
{"level":"debug","msg":"error","time":"t"}
`, ""},
		{"msg mentioning error at another level", `{"level":"warning","msg":"\"error\" is a word","time":"t"}` + "\n", ""},
		{"no trailing newline", `{"level":"error","msg":"last","time":"t"}`, "last"},
		{"blank and garbage lines", "\n\ngarbage \"error\"\n" + `{"level":"error","msg":"ok","time":"t"}` + "\n\n", "ok"},
		{"escaped msg", `{"level":"error","msg":"exec: \"sh\": not found\n","time":"t"}`, "exec: \"sh\": not found\n"},
		{"key order does not matter", `{"time":"t","msg":"reordered","level":"error"}`, "reordered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseLastError([]byte(tt.log)); got != tt.want {
				t.Errorf("parseLastError = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLastLogError checks that only what a command appended is read.
func TestLastLogError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.json")
	old := `{"level":"error","msg":"an older command's error","time":"t"}` + "\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	off := logSize(path)
	if off != int64(len(old)) {
		t.Fatalf("logSize = %d, want %d", off, len(old))
	}
	if got := lastLogError(path, off); got != "" {
		t.Errorf("nothing appended: got %q", got)
	}
	appendTo(t, path, `{"level":"info","msg":"x","time":"t"}`+"\n")
	if got := lastLogError(path, off); got != "" {
		t.Errorf("no error appended: got %q", got)
	}
	appendTo(t, path, `{"level":"error","msg":"this command's","time":"t"}`+"\n")
	if got := lastLogError(path, off); got != "this command's" {
		t.Errorf("got %q", got)
	}
	// More than maxLogTail appended: the tail is read, the cut line skipped.
	big := strings.Repeat(`{"level":"info","msg":"padding","time":"t"}`+"\n", 2*maxLogTail/40)
	appendTo(t, path, `{"level":"error","msg":"early","time":"t"}`+"\n"+big+`{"level":"error","msg":"late","time":"t"}`+"\n")
	if got := lastLogError(path, off); got != "late" {
		t.Errorf("big append: got %q", got)
	}
	// A log that shrank (replaced) is read from its start.
	if err := os.WriteFile(path, []byte(`{"level":"error","msg":"new file","time":"t"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := lastLogError(path, off+1<<20); got != "new file" {
		t.Errorf("shrunk log: got %q", got)
	}
	if got := lastLogError(filepath.Join(t.TempDir(), "missing"), 0); got != "" || logSize("/nonexistent/x") != 0 {
		t.Errorf("missing log: got %q", got)
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// The error of a real (fake) runtime run through the default Spawner.
func TestErrorFromProcess(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log.json")
	if err := os.WriteFile(logPath, []byte(`{"level":"error","msg":"an older command's error","time":"t"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := fakeRuntime(t, dir, `
log=$4
printf '%s\n' '{"level":"info","msg":"starting","time":"t"}' >>"$log"
printf '%s\n' '{"level":"error","msg":"first","time":"t"}' >>"$log"
printf '%s\n' '{"level":"error","msg":"unable to start container process: exec: \"nope\": executable file not found in $PATH","time":"t"}' >>"$log"
printf '%s' '{"level":"error","msg":"torn' >>"$log"
echo "boom on stderr" >&2
echo "and stdout"
exit 7
`)
	r := &Runtime{Binary: bin, Root: filepath.Join(dir, "root"), LogFile: logPath}
	err := r.Start(context.Background(), "c1")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %#v, want *Error", err)
	}
	wantMsg := `unable to start container process: exec: "nope": executable file not found in $PATH`
	if e.Command != "start" || e.ExitStatus != 7 || e.LogMessage != wantMsg || e.Output != "boom on stderr\nand stdout\n" {
		t.Errorf("err = %+v", e)
	}
	if got := err.Error(); got != "start: "+wantMsg {
		t.Errorf("Error() = %q", got)
	}

	// Nothing logged by this command: the older error must not show up.
	bin = fakeRuntime(t, dir, "echo 'not logged' >&2; exit 1\n")
	r.Binary = bin
	err = r.Kill(context.Background(), "c1", 9, false)
	if !errors.As(err, &e) || e.LogMessage != "" || err.Error() != "kill: not logged" {
		t.Errorf("err = %#v", err)
	}

	// Killed by a signal: 128+signal.
	r.Binary = fakeRuntime(t, dir, "kill -9 $$\n")
	if err := r.Pause(context.Background(), "c1"); !errors.As(err, &e) || e.ExitStatus != 137 {
		t.Errorf("killed runtime: err = %#v", err)
	}
}
