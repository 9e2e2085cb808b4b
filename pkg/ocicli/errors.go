package ocicli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
)

// Error is a failed runtime command: it ran and exited with a status other
// than 0.
type Error struct {
	Command    string // "create", "start", ...
	ExitStatus int
	// Output is the combined stdout+stderr, at most 64 KiB, of the commands
	// whose output is captured: all but create and exec, whose stdio is the
	// container's.
	Output string
	// LogMessage is the last level=="error" msg of the --log JSON file
	// written during this command ("" without a LogFile).
	LogMessage string
}

// Error returns "<command>: <message>", the message being LogMessage, else
// the error in Output, else "exit status N", as containerd's "OCI runtime
// create failed: ..." shows it.
func (e *Error) Error() string {
	msg := e.LogMessage
	if msg == "" {
		msg = outputMessage(e.Output)
	}
	if msg == "" {
		msg = "exit status " + strconv.Itoa(e.ExitStatus)
	}
	return e.Command + ": " + msg
}

// The words containerd maps to errdefs.ErrNotFound when a runtime command
// fails (pkg/process/utils.go checkKillError and the delete path). runc's
// wording, which xrunc keeps.
var notFoundWords = []string{
	"does not exist",           // unknown container id
	"container not running",    // kill/pause of a stopped container
	"no such process",          // the process is gone
	"process already finished", // the process is gone
}

// IsNotFound reports whether err is an *Error that containerd would map to
// NotFound: the container does not exist or its process has already
// finished. The shim's Kill and Delete rely on it.
func IsNotFound(err error) bool {
	return errorSays(err, notFoundWords...)
}

// IsNotExist reports whether err is an *Error for an id the runtime does not
// know ("container does not exist"); a Delete that gets it has nothing left
// to delete.
func IsNotExist(err error) bool {
	return errorSays(err, "does not exist")
}

// IsAlreadyStopped reports whether err is an *Error saying the container or
// process has already stopped: kill or pause of a stopped container
// ("container not running"), a vanished process, or start of a stopped
// container ("cannot start a container that has stopped").
func IsAlreadyStopped(err error) bool {
	return errorSays(err, "container not running", "no such process", "process already finished",
		"container that has stopped")
}

// IsAlreadyExists reports whether err is an *Error from create of an id
// that is taken ("container with given ID already exists").
func IsAlreadyExists(err error) bool {
	return errorSays(err, "already exists")
}

// errorSays reports whether err is an *Error whose log message or output
// contains one of words. Other errors (failure to start the runtime,
// cancellation) never match, even if their text happens to.
func errorSays(err error, words ...string) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	for _, w := range words {
		if strings.Contains(e.LogMessage, w) || strings.Contains(e.Output, w) {
			return true
		}
	}
	return false
}

// outputMessage is the error a runtime printed: the msg of its last
// level=error line when it logged logrus text to stderr (no --log), else
// the whole output, trimmed.
func outputMessage(out string) string {
	out = strings.TrimSpace(out)
	for rest := out; rest != ""; {
		line := rest
		if i := strings.LastIndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[i+1:], rest[:i]
		} else {
			rest = ""
		}
		if msg, ok := textErrorMsg(line); ok {
			return msg
		}
	}
	return out
}

// textErrorMsg returns the msg of a logrus text line at level error:
// time="..." level=error msg="quoted" or msg=bare.
func textErrorMsg(line string) (string, bool) {
	if !strings.Contains(line, "level=error ") {
		return "", false
	}
	i := strings.Index(line, " msg=")
	if i < 0 {
		return "", false
	}
	v := line[i+len(" msg="):]
	if strings.HasPrefix(v, `"`) {
		q, err := strconv.QuotedPrefix(v)
		if err != nil {
			return "", false
		}
		s, err := strconv.Unquote(q)
		return s, err == nil
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v, v != ""
}

// maxLogTail bounds how much of the --log file one failed command reads.
const maxLogTail = 64 << 10

// logSize is the size of the log file before a command, where its own lines
// will start (0 if it does not exist yet).
func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// lastLogError returns the last level=="error" message among the lines
// appended to the JSON log file at path since offset off. It reads at most
// the last maxLogTail bytes of that region. A file that shrank (truncated or
// replaced) is read from its start.
func lastLogError(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	size := fi.Size()
	if size < off {
		off = 0
	}
	if size-off > maxLogTail {
		off = size - maxLogTail
	}
	buf := make([]byte, size-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && err != io.EOF {
		return ""
	}
	return parseLastError(buf[:n])
}

// parseLastError returns the msg of the last line of b that is a JSON
// object with "level":"error". Lines that do not decode are skipped: a line
// torn by a concurrent writer, or the tail of a line cut by maxLogTail.
func parseLastError(b []byte) string {
	for len(b) > 0 {
		line := b
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			line, b = b[i+1:], b[:i]
		} else {
			b = nil
		}
		if !bytes.Contains(line, []byte(`"error"`)) {
			continue
		}
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &entry) == nil && entry.Level == "error" {
			return entry.Msg
		}
	}
	return ""
}
