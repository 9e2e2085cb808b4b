# xstack build, test and benchmark entry points. See README.md.

GO       ?= go
BINDIR   ?= bin
PREFIX   ?= /usr/local
VERSION  ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0-dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X github.com/xstack/xstack/pkg/version.Version=$(VERSION) -X github.com/xstack/xstack/pkg/version.Commit=$(COMMIT)

# xrunc is pure Go and static. The one piece of C, the helper that joins
# user namespaces (pkg/runtime/nsenter/helper/helper.c), is compiled freestanding
# and embedded as generated Go (make nsenter), like generated protobufs.
NSENTER_CFLAGS := -Os -static -nostdlib -ffreestanding -fno-stack-protector \
	-fno-asynchronous-unwind-tables -fno-pie -no-pie -fno-builtin \
	-Wall -Wextra -Werror -Wl,--build-id=none -Wl,-z,noexecstack -s

# Tests that need root run as root in CI; set TESTFLAGS to pass more flags.
TESTFLAGS ?=
INTEGRATION_TIMEOUT ?= 20m

.PHONY: all build xrunc xshim xd xctl nsenter test unit integration fuzz bench bench-scale lint protos install clean

all: build

build: xrunc xshim xd xctl

xrunc:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINDIR)/xrunc ./cmd/xrunc

# xshim finds xrunc beside itself: install them in the same directory.
xshim:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINDIR)/xshim ./cmd/xshim

xd:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINDIR)/xd ./cmd/xd

xctl:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINDIR)/xctl ./cmd/xctl

# nsenter regenerates the embedded user-namespace helper from helper.c.
nsenter:
	$(CC) $(NSENTER_CFLAGS) -o $(BINDIR)/xrunc-nsenter pkg/runtime/nsenter/helper/helper.c
	$(GO) run ./pkg/runtime/nsenter/gen $(BINDIR)/xrunc-nsenter pkg/runtime/nsenter/helper_amd64.go

# test: everything CI runs. Unit tests with the race detector, then the
# end-to-end suites against the freshly built binaries.
test: lint unit integration fuzz

unit: build
	XSTACK_BINDIR=$(abspath $(BINDIR)) $(GO) test -race -count=1 $(TESTFLAGS) ./pkg/... ./cmd/... ./contrib/... ./bench/...

integration: build
	XSTACK_BINDIR=$(abspath $(BINDIR)) $(GO) test -count=1 -timeout $(INTEGRATION_TIMEOUT) $(TESTFLAGS) ./integration/...

# fuzz runs every fuzz target for a bounded number of inputs beyond its seed
# corpus (which unit already runs): the parsers of untrusted input
# (config.json, user strings, /etc/passwd, mountinfo) and in-rootfs path
# resolution. Budgets are input counts, about 5 s each here, not durations:
# a duration ends in a race of Go 1.26's fuzz coordinator that fails the
# target with "context deadline exceeded" (golang/go#75804). A failing input
# lands in the package's testdata/fuzz for `go test` to replay.
FUZZ_TARGETS := \
	pkg/runtime/spec:FuzzParseValidate:5000 \
	pkg/runtime/user:FuzzParseUIDGID:50000 \
	pkg/runtime/user:FuzzParsePasswd:50000 \
	pkg/specgen:FuzzResolveUser:25000 \
	pkg/mountinfo:FuzzParse:100000 \
	pkg/runtime/cgroups:FuzzParseMountinfo:25000 \
	pkg/safepath:FuzzMkdirAllNeverEscapes:1500 \
	pkg/taskio:FuzzTail:100000
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$${rest#*:}; \
	  echo "fuzz $$pkg $$fn: $$n inputs"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $${n}x ./$$pkg; \
	done

bench: build
	XSTACK_BINDIR=$(abspath $(BINDIR)) $(GO) run ./bench

# bench-scale: the daemons alone, then 1,000 running in each (a few minutes).
bench-scale: build
	XSTACK_BINDIR=$(abspath $(BINDIR)) $(GO) run ./bench -runtimes none -shims=false -daemon-scale 1000

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# The embedded helper must match its source.
	@mkdir -p $(BINDIR) && $(CC) $(NSENTER_CFLAGS) -o $(BINDIR)/xrunc-nsenter.check pkg/runtime/nsenter/helper/helper.c && \
	  $(GO) run ./pkg/runtime/nsenter/gen $(BINDIR)/xrunc-nsenter.check $(BINDIR)/helper_amd64.check.go && \
	  cmp -s $(BINDIR)/helper_amd64.check.go pkg/runtime/nsenter/helper_amd64.go || \
	  { echo "pkg/runtime/nsenter/helper_amd64.go is stale: run make nsenter"; exit 1; }

# protos regenerates proto/xd/v1 with Debian's protoc (protobuf-compiler and
# libprotobuf-dev) and the protoc-gen-go / protoc-gen-go-ttrpc versions go.mod pins.
PROTOS := $(wildcard proto/xd/v1/*.proto)
protos:
	mkdir -p $(BINDIR)/tools
	GOBIN=$(abspath $(BINDIR))/tools $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o $(BINDIR)/tools/protoc-gen-go-ttrpc github.com/containerd/ttrpc/cmd/protoc-gen-go-ttrpc
	PATH=$(abspath $(BINDIR))/tools:$$PATH protoc -I proto -I /usr/include \
	  --go_out=paths=source_relative:proto --go-ttrpc_out=paths=source_relative:proto $(PROTOS)

# install puts the four binaries in one directory (xd finds xshim, and
# xshim finds xrunc, beside themselves) and the systemd unit in
# /etc/systemd/system; then: systemctl daemon-reload && systemctl enable --now xd
SYSTEMDDIR ?= /etc/systemd/system
install: build
	for b in xrunc xshim xd xctl; do install -D -m 0755 $(BINDIR)/$$b $(DESTDIR)$(PREFIX)/bin/$$b; done
	install -d $(DESTDIR)$(SYSTEMDDIR)
	sed 's|^ExecStart=.*|ExecStart=$(PREFIX)/bin/xd|' contrib/systemd/xd.service > $(DESTDIR)$(SYSTEMDDIR)/xd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/xd.service

clean:
	rm -rf $(BINDIR)
