# xstack build, test and benchmark entry points. See README.md.

GO       ?= go
BINDIR   ?= bin
PREFIX   ?= /usr/local
VERSION  ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0-dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X github.com/xstack/xstack/pkg/version.Version=$(VERSION) -X github.com/xstack/xstack/pkg/version.Commit=$(COMMIT)

# xrunc carries a small C constructor (pkg/runtime/nsenter) that joins
# namespaces before the Go runtime starts; it is linked statically so the
# sealed copy that runs as the container's init has no loader dependency.
XRUNC_LDFLAGS := $(LDFLAGS) -linkmode external -extldflags "-static"

# Tests that need root run as root in CI; set TESTFLAGS to pass more flags.
TESTFLAGS ?=
INTEGRATION_TIMEOUT ?= 20m

.PHONY: all build xrunc test unit integration bench lint protos install clean

all: build

build: xrunc

xrunc:
	CGO_ENABLED=1 $(GO) build -trimpath -tags netgo,osusergo -ldflags '$(XRUNC_LDFLAGS)' -o $(BINDIR)/xrunc ./cmd/xrunc

# test: everything CI runs. Unit tests with the race detector, then the
# end-to-end suites against the freshly built binaries.
test: lint unit integration

unit:
	$(GO) test -race -count=1 $(TESTFLAGS) ./pkg/... ./cmd/...

integration: build
	XSTACK_BINDIR=$(abspath $(BINDIR)) $(GO) test -count=1 -timeout $(INTEGRATION_TIMEOUT) $(TESTFLAGS) ./integration/...

bench: build
	XSTACK_BINDIR=$(abspath $(BINDIR)) $(GO) run ./bench

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

protos:
	@echo "no protos yet"

install: build
	install -D -m 0755 $(BINDIR)/xrunc $(DESTDIR)$(PREFIX)/bin/xrunc

clean:
	rm -rf $(BINDIR)
