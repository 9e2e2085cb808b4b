package log

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixed is a time with a non-UTC zone so that RFC 3339 offsets show.
var fixed = time.Date(2024, 3, 5, 7, 8, 9, 123456789, time.FixedZone("X", 2*3600))

const fixedText = "2024-03-05T07:08:09+02:00"

// handle runs one record through h and returns the output.
func handle(t *testing.T, h slog.Handler, level slog.Level, msg string, attrs ...slog.Attr) {
	t.Helper()
	r := slog.NewRecord(fixed, level, msg, 0)
	r.AddAttrs(attrs...)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatalf("Handle: %v", err)
	}
}

func TestJSONExact(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		msg   string
		attrs []slog.Attr
		want  string
	}{
		{"error", slog.LevelError, "boom", nil,
			`{"level":"error","msg":"boom","time":"` + fixedText + `"}` + "\n"},
		{"warning", slog.LevelWarn, "careful", nil,
			`{"level":"warning","msg":"careful","time":"` + fixedText + `"}` + "\n"},
		{"info", slog.LevelInfo, "hello world", nil,
			`{"level":"info","msg":"hello world","time":"` + fixedText + `"}` + "\n"},
		{"debug", slog.LevelDebug, "details", nil,
			`{"level":"debug","msg":"details","time":"` + fixedText + `"}` + "\n"},
		{"above error", slog.LevelError + 4, "fatal-ish", nil,
			`{"level":"error","msg":"fatal-ish","time":"` + fixedText + `"}` + "\n"},
		{"between info and warn", slog.LevelInfo + 2, "m", nil,
			`{"level":"info","msg":"m","time":"` + fixedText + `"}` + "\n"},
		{"below debug", slog.LevelDebug - 4, "m", nil,
			`{"level":"debug","msg":"m","time":"` + fixedText + `"}` + "\n"},
		{"escaping", slog.LevelError, "a \"quoted\"\nline\t<tag>", nil,
			`{"level":"error","msg":"a \"quoted\"\nline\t\u003ctag\u003e","time":"` + fixedText + `"}` + "\n"},
		{"attrs after time in order", slog.LevelInfo, "m",
			[]slog.Attr{slog.String("id", "c1"), slog.Int("pid", 42), slog.Bool("ok", true), slog.Float64("ms", 1.5), slog.Any("list", []string{"a", "b"})},
			`{"level":"info","msg":"m","time":"` + fixedText + `","id":"c1","pid":42,"ok":true,"ms":1.5,"list":["a","b"]}` + "\n"},
		{"empty key dropped", slog.LevelInfo, "m",
			[]slog.Attr{slog.String("", "x"), slog.String("k", "v")},
			`{"level":"info","msg":"m","time":"` + fixedText + `","k":"v"}` + "\n"},
		{"duration", slog.LevelInfo, "m",
			[]slog.Attr{slog.Duration("d", 1500*time.Millisecond)},
			`{"level":"info","msg":"m","time":"` + fixedText + `","d":1500000000}` + "\n"},
		{"unmarshalable value falls back to string", slog.LevelInfo, "m",
			[]slog.Attr{slog.Any("ch", make(chan int))},
			`{"level":"info","msg":"m","time":"` + fixedText + `","ch":"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := NewHandler(&buf, JSON, slog.LevelDebug-8)
			handle(t, h, tt.level, tt.msg, tt.attrs...)
			got := buf.String()
			if strings.HasSuffix(tt.want, "\n") {
				if got != tt.want {
					t.Errorf("got  %s\nwant %s", got, tt.want)
				}
			} else if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %s, want prefix %s", got, tt.want)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(got), &m); err != nil {
				t.Fatalf("output is not one JSON object: %v: %s", err, got)
			}
			if m["msg"] != tt.msg {
				t.Errorf("msg = %q, want %q", m["msg"], tt.msg)
			}
			ts, _ := m["time"].(string)
			pt, err := time.Parse(time.RFC3339, ts)
			if err != nil {
				t.Fatalf("time %q does not parse as RFC 3339: %v", ts, err)
			}
			if !pt.Equal(fixed.Truncate(time.Second)) {
				t.Errorf("time = %v, want %v", pt, fixed.Truncate(time.Second))
			}
		})
	}
}

func TestJSONErrorAttr(t *testing.T) {
	var buf bytes.Buffer
	handle(t, NewHandler(&buf, JSON, slog.LevelInfo), slog.LevelError, "m", slog.Any("error", errors.New("disk full")))
	want := `{"level":"error","msg":"m","time":"` + fixedText + `","error":"disk full"}` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestJSONDecodesForContainerd(t *testing.T) {
	// containerd decodes each line into a struct with these three fields
	// and keeps the last error.
	var buf bytes.Buffer
	l := slog.New(NewHandler(&buf, JSON, slog.LevelInfo))
	l.Info("starting", "id", "c1")
	l.Error("first failure")
	l.Error("container_linux.go: starting container process caused: exec: \"nope\": not found")
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3: %q", len(lines), buf.String())
	}
	var last string
	for _, line := range lines {
		var e struct {
			Level string    `json:"level"`
			Msg   string    `json:"msg"`
			Time  time.Time `json:"time"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("decode %s: %v", line, err)
		}
		if e.Time.IsZero() || time.Since(e.Time) > time.Minute || time.Until(e.Time) > time.Minute {
			t.Errorf("time %v is not about now", e.Time)
		}
		if e.Level == "error" {
			last = e.Msg
		}
	}
	if want := "container_linux.go: starting container process caused: exec: \"nope\": not found"; last != want {
		t.Errorf("last error = %q, want %q", last, want)
	}
}

