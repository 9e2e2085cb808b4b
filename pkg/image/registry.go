package image

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

var (
	// ErrNotFound matches (errors.Is) registry errors for a missing
	// repository, manifest or blob.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized matches (errors.Is) registry errors for refused
	// or missing credentials.
	ErrUnauthorized = errors.New("unauthorized")
)

// RegistryError is an error response from a registry.
type RegistryError struct {
	Host    string // as named in the reference, e.g. "127.0.0.1:5000"
	Status  int    // HTTP status
	Code    string // distribution error code, e.g. "MANIFEST_UNKNOWN"; may be empty
	Message string // e.g. "manifest unknown"
}

func (e *RegistryError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = strings.ToLower(strings.ReplaceAll(e.Code, "_", " "))
	}
	if msg == "" {
		msg = fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		if !strings.Contains(msg, "unauthorized") && !strings.Contains(msg, "denied") {
			msg = "unauthorized: " + msg
		}
	}
	return fmt.Sprintf("registry %s: %s", e.Host, msg)
}

// Is makes errors.Is(err, ErrNotFound / ErrUnauthorized) work.
func (e *RegistryError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	}
	return false
}

// registry is a client for one repository on one registry.
type registry struct {
	client   *http.Client
	host     string // for messages: the reference's domain
	repo     string
	user     string
	password string

	mu   sync.Mutex
	base string // scheme://endpoint
	// plainBase is where a loopback registry tried over https goes when
	// it answers in plain HTTP; "" once decided.
	plainBase string
	auth      string // Authorization header value, "" when anonymous
}

func isLoopback(domain string) bool {
	h := domain
	if host, _, err := net.SplitHostPort(domain); err == nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func newRegistry(ref Reference, opts PullOptions) *registry {
	endpoint := ref.Domain
	if endpoint == DefaultDomain {
		endpoint = "registry-1.docker.io"
	}
	// A loopback registry is what Docker calls insecure: https without
	// certificate checks first, plain http if it answers in HTTP. (Traffic
	// that never leaves the host gains nothing from a CA.)
	loopback := isLoopback(ref.Domain)
	base, plainBase := "https://"+endpoint, ""
	switch {
	case opts.PlainHTTP:
		base = "http://" + endpoint
	case loopback:
		plainBase = "http://" + endpoint
	}
	client := opts.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: opts.InsecureSkipVerify || loopback} //nolint:gosec // opt-in, or loopback
		tr.ResponseHeaderTimeout = time.Minute
		client = &http.Client{Transport: tr}
	}
	return &registry{
		client:    client,
		host:      ref.Domain,
		base:      base,
		plainBase: plainBase,
		repo:      ref.Path,
		user:      opts.Username,
		password:  opts.Password,
	}
}

// downgrade switches a loopback registry to plain http when err says it
// answered an https request in HTTP; it reports whether to retry.
func (c *registry) downgrade(err error, tried string) bool {
	var rec tls.RecordHeaderError
	if !errors.Is(err, http.ErrSchemeMismatch) && !errors.As(err, &rec) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base == tried && c.plainBase != "" {
		c.base, c.plainBase = c.plainBase, ""
	}
	return c.base != tried
}

// transportError turns a failed round trip into "registry HOST: <cause>",
// e.g. "registry 127.0.0.1:5000: connection refused".
func (c *registry) transportError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("registry %s: %w", c.host, err)
	}
	var op *net.OpError
	if errors.As(err, &op) {
		inner := op.Err
		var se *os.SyscallError
		if errors.As(inner, &se) {
			inner = se.Err
		}
		return fmt.Errorf("registry %s: %w", c.host, inner)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("registry %s: %w", c.host, dnsErr)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("registry %s: %w", c.host, err)
}

// responseError builds a RegistryError from a non-2xx response and closes its body.
func (c *registry) responseError(resp *http.Response) error {
	defer resp.Body.Close()
	e := &RegistryError{Host: c.host, Status: resp.StatusCode}
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &body) == nil && len(body.Errors) > 0 {
		e.Code, e.Message = body.Errors[0].Code, body.Errors[0].Message
	}
	return e
}

