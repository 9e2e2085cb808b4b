package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/xstack/xstack/pkg/image/registrytest"
)

// registryFixture is a real registry holding test/busybox:1 (single
// image) and test/busybox:multi (an arm64+amd64 index).
type registryFixture struct {
	addr  string
	amd   testImage
	arm   testImage
	index ocispec.Descriptor
}

func setupRegistry(t *testing.T) *registryFixture {
	t.Helper()
	addr := registrytest.Start(t, false)
	amd := buildImage(t, "amd64", true, map[string]string{"bin/sh": "#!amd64", "etc/hostname": "x"}, map[string]string{"etc/motd": "hello"})
	arm := buildImage(t, "arm64", true, map[string]string{"bin/sh": "#!arm64"})
	idxBytes, idxDesc := buildIndex(t, arm, amd)

	dir := t.TempDir()
	l := newLayout()
	l.add(amd.blobs())
	l.add(arm.blobs())
	l.add(map[digest.Digest][]byte{idxDesc.Digest: idxBytes})
	l.entry(amd.desc, ocispec.AnnotationRefName, "single")
	l.entry(idxDesc, ocispec.AnnotationRefName, "multi")
	l.writeDir(t, dir)
	registrytest.Push(t, "oci:"+dir+":single", addr+"/test/busybox:1", false)
	registrytest.Push(t, "oci:"+dir+":multi", addr+"/test/busybox:multi", true)
	return &registryFixture{addr: addr, amd: amd, arm: arm, index: idxDesc}
}