func TestJSONReservedKeysNotOverridden(t *testing.T) {
	for _, key := range []string{"level", "msg", "time"} {
		t.Run(key, func(t *testing.T) {
			var buf bytes.Buffer
			h := NewHandler(&buf, JSON, slog.LevelDebug)
			handle(t, h, slog.LevelError, "real message", slog.String(key, "attr value"))
			var e struct {
				Level string `json:"level"`
				Msg   string `json:"msg"`
				Time  string `json:"time"`
			}
			if err := json.Unmarshal(buf.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if e.Level != "error" || e.Msg != "real message" || e.Time != fixedText {
				t.Errorf("decoded %+v from %s", e, buf.String())
			}
		})
	}
}

func TestTextExact(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		msg   string
		attrs []slog.Attr
		want  string
	}{
		{"two words quoted", slog.LevelError, "two words", nil,
			`time="` + fixedText + `" level=error msg="two words"` + "\n"},
		{"single token bare", slog.LevelInfo, "started", nil,
			`time="` + fixedText + `" level=info msg=started` + "\n"},
		{"path token bare", slog.LevelWarn, "/run/xrunc/c1", nil,
			`time="` + fixedText + `" level=warning msg=/run/xrunc/c1` + "\n"},
		{"debug", slog.LevelDebug, "x", nil,
			`time="` + fixedText + `" level=debug msg=x` + "\n"},
		{"quote char quoted", slog.LevelError, `say"hi`, nil,
			`time="` + fixedText + `" level=error msg="say\"hi"` + "\n"},
		{"equals quoted", slog.LevelError, "a=b", nil,
			`time="` + fixedText + `" level=error msg="a=b"` + "\n"},
		{"tab quoted", slog.LevelError, "a\tb", nil,
			`time="` + fixedText + `" level=error msg="a\tb"` + "\n"},
		{"newline quoted", slog.LevelError, "a\nb", nil,
			`time="` + fixedText + `" level=error msg="a\nb"` + "\n"},
		{"backslash quoted", slog.LevelError, `a\b`, nil,
			`time="` + fixedText + `" level=error msg="a\\b"` + "\n"},
		{"empty quoted", slog.LevelError, "", nil,
			`time="` + fixedText + `" level=error msg=""` + "\n"},
		{"attrs", slog.LevelInfo, "m",
			[]slog.Attr{slog.String("id", "c1"), slog.Int("pid", 7), slog.String("cmd", "sh -c true"), slog.Bool("ok", false), slog.String("", "dropped")},
			`time="` + fixedText + `" level=info msg=m id=c1 pid=7 cmd="sh -c true" ok=false` + "\n"},
		{"error attr", slog.LevelError, "m",
			[]slog.Attr{slog.Any("error", errors.New("no such file"))},
			`time="` + fixedText + `" level=error msg=m error="no such file"` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := NewHandler(&buf, Text, slog.LevelDebug)
			handle(t, h, tt.level, tt.msg, tt.attrs...)
			if got := buf.String(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTextTimeParses(t *testing.T) {
	var buf bytes.Buffer
	slog.New(NewHandler(&buf, Text, slog.LevelInfo)).Error("x")
	m := regexp.MustCompile(`^time="([^"]+)" level=error msg=x\n$`).FindStringSubmatch(buf.String())
	if m == nil {
		t.Fatalf("unexpected line %q", buf.String())
	}
	ts, err := time.Parse(time.RFC3339, m[1])
	if err != nil {
		t.Fatalf("time %q: %v", m[1], err)
	}
	if d := time.Since(ts); d < -time.Minute || d > time.Minute {
		t.Errorf("time %v is not about now", ts)
	}
}

func TestZeroRecordTimeIsNow(t *testing.T) {
	var buf bytes.Buffer
	h := NewHandler(&buf, JSON, slog.LevelInfo)
	if err := h.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelError, "m", 0)); err != nil {
		t.Fatal(err)
	}
	var e struct{ Time string }
	if err := json.Unmarshal(buf.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	ts, err := time.Parse(time.RFC3339, e.Time)
	if err != nil {
		t.Fatalf("time %q: %v", e.Time, err)
	}
	if d := time.Since(ts); d < -time.Minute || d > time.Minute {
		t.Errorf("zero record time became %v, want about now", ts)
	}
}

func TestWithAttrsAndGroups(t *testing.T) {
	pre := `{"level":"info","msg":"m","time":"` + fixedText + `"`
	tests := []struct {
		name  string
		build func(h slog.Handler) slog.Handler
		attrs []slog.Attr
		json  string
		text  string
	}{
		{
			name:  "WithAttrs before record attrs",
			build: func(h slog.Handler) slog.Handler { return h.WithAttrs([]slog.Attr{slog.String("id", "c1")}) },
			attrs: []slog.Attr{slog.Int("pid", 1)},
			json:  pre + `,"id":"c1","pid":1}`,
			text:  `id=c1 pid=1`,
		},
		{
			name: "chained WithAttrs keep order",
			build: func(h slog.Handler) slog.Handler {
				return h.WithAttrs([]slog.Attr{slog.String("a", "1")}).WithAttrs([]slog.Attr{slog.String("b", "2")})
			},
			json: pre + `,"a":"1","b":"2"}`,
			text: `a=1 b=2`,
		},
		{
			name:  "group prefixes record attrs",
			build: func(h slog.Handler) slog.Handler { return h.WithGroup("g") },
			attrs: []slog.Attr{slog.String("k", "v")},
			json:  pre + `,"g.k":"v"}`,
			text:  `g.k=v`,
		},
		{
			name: "attrs before group stay unprefixed",
			build: func(h slog.Handler) slog.Handler {
				return h.WithAttrs([]slog.Attr{slog.String("id", "c1")}).WithGroup("g").WithAttrs([]slog.Attr{slog.Int("n", 2)})
			},
			attrs: []slog.Attr{slog.String("k", "v")},
			json:  pre + `,"id":"c1","g.n":2,"g.k":"v"}`,
			text:  `id=c1 g.n=2 g.k=v`,
		},
		{
			name:  "nested groups dotted",
			build: func(h slog.Handler) slog.Handler { return h.WithGroup("a").WithGroup("b") },
			attrs: []slog.Attr{slog.String("k", "v")},
			json:  pre + `,"a.b.k":"v"}`,
			text:  `a.b.k=v`,
		},
	}
	for _, tt := range tests {
		for _, format := range []Format{JSON, Text} {
			name := tt.name + "/json"
			if format == Text {
				name = tt.name + "/text"
			}
			t.Run(name, func(t *testing.T) {
				var buf bytes.Buffer
				base := NewHandler(&buf, format, slog.LevelInfo)
				h := tt.build(base)
				handle(t, h, slog.LevelInfo, "m", tt.attrs...)
				if format == JSON {
					if got := buf.String(); got != tt.json+"\n" {
						t.Errorf("got  %s\nwant %s", got, tt.json)
					}
					return
				}
				want := `time="` + fixedText + `" level=info msg=m ` + tt.text + "\n"
				if got := buf.String(); got != want {
					t.Errorf("got  %s\nwant %s", got, want)
				}
			})
		}
	}
}

func TestDerivedHandlersDoNotShareAttrs(t *testing.T) {
	var buf bytes.Buffer
	base := NewHandler(&buf, Text, slog.LevelInfo)
	parent := base.WithAttrs([]slog.Attr{slog.String("p", "1")})
	a := parent.WithAttrs([]slog.Attr{slog.String("a", "1")})
	b := parent.WithAttrs([]slog.Attr{slog.String("b", "1")})
	g := parent.WithGroup("g")

	for _, tc := range []struct {
		h    slog.Handler
		want string
	}{
		{base, "msg=m\n"},
		{parent, "msg=m p=1\n"},
		{a, "msg=m p=1 a=1\n"},
		{b, "msg=m p=1 b=1\n"},
		{g, "msg=m p=1 g.x=1\n"},
	} {
		buf.Reset()
		handle(t, tc.h, slog.LevelInfo, "m", slog.Int("x", 1))
		got := buf.String()
		want := tc.want
		if tc.h != g {
			want = strings.TrimSuffix(want, "\n") + " x=1\n"
		}
		if !strings.HasSuffix(got, " level=info "+want) {
			t.Errorf("got %q, want suffix %q", got, want)
		}
	}
}

func TestEmptyGroupName(t *testing.T) {
	var buf bytes.Buffer
	h := NewHandler(&buf, Text, slog.LevelInfo).WithGroup("a").WithGroup("")
	handle(t, h, slog.LevelInfo, "m", slog.Int("k", 1))
	if want := " a.k=1\n"; !strings.HasSuffix(buf.String(), want) {
		t.Errorf("got %q, want suffix %q", buf.String(), want)
	}
}

func TestGroupAttrValues(t *testing.T) {
	tests := []struct {
		format Format
		attr   slog.Attr
		want   string
	}{
		{JSON, slog.Group("req", slog.Int("id", 7), slog.String("path", "/x")), `,"req.id":7,"req.path":"/x"}`},
		{Text, slog.Group("req", slog.Int("id", 7)), ` req.id=7`},
		{JSON, slog.Group("", slog.Int("id", 7)), `,"id":7}`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			var buf bytes.Buffer
			handle(t, NewHandler(&buf, tt.format, slog.LevelInfo), slog.LevelInfo, "m", tt.attr)
			if !strings.HasSuffix(strings.TrimSuffix(buf.String(), "\n"), tt.want) {
				t.Errorf("got %q, want suffix %q", buf.String(), tt.want)
			}
		})
	}
}

func TestLevelFiltering(t *testing.T) {
	tests := []struct {
		min  slog.Level
		want []string // levels that get through, in emission order
	}{
		{slog.LevelDebug, []string{"debug", "info", "warning", "error"}},
		{slog.LevelInfo, []string{"info", "warning", "error"}},
		{slog.LevelWarn, []string{"warning", "error"}},
		{slog.LevelError, []string{"error"}},
		{slog.LevelError + 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.min.String(), func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(NewHandler(&buf, JSON, tt.min))
			ctx := context.Background()
			l.Debug("d")
			l.Info("i")
			l.Warn("w")
			l.Error("e")
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if line == "" {
					continue
				}
				var e struct{ Level string }
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatal(err)
				}
				got = append(got, e.Level)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("levels = %v, want %v", got, tt.want)
			}
			for _, lv := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
				if got, want := l.Enabled(ctx, lv), lv >= tt.min; got != want {
					t.Errorf("Enabled(%v) = %v, want %v", lv, got, want)
				}
			}
		})
	}
}

