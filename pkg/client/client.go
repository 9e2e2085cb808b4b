package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/containerd/ttrpc"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// DefaultAddress is xd's socket when none is given.
const DefaultAddress = "/run/xd/xd.sock"

// dialTimeout bounds the connect to xd's socket.
const dialTimeout = 5 * time.Second

// Option configures a Client.
type Option func(*options)

type options struct {
	debug func(format string, args ...any)
}

// WithDebug logs every unary call (method, namespace, duration, error)
// through logf.
func WithDebug(logf func(format string, args ...any)) Option {
	return func(o *options) { o.debug = logf }
}

// Client is a connection to xd. It is safe for concurrent use.
type Client struct {
	address   string
	namespace string
	ttrpc     *ttrpc.Client

	containers xdv1.ContainersService
	images     xdv1.ImagesClient
	tasks      xdv1.TasksClient
	events     xdv1.EventsClient
	version    xdv1.VersionService
}

// New dials xd at address (DefaultAddress when empty) and returns a client
// whose calls all carry namespace (xdv1.DefaultNamespace when empty).
func New(address, namespace string, opts ...Option) (*Client, error) {
	if address == "" {
		address = DefaultAddress
	}
	if namespace == "" {
		namespace = xdv1.DefaultNamespace
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	d := net.Dialer{Timeout: dialTimeout}
	raw, err := d.Dial("unix", address)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to xd at %s: is xd running? (%w)", address, err)
	}
	c := &Client{address: address, namespace: namespace}
	c.ttrpc = ttrpc.NewClient(raw, ttrpc.WithUnaryClientInterceptor(c.unaryInterceptor(o.debug)))
	c.containers = xdv1.NewContainersClient(c.ttrpc)
	c.images = xdv1.NewImagesClient(c.ttrpc)
	c.tasks = xdv1.NewTasksClient(c.ttrpc)
	c.events = xdv1.NewEventsClient(c.ttrpc)
	c.version = xdv1.NewVersionClient(c.ttrpc)
	return c, nil
}

// unaryInterceptor sets the namespace header on the request itself, which
// is where ttrpc reads metadata from. (ttrpc sends no metadata with streams:
// the streaming requests carry a namespace field, which callers fill from
// Namespace.)
func (c *Client) unaryInterceptor(debug func(string, ...any)) ttrpc.UnaryClientInterceptor {
	return func(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response, info *ttrpc.UnaryClientInfo, invoke ttrpc.Invoker) error {
		req.Metadata = setNamespace(req.Metadata, c.namespace)
		if debug == nil {
			return invoke(ctx, req, resp)
		}
		start := time.Now()
		err := invoke(ctx, req, resp)
		debug("rpc %s ns=%s took=%s err=%v", info.FullMethod, c.namespace, time.Since(start).Round(time.Microsecond), err)
		return err
	}
}

// setNamespace returns md with exactly one namespace entry.
func setNamespace(md []*ttrpc.KeyValue, ns string) []*ttrpc.KeyValue {
	out := md[:0:0]
	for _, kv := range md {
		if kv.Key != xdv1.NamespaceHeader {
			out = append(out, kv)
		}
	}
	return append(out, &ttrpc.KeyValue{Key: xdv1.NamespaceHeader, Value: ns})
}

// Address is the socket the client is connected to.
func (c *Client) Address() string { return c.address }

// Namespace is the namespace every call carries.
func (c *Client) Namespace() string { return c.namespace }

// Containers is the Containers service.
func (c *Client) Containers() xdv1.ContainersService { return c.containers }

// Images is the Images service.
func (c *Client) Images() xdv1.ImagesClient { return c.images }

// Tasks is the Tasks service.
func (c *Client) Tasks() xdv1.TasksClient { return c.tasks }

// Events is the Events service.
func (c *Client) Events() xdv1.EventsClient { return c.events }

// Version is the Version service.
func (c *Client) Version() xdv1.VersionService { return c.version }

// Close closes the connection; calls in flight fail.
func (c *Client) Close() error {
	err := c.ttrpc.Close()
	if errors.Is(err, ttrpc.ErrClosed) {
		return nil
	}
	return err
}

// WaitResult is the outcome of a Tasks.Wait started by WaitAsync.
type WaitResult struct {
	Status *xdv1.ExitStatus
	Err    error
}

// WaitAsync issues Tasks.Wait for a process in the background; the result
// arrives on the returned channel (buffered, one value). xd holds a
// process's exit status until it is deleted, so the Wait may reach xd
// before or after Start without missing the exit. Cancel ctx to abandon it.
func (c *Client) WaitAsync(ctx context.Context, containerID, execID string) <-chan WaitResult {
	done := make(chan WaitResult, 1)
	go func() {
		st, err := c.tasks.Wait(ctx, &xdv1.WaitRequest{ContainerId: containerID, ExecId: execID})
		done <- WaitResult{Status: st, Err: err}
	}()
	return done
}
