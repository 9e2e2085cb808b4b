// Package log provides the slog handler shared by xstack's binaries. Its
// output matches runc's logrus lines byte for byte where callers parse them:
// containerd reads xrunc's --log file as a stream of JSON objects
// {"level","msg","time"} and takes the last level=="error" message, and the
// time must be RFC 3339 or the whole lookup fails.
//
// Internal to xstack; no API stability.
package log

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Format selects the line format.
type Format int

const (
	// Text is logrus's text format: time="..." level=error msg="...".
	Text Format = iota
	// JSON is one object per line with level, msg and time keys first.
	JSON
)

// ParseFormat maps the --log-format flag value to a Format.
func ParseFormat(s string) (Format, bool) {
	switch s {
	case "", "text":
		return Text, true
	case "json":
		return JSON, true
	}
	return Text, false
}

// Handler writes records as single lines. It is safe for concurrent use.
type Handler struct {
	mu     *sync.Mutex
	w      io.Writer
	format Format
	level  slog.Leveler
	attrs  []slog.Attr // from WithAttrs, already group-qualified
	group  string
}

// NewHandler returns a handler writing to w in the given format, dropping
// records below level.
func NewHandler(w io.Writer, format Format, level slog.Leveler) *Handler {
	return &Handler{mu: &sync.Mutex{}, w: w, format: format, level: level}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), h.qualify(as)...)
	return &n
}

// WithGroup implements slog.Handler; groups become dotted key prefixes.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	if n.group != "" {
		name = n.group + "." + name
	}
	n.group = name
	return &n
}

// qualify flattens group attrs into dotted keys under the handler's group
// and drops empty attrs, as the slog.Handler contract asks.
func (h *Handler) qualify(as []slog.Attr) []slog.Attr {
	var out []slog.Attr
	var walk func(prefix string, as []slog.Attr)
	walk = func(prefix string, as []slog.Attr) {
		for _, a := range as {
			a.Value = a.Value.Resolve()
			if a.Equal(slog.Attr{}) {
				continue
			}
			if a.Value.Kind() == slog.KindGroup {
				p := prefix
				if a.Key != "" {
					p = join(prefix, a.Key)
				}
				walk(p, a.Value.Group())
				continue
			}
			if a.Key == "" {
				continue
			}
			out = append(out, slog.Attr{Key: join(prefix, a.Key), Value: a.Value})
		}
	}
	walk(h.group, as)
	return out
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// Handle implements slog.Handler.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	attrs := append([]slog.Attr(nil), h.attrs...)
	var recAttrs []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		recAttrs = append(recAttrs, a)
		return true
	})
	attrs = append(attrs, h.qualify(recAttrs)...)

	var b []byte
	if h.format == JSON {
		b = appendJSON(b, LevelName(r.Level), r.Message, t, attrs)
	} else {
		b = appendText(b, LevelName(r.Level), r.Message, t, attrs)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(b)
	return err
}

// LevelName returns logrus's lower-case level names.
func LevelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warning"
	case l >= slog.LevelInfo:
		return "info"
	default:
		return "debug"
	}
}

func appendJSON(b []byte, level, msg string, t time.Time, attrs []slog.Attr) []byte {
	b = append(b, `{"level":`...)
	b = appendJSONString(b, level)
	b = append(b, `,"msg":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"time":`...)
	b = appendJSONString(b, t.Format(time.RFC3339))
	for _, a := range attrs {
		b = append(b, ',')
		b = appendJSONString(b, fieldKey(a.Key))
		b = append(b, ':')
		b = appendJSONValue(b, a.Value)
	}
	return append(b, '}', '\n')
}

// fieldKey renames attrs that would shadow the record's own keys, as
// logrus does: a decoder must always see the real level, msg and time.
func fieldKey(k string) string {
	switch k {
	case "level", "msg", "time":
		return "fields." + k
	}
	return k
}

func appendJSONValue(b []byte, v slog.Value) []byte {
	var x any
	switch v.Kind() {
	case slog.KindString:
		return appendJSONString(b, v.String())
	case slog.KindTime:
		return appendJSONString(b, v.Time().Format(time.RFC3339Nano))
	case slog.KindAny:
		x = v.Any()
		if err, ok := x.(error); ok {
			return appendJSONString(b, err.Error())
		}
	default:
		x = v.Any()
	}
	out, err := json.Marshal(x)
	if err != nil {
		return appendJSONString(b, v.String())
	}
	return append(b, out...)
}

func appendJSONString(b []byte, s string) []byte {
	v, _ := json.Marshal(s) // a string always marshals
	return append(b, v...)
}

func appendText(b []byte, level, msg string, t time.Time, attrs []slog.Attr) []byte {
	b = append(b, `time="`...)
	b = append(b, t.Format(time.RFC3339)...)
	b = append(b, `" level=`...)
	b = append(b, level...)
	b = append(b, ` msg=`...)
	b = appendTextValue(b, msg)
	for _, a := range attrs {
		b = append(b, ' ')
		b = append(b, fieldKey(a.Key)...)
		b = append(b, '=')
		b = appendTextValue(b, a.Value.String())
	}
	return append(b, '\n')
}

// appendTextValue quotes like logrus: bare when the value is a simple token,
// Go-quoted otherwise (msg is always quoted by logrus when it has spaces).
func appendTextValue(b []byte, s string) []byte {
	if s != "" && !strings.ContainsAny(s, " \t\r\n\"=\\") {
		return append(b, s...)
	}
	return strconv.AppendQuote(b, s)
}