func TestLevelVarChangesApply(t *testing.T) {
	var lv slog.LevelVar
	lv.Set(slog.LevelError)
	var buf bytes.Buffer
	l := slog.New(NewHandler(&buf, Text, &lv))
	l.Info("hidden")
	lv.Set(slog.LevelDebug)
	l.Debug("shown")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "msg=shown") {
		t.Errorf("output %q", got)
	}
}

func TestLevelName(t *testing.T) {
	tests := []struct {
		l    slog.Level
		want string
	}{
		{slog.LevelDebug - 1, "debug"},
		{slog.LevelDebug, "debug"},
		{slog.LevelInfo - 1, "debug"},
		{slog.LevelInfo, "info"},
		{slog.LevelWarn - 1, "info"},
		{slog.LevelWarn, "warning"},
		{slog.LevelError - 1, "warning"},
		{slog.LevelError, "error"},
		{slog.LevelError + 8, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.l.String(), func(t *testing.T) {
			if got := LevelName(tt.l); got != tt.want {
				t.Errorf("LevelName(%v) = %q, want %q", tt.l, got, tt.want)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in     string
		want   Format
		wantOK bool
	}{
		{"", Text, true},
		{"text", Text, true},
		{"json", JSON, true},
		{"JSON", Text, false},
		{"Text", Text, false},
		{"xml", Text, false},
		{" json", Text, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := ParseFormat(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseFormat(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorReturned(t *testing.T) {
	h := NewHandler(errWriter{}, JSON, slog.LevelInfo)
	err := h.Handle(context.Background(), slog.NewRecord(fixed, slog.LevelError, "m", 0))
	if err == nil || err.Error() != "disk full" {
		t.Fatalf("Handle = %v, want the writer's error", err)
	}
}

// lineWriter records each Write call separately.
type lineWriter struct {
	mu     sync.Mutex
	writes []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestConcurrentWholeLines(t *testing.T) {
	w := &lineWriter{}
	base := NewHandler(w, JSON, slog.LevelInfo)
	// Derived handlers share the base's lock and writer.
	l1 := slog.New(base.WithAttrs([]slog.Attr{slog.Int("w", 1)}))
	l2 := slog.New(base.WithGroup("g"))
	var wg sync.WaitGroup
	const n = 200
	for _, l := range []*slog.Logger{l1, l2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				l.Error("concurrent message", "i", i)
			}
		}()
	}
	wg.Wait()
	if len(w.writes) != 2*n {
		t.Fatalf("%d writes, want %d", len(w.writes), 2*n)
	}
	for _, s := range w.writes {
		if !strings.HasSuffix(s, "}\n") || strings.Count(s, "\n") != 1 {
			t.Fatalf("write is not one whole line: %q", s)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("bad line %q: %v", s, err)
		}
	}
}
