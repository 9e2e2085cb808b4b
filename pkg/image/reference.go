package image

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

const (
	// DefaultDomain is the registry a reference without a domain refers to.
	DefaultDomain = "docker.io"
	// DefaultTag is used when a reference has neither tag nor digest.
	DefaultTag    = "latest"
	officialRepo  = "library/"
	maxNameLength = 255
)

var (
	// A path component: lowercase alphanumerics separated by ".", "_", "__" or runs of "-".
	pathComponentRe = lazyRegexp(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	// A domain: DNS-ish host or bracketed IPv6, optional port.
	domainRe = lazyRegexp(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	tagRe    = lazyRegexp(`^[\w][\w.-]{0,127}$`)
)

// Reference is a parsed, normalized image reference.
type Reference struct {
	Domain string        // e.g. "docker.io", "localhost:5000"
	Path   string        // repository path, e.g. "library/busybox"
	Tag    string        // "" only when Digest is set and no tag was given
	Digest digest.Digest // optional
}

// ParseReference parses and normalizes an image reference the way docker
// and containerd do: "busybox" becomes docker.io/library/busybox:latest,
// "index.docker.io" is docker.io, a first component containing "." or ":"
// or equal to "localhost" is a registry domain, and a reference with
// neither tag nor digest gets the tag "latest". Repository paths must be
// lowercase (as in docker, they are rejected otherwise rather than folded).
func ParseReference(s string) (Reference, error) {
	bad := func(format string, a ...any) (Reference, error) {
		return Reference{}, fmt.Errorf("invalid reference %q: %s", s, fmt.Sprintf(format, a...))
	}
	if s == "" {
		return bad("empty")
	}
	if strings.TrimSpace(s) != s {
		return bad("contains leading or trailing space")
	}
	var ref Reference
	name := s
	if i := strings.Index(name, "@"); i >= 0 {
		d, err := digest.Parse(name[i+1:])
		if err != nil {
			return bad("bad digest %q: %v", name[i+1:], err)
		}
		ref.Digest = d
		name = name[:i]
	}
	// A tag follows the last ":" that comes after the last "/".
	if i := strings.LastIndex(name, ":"); i >= 0 && i > strings.LastIndex(name, "/") {
		tag := name[i+1:]
		if !tagRe().MatchString(tag) {
			return bad("bad tag %q", tag)
		}
		ref.Tag = tag
		name = name[:i]
	}
	if name == "" {
		return bad("missing repository name")
	}
	if len(name) > maxNameLength {
		return bad("name longer than %d characters", maxNameLength)
	}

	domain, path := DefaultDomain, name
	if i := strings.Index(name, "/"); i >= 0 {
		first := name[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first {
			domain, path = first, name[i+1:]
		}
	}
	if !domainRe().MatchString(domain) {
		return bad("bad registry domain %q", domain)
	}
	if domain == "index.docker.io" {
		domain = DefaultDomain
	}
	if path == "" {
		return bad("missing repository path")
	}
	for _, c := range strings.Split(path, "/") {
		if pathComponentRe().MatchString(c) {
			continue
		}
		if strings.ToLower(c) != c && pathComponentRe().MatchString(strings.ToLower(c)) {
			return bad("repository name must be lowercase")
		}
		return bad("bad repository path component %q", c)
	}
	if domain == DefaultDomain && !strings.Contains(path, "/") {
		path = officialRepo + path
	}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = DefaultTag
	}
	ref.Domain, ref.Path = domain, path
	return ref, nil
}

// Name returns domain/path, without tag or digest.
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// String returns the normalized reference: domain/path[:tag][@digest].
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// object returns what to ask a registry for: the digest if pinned, else the tag.
func (r Reference) object() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// lazyRegexp compiles a pattern on first use: some of these cost
// milliseconds to compile (bounded repetitions), which every xd start
// would pay otherwise.
func lazyRegexp(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}