func TestPull(t *testing.T) {
	f := setupRegistry(t)
	ctx := context.Background()

	t.Run("single manifest", func(t *testing.T) {
		cs := newTestStore(t)
		var mu sync.Mutex
		statuses := map[string]int{}
		named, err := Pull(ctx, cs, f.addr+"/test/busybox:1", PullOptions{Progress: func(p Progress) {
			mu.Lock()
			statuses[p.Status]++
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		if named.Name != f.addr+"/test/busybox:1" || named.Target.MediaType != ocispec.MediaTypeImageManifest {
			t.Fatalf("named = %+v", named)
		}
		res, err := Resolve(ctx, cs, named.Target)
		if err != nil {
			t.Fatal(err)
		}
		if res.Config.Digest != f.amd.cfgDesc.Digest || len(res.Layers) != 2 {
			t.Fatalf("resolved %+v", res)
		}
		if statuses[StatusResolving] != 1 || statuses[StatusDone] < 4 || statuses[StatusDownloading] == 0 {
			t.Errorf("progress statuses %v", statuses)
		}
		// Second pull: everything exists.
		statuses = map[string]int{}
		if _, err := Pull(ctx, cs, f.addr+"/test/busybox:1", PullOptions{Progress: func(p Progress) {
			mu.Lock()
			statuses[p.Status]++
			mu.Unlock()
		}}); err != nil {
			t.Fatal(err)
		}
		if statuses[StatusExists] != 4 || statuses[StatusDownloading] != 0 {
			t.Errorf("second pull statuses %v", statuses)
		}
	})

	t.Run("multi-arch index", func(t *testing.T) {
		cs := newTestStore(t)
		named, err := Pull(ctx, cs, f.addr+"/test/busybox:multi", PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if named.Target.Digest != f.index.Digest || named.Target.MediaType != ocispec.MediaTypeImageIndex {
			t.Fatalf("target = %+v, want index %s", named.Target, f.index.Digest)
		}
		res, err := Resolve(ctx, cs, named.Target)
		if err != nil {
			t.Fatal(err)
		}
		if res.Manifest.Digest != f.amd.desc.Digest {
			t.Errorf("manifest %s, want amd64 %s", res.Manifest.Digest, f.amd.desc.Digest)
		}
		if cs.Has(f.arm.desc.Digest) || cs.Has(f.arm.cfgDesc.Digest) {
			t.Error("arm64 content was downloaded")
		}
	})

	t.Run("by digest", func(t *testing.T) {
		cs := newTestStore(t)
		ref := f.addr + "/test/busybox@" + f.amd.desc.Digest.String()
		named, err := Pull(ctx, cs, ref, PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if named.Name != ref || named.Target.Digest != f.amd.desc.Digest {
			t.Fatalf("named = %+v", named)
		}
	})

	errTests := []struct {
		name    string
		ref     string
		wantIs  error
		wantErr []string
	}{
		{"unknown tag", f.addr + "/test/busybox:nope", ErrNotFound, []string{"manifest unknown", "test/busybox:nope", f.addr}},
		{"unknown repo", f.addr + "/test/other:1", ErrNotFound, []string{"test/other:1"}},
		{"bad ref", f.addr + "/Test:1", nil, []string{"lowercase"}},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newTestStore(t)
			_, err := Pull(ctx, cs, tt.ref, PullOptions{})
			checkErr(t, err, tt.wantIs, tt.wantErr...)
		})
	}

	t.Run("basic auth", func(t *testing.T) {
		front := authFront(t, f.addr, "basic")
		tests := []struct {
			name, user, pass string
			wantErr          string
		}{
			{"good", "alice", "secret", ""},
			{"bad password", "alice", "wrong", "unauthorized"},
			{"anonymous", "", "", "unauthorized"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				cs := newTestStore(t)
				_, err := Pull(ctx, cs, front+"/test/busybox:multi", PullOptions{Username: tt.user, Password: tt.pass})
				if tt.wantErr == "" {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				checkErr(t, err, ErrUnauthorized, tt.wantErr, front)
			})
		}
	})

	t.Run("bearer token", func(t *testing.T) {
		for _, mode := range []string{"bearer", "bearer-access_token"} {
			front := authFront(t, f.addr, mode)
			tests := []struct {
				name, user, pass string
				wantErr          string
			}{
				{"with creds", "alice", "secret", ""},
				{"bad creds", "alice", "wrong", "unauthorized"},
			}
			for _, tt := range tests {
				t.Run(mode+"/"+tt.name, func(t *testing.T) {
					cs := newTestStore(t)
					_, err := Pull(ctx, cs, front+"/test/busybox:1", PullOptions{Username: tt.user, Password: tt.pass})
					if tt.wantErr == "" {
						if err != nil {
							t.Fatal(err)
						}
						return
					}
					checkErr(t, err, ErrUnauthorized, tt.wantErr)
				})
			}
		}
	})

	t.Run("registry down", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", registrytest.FreePort(t))
		_, err := Pull(ctx, newTestStore(t), addr+"/test/busybox:1", PullOptions{})
		checkErr(t, err, nil, "registry "+addr+": connection refused", addr+"/test/busybox:1")
	})

	t.Run("lying registry", func(t *testing.T) {
		tests := []struct {
			name    string
			tamper  func(path string, body []byte) []byte
			wantErr string
		}{
			{"altered layer", func(p string, b []byte) []byte {
				if strings.Contains(p, "/blobs/"+f.amd.layerDesc[1].Digest.String()) {
					b = append([]byte(nil), b...)
					b[len(b)-5] ^= 0xff
				}
				return b
			}, "digest mismatch"},
			{"truncated config", func(p string, b []byte) []byte {
				if strings.Contains(p, "/blobs/"+f.amd.cfgDesc.Digest.String()) {
					return b[:len(b)-1]
				}
				return b
			}, "size mismatch"},
			{"altered child manifest", func(p string, b []byte) []byte {
				if strings.HasSuffix(p, "/manifests/"+f.amd.desc.Digest.String()) {
					return bytes.Replace(b, []byte(`"schemaVersion":2`), []byte(`"schemaVersion": 2`), 1)
				}
				return b
			}, "manifest digest mismatch"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				liar := tamperingProxy(t, f.addr, tt.tamper)
				cs := newTestStore(t)
				named, err := Pull(ctx, cs, liar+"/test/busybox:multi", PullOptions{})
				checkErr(t, err, nil, tt.wantErr)
				if named.Name != "" {
					t.Errorf("named %+v on error", named)
				}
			})
		}
	})
}

func checkErr(t *testing.T, err, wantIs error, wantSub ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("succeeded, want error")
	}
	t.Logf("error: %v", err)
	if wantIs != nil && !errors.Is(err, wantIs) {
		t.Errorf("error %q is not %v", err, wantIs)
	}
	for _, s := range wantSub {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

// authFront is an HTTP front for the real registry at addr that demands
// Basic auth (mode "basic") or bearer tokens (mode "bearer*", serving its
// own token endpoint at /token) for alice:secret. It returns its host:port.
func authFront(t *testing.T, addr, mode string) string {
	t.Helper()
	target, _ := url.Parse("http://" + addr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	const token = "tok-123"
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != "alice" || p != "secret" {
				http.Error(w, "bad creds", http.StatusUnauthorized)
				return
			}
			if r.URL.Query().Get("scope") != "repository:test/busybox:pull" || r.URL.Query().Get("service") != "test-registry" {
				http.Error(w, "bad scope "+r.URL.RawQuery, http.StatusForbidden)
				return
			}
			key := "token"
			if mode == "bearer-access_token" {
				key = "access_token"
			}
			json.NewEncoder(w).Encode(map[string]string{key: token})
			return
		}
		ok := false
		if mode == "basic" {
			u, p, has := r.BasicAuth()
			ok = has && u == "alice" && p == "secret"
			if !ok {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			}
		} else {
			ok = r.Header.Get("Authorization") == "Bearer "+token
			if !ok {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test-registry",scope="repository:test/busybox:pull"`, srv.URL))
			}
		}
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// tamperingProxy forwards to the registry at addr, passing every body
// through tamper (path, body) -> body.
func tamperingProxy(t *testing.T, addr string, tamper func(string, []byte) []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+addr+r.URL.RequestURI(), nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		body = tamper(r.URL.Path, body)
		for k, v := range resp.Header {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestPullLoopbackTLS: a loopback registry serving https (self-signed, as
// such registries are) is pulled from over https without any option; the
// plain-http registries of the other tests are reached by the fallback.
func TestPullLoopbackTLS(t *testing.T) {
	addr := registrytest.Start(t, true)
	img := buildImage(t, "amd64", true, map[string]string{"bin/sh": "#!tls"})
	dir := t.TempDir()
	l := newLayout()
	l.add(img.blobs())
	l.entry(img.desc, ocispec.AnnotationRefName, "single")
	l.writeDir(t, dir)
	registrytest.Push(t, "oci:"+dir+":single", addr+"/test/tls:1", false)

	cs := newTestStore(t)
	named, err := Pull(context.Background(), cs, addr+"/test/tls:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if named.Target.Digest != img.desc.Digest || !cs.Has(img.cfgDesc.Digest) {
		t.Fatalf("pulled %+v", named)
	}
	// Asked for plain http, it fails: the registry speaks only TLS.
	if _, err := Pull(context.Background(), newTestStore(t), addr+"/test/tls:1", PullOptions{PlainHTTP: true}); err == nil {
		t.Error("a plain-http pull from a TLS-only registry succeeded")
	}
}