// get performs a GET (authenticating on a 401 challenge and retrying once)
// and returns a 2xx response, or an error.
func (c *registry) get(ctx context.Context, path string, accept []string) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		base, sent := c.base, c.auth
		c.mu.Unlock()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", c.host, err)
		}
		for _, a := range accept {
			req.Header.Add("Accept", a)
		}
		if sent != "" {
			req.Header.Set("Authorization", sent)
		}
		resp, err := c.client.Do(req)
		if err != nil {
			if c.downgrade(err, base) {
				attempt--
				continue
			}
			return nil, c.transportError(err)
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return nil, c.responseError(resp)
		}
		challenges := parseChallenges(resp.Header.Values("WWW-Authenticate"))
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := c.authorize(ctx, challenges, sent); err != nil {
			return nil, err
		}
	}
}

// authorize answers a 401 challenge. sent is the Authorization value that
// was refused, so concurrent requests refresh a token only once.
func (c *registry) authorize(ctx context.Context, challenges []challenge, sent string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.auth != sent {
		return nil // someone else already refreshed it
	}
	unauthorized := func(msg string) error {
		return &RegistryError{Host: c.host, Status: http.StatusUnauthorized, Message: "unauthorized: " + msg}
	}
	for _, ch := range challenges {
		if ch.scheme == "bearer" {
			tok, err := c.fetchToken(ctx, ch.params)
			if err != nil {
				return err
			}
			c.auth = "Bearer " + tok
			return nil
		}
	}
	for _, ch := range challenges {
		if ch.scheme == "basic" {
			if c.user == "" && c.password == "" {
				return unauthorized("registry wants credentials (Basic) and none were given")
			}
			req, _ := http.NewRequest(http.MethodGet, "/", nil)
			req.SetBasicAuth(c.user, c.password)
			auth := req.Header.Get("Authorization")
			if auth == sent {
				return unauthorized("credentials refused")
			}
			c.auth = auth
			return nil
		}
	}
	return unauthorized("no supported authentication scheme in challenge")
}

// fetchToken gets a bearer token from the challenge's realm for pull scope.
func (c *registry) fetchToken(ctx context.Context, params map[string]string) (string, error) {
	realm := params["realm"]
	u, err := url.Parse(realm)
	if err != nil || realm == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("registry %s: bad token realm %q in auth challenge", c.host, realm)
	}
	q := u.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	scope := "repository:" + c.repo + ":pull"
	if s := params["scope"]; s != "" {
		scope = s
	}
	q.Set("scope", scope)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("registry %s: token request: %w", c.host, err)
	}
	if c.user != "" || c.password != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token server %s: %w", u.Host, c.transportError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		status := resp.StatusCode
		if status == http.StatusForbidden {
			status = http.StatusUnauthorized
		}
		return "", &RegistryError{Host: c.host, Status: status,
			Message: fmt.Sprintf("token server %s refused %s (HTTP %d)", u.Host, scope, resp.StatusCode)}
	}
	var tr struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return "", fmt.Errorf("registry %s: token server %s: bad response: %w", c.host, u.Host, err)
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" {
		return "", fmt.Errorf("registry %s: token server %s returned no token", c.host, u.Host)
	}
	return tok, nil
}

type challenge struct {
	scheme string // lowercase
	params map[string]string
}

// parseChallenges parses WWW-Authenticate values of the form
// `Scheme k1="v1",k2=v2`, one challenge per header value.
func parseChallenges(values []string) []challenge {
	var out []challenge
	for _, v := range values {
		v = strings.TrimSpace(v)
		scheme, rest, _ := strings.Cut(v, " ")
		ch := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
		for rest = strings.TrimSpace(rest); rest != ""; {
			key, after, ok := strings.Cut(rest, "=")
			if !ok {
				break
			}
			key = strings.ToLower(strings.TrimSpace(key))
			var val string
			if strings.HasPrefix(after, `"`) {
				var b strings.Builder
				i := 1
				for ; i < len(after); i++ {
					if after[i] == '\\' && i+1 < len(after) {
						i++
						b.WriteByte(after[i])
						continue
					}
					if after[i] == '"' {
						break
					}
					b.WriteByte(after[i])
				}
				val = b.String()
				after = after[min(i+1, len(after)):]
			} else {
				val, after, _ = strings.Cut(after, ",")
				after = "," + after
			}
			ch.params[key] = strings.TrimSpace(val)
			after = strings.TrimSpace(after)
			after = strings.TrimPrefix(after, ",")
			rest = strings.TrimSpace(after)
		}
		out = append(out, ch)
	}
	return out
}

// contentType returns the media type of a response without parameters.
func contentType(resp *http.Response) string {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}
