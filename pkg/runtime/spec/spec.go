// Package spec loads an OCI bundle's config.json and checks it before
// anything is created, so that bad input fails with an error naming the
// field and leaves nothing behind. Each rule is an independent check; the
// first failing one is reported.
//
// Internal to xstack; no API stability.
package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ConfigName is the bundle's config file name.
const ConfigName = "config.json"

// maxConfigSize bounds what we read from an untrusted bundle.
const maxConfigSize = 16 << 20

// Load reads and decodes bundle/config.json. It does not validate.
func Load(bundle string) (*specs.Spec, error) {
	s, _, err := LoadRaw(bundle)
	return s, err
}

// LoadRaw is Load that also returns the file's bytes.
func LoadRaw(bundle string) (*specs.Spec, []byte, error) {
	path := filepath.Join(bundle, ConfigName)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("JSON specification file %s not found", path)
		}
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Size() > maxConfigSize {
		return nil, nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", path, st.Size(), maxConfigSize)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil && st.Size() > 0 {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	spec, err := Parse(data)
	if err != nil {
		return nil, nil, err
	}
	return spec, data, nil
}

// Parse decodes a config.json document. The sections of other platforms
// (windows, solaris, vm, zos, freebsd) are not decoded: see linuxSpec.
func Parse(data []byte) (*specs.Spec, error) {
	var v linuxSpec
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("parse config.json: %w", err)
	}
	return &specs.Spec{
		Version:     v.Version,
		Process:     v.Process,
		Root:        v.Root,
		Hostname:    v.Hostname,
		Domainname:  v.Domainname,
		Mounts:      v.Mounts,
		Hooks:       v.Hooks,
		Annotations: v.Annotations,
		Linux:       v.Linux,
	}, nil
}

// linuxSpec is specs.Spec as a Linux runtime reads it. The first time a
// process decodes a type, encoding/json analyses every type it reaches,
// and for a short-lived xrunc the first time is every time: the other
// platforms' types made up about a third of the cost of decoding
// config.json (a millisecond here).
type linuxSpec struct {
	Version     string            `json:"ociVersion"`
	Process     *specs.Process    `json:"process,omitempty"`
	Root        *specs.Root       `json:"root,omitempty"`
	Hostname    string            `json:"hostname,omitempty"`
	Domainname  string            `json:"domainname,omitempty"`
	Mounts      []specs.Mount     `json:"mounts,omitempty"`
	Hooks       *specs.Hooks      `json:"hooks,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Linux       *specs.Linux      `json:"linux,omitempty"`
}

// RootfsPath returns the absolute rootfs path of a spec in bundle.
func RootfsPath(s *specs.Spec, bundle string) string {
	if s.Root == nil {
		return ""
	}
	if filepath.IsAbs(s.Root.Path) {
		return filepath.Clean(s.Root.Path)
	}
	return filepath.Join(bundle, s.Root.Path)
}

// NamespaceTypes maps spec namespace types to clone flags.
var NamespaceTypes = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// ProcNamespaceName is the /proc/PID/ns entry of each namespace type.
var ProcNamespaceName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.MountNamespace:   "mnt",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.UserNamespace:    "user",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// HasNamespace reports whether the spec lists namespace type t (new or joined).
func HasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	_, ok := FindNamespace(s, t)
	return ok
}

// FindNamespace returns the spec entry of namespace type t.
func FindNamespace(s *specs.Spec, t specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	if s.Linux == nil {
		return specs.LinuxNamespace{}, false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return ns, true
		}
	}
	return specs.LinuxNamespace{}, false
}

// Validate checks a spec for a container created from bundle.
func Validate(s *specs.Spec, bundle string) error {
	checks := []func(*specs.Spec, string) error{
		checkVersion,
		checkRoot,
		checkProcess,
		checkNamespaces,
		checkIDMappings,
		checkHostname,
		checkMounts,
		checkPaths,
		checkDevices,
		checkPropagation,
		checkUnsupported,
		checkSeccomp,
	}
	for _, check := range checks {
		if err := check(s, bundle); err != nil {
			return err
		}
	}
	return nil
}

func checkVersion(s *specs.Spec, _ string) error {
	if s.Version == "" {
		return errors.New("ociVersion: missing")
	}
	major, _, _ := strings.Cut(s.Version, ".")
	if n, err := strconv.Atoi(major); err != nil || n != specs.VersionMajor {
		return fmt.Errorf("ociVersion: unsupported spec version %q (this runtime supports %d.x)", s.Version, specs.VersionMajor)
	}
	return nil
}

func checkRoot(s *specs.Spec, bundle string) error {
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("root.path: missing")
	}
	p := RootfsPath(s, bundle)
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("root.path: rootfs (%s) does not exist", p)
		}
		return fmt.Errorf("root.path: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("root.path: rootfs (%s) is not a directory", p)
	}
	return nil
}

func checkProcess(s *specs.Spec, _ string) error {
	p := s.Process
	if p == nil {
		return errors.New("process: missing")
	}
	return CheckProcess(p)
}

// CheckProcess validates a process description (also used for exec).
func CheckProcess(p *specs.Process) error {
	if len(p.Args) == 0 || p.Args[0] == "" {
		return errors.New("process.args: must not be empty")
	}
	if p.Cwd == "" {
		return errors.New("process.cwd: missing")
	}
	if !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd: %q is not an absolute path", p.Cwd)
	}
	for _, e := range p.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("process.env: %q is not of the form KEY=VALUE", e)
		}
	}
	for _, r := range p.Rlimits {
		if _, ok := RlimitTypes[r.Type]; !ok {
			return fmt.Errorf("process.rlimits: unknown rlimit type %q", r.Type)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits: %s soft limit %d is above the hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return fmt.Errorf("process.oomScoreAdj: %d is outside [-1000, 1000]", *p.OOMScoreAdj)
	}
	return checkProcessUnsupported(p)
}

func checkNamespaces(s *specs.Spec, _ string) error {
	if s.Linux == nil {
		return nil
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range s.Linux.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		flag, ok := NamespaceTypes[ns.Type]
		if !ok {
			return fmt.Errorf("%s: unknown namespace type %q", field, ns.Type)
		}
		if seen[ns.Type] {
			return fmt.Errorf("%s: duplicate namespace type %q", field, ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path == "" {
			continue
		}
		if ns.Type == specs.MountNamespace {
			// The rootfs is built in the container's own mount namespace;
			// building it inside someone else's would rearrange theirs.
			return fmt.Errorf("%s: joining an existing mount namespace is not supported", field)
		}
		if err := checkNamespacePath(ns.Path, flag); err != nil {
			return fmt.Errorf("%s: %s namespace path: %w", field, ns.Type, err)
		}
	}
	return nil
}

// checkNamespacePath verifies that path is a namespace file of the wanted
// type, so a typo fails here rather than as an obscure setns error later.
func checkNamespacePath(path string, flag uintptr) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is not an absolute path", path)
	}
	// Non-blocking: a FIFO (or a device) given by mistake must fail here,
	// not hang.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	const nsGetNstype = 0xb703 // NS_GET_NSTYPE, _IO(0xb7, 0x3)
	got, err := unix.IoctlRetInt(fd, nsGetNstype)
	if err != nil {
		return fmt.Errorf("%s is not a namespace file: %w", path, err)
	}
	if uintptr(got) != flag {
		return fmt.Errorf("%s is a namespace of another type", path)
	}
	return nil
}

func checkIDMappings(s *specs.Spec, _ string) error {
	if s.Linux == nil {
		return nil
	}
	userNS, hasUser := FindNamespace(s, specs.UserNamespace)
	hasMaps := len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0
	switch {
	case hasUser && userNS.Path == "" && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0):
		return errors.New("linux.uidMappings/gidMappings: a new user namespace needs both uid and gid mappings")
	case !hasUser && hasMaps:
		return errors.New("linux.uidMappings/gidMappings: mappings given without a user namespace")
	}
	for _, m := range append(append([]specs.LinuxIDMapping(nil), s.Linux.UIDMappings...), s.Linux.GIDMappings...) {
		if m.Size == 0 {
			return errors.New("linux.uidMappings/gidMappings: a mapping has size 0")
		}
	}
	return nil
}

func checkHostname(s *specs.Spec, _ string) error {
	if s.Hostname == "" && s.Domainname == "" {
		return nil
	}
	uts, ok := FindNamespace(s, specs.UTSNamespace)
	if !ok || uts.Path != "" {
		return errors.New("hostname/domainname: cannot be set without a new UTS namespace")
	}
	return nil
}

func checkMounts(s *specs.Spec, bundle string) error {
	for i, m := range s.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("%s.destination: %q is not an absolute path", field, m.Destination)
		}
		if IsBind(m) {
			if m.Source == "" {
				return fmt.Errorf("%s.source: a bind mount needs a source", field)
			}
			if _, err := os.Stat(BindSource(m, bundle)); err != nil {
				return fmt.Errorf("%s.source: bind source %q: %w", field, m.Source, err)
			}
		} else if m.Type == "" {
			return fmt.Errorf("%s.type: missing for %q (only bind mounts may omit it)", field, m.Destination)
		}
		if err := checkIDMappedMount(s, m, field); err != nil {
			return err
		}
	}
	return nil
}

// checkIDMappedMount: an id-mapped mount is a bind mount with both uid and
// gid mappings, its own or, with the idmap/ridmap option alone, the
// container's user namespace's.
func checkIDMappedMount(s *specs.Spec, m specs.Mount, field string) error {
	option := slices.Contains(m.Options, "idmap") || slices.Contains(m.Options, "ridmap")
	own := len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
	switch {
	case !own && !option:
		return nil
	case !IsBind(m):
		return fmt.Errorf("%s: id-mapped mounts are only supported on bind mounts", field)
	case own && (len(m.UIDMappings) == 0 || len(m.GIDMappings) == 0):
		return fmt.Errorf("%s: an id-mapped mount needs both uidMappings and gidMappings", field)
	case !own && (s.Linux == nil || len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0):
		return fmt.Errorf("%s: the idmap option without mappings of its own needs the container's user namespace mappings", field)
	}
	for _, ms := range [][]specs.LinuxIDMapping{m.UIDMappings, m.GIDMappings} {
		for _, mp := range ms {
			if mp.Size == 0 {
				return fmt.Errorf("%s: an id mapping of size 0", field)
			}
		}
	}
	return nil
}

// BindSource returns a bind mount's source path: relative sources are
// relative to the bundle (runtime-spec, "mounts").
func BindSource(m specs.Mount, bundle string) string {
	if filepath.IsAbs(m.Source) {
		return m.Source
	}
	return filepath.Join(bundle, m.Source)
}

// AbsBindSources rewrites relative bind sources of s to absolute paths, so
// later steps need not know the bundle.
func AbsBindSources(s *specs.Spec, bundle string) {
	for i, m := range s.Mounts {
		if IsBind(m) && m.Source != "" {
			s.Mounts[i].Source = BindSource(m, bundle)
		}
	}
}

// IsBind reports whether a spec mount is a bind mount.
func IsBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

func checkPaths(s *specs.Spec, _ string) error {
	if s.Linux == nil {
		return nil
	}
	for _, p := range s.Linux.MaskedPaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("linux.maskedPaths: %q is not an absolute path", p)
		}
	}
	for _, p := range s.Linux.ReadonlyPaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("linux.readonlyPaths: %q is not an absolute path", p)
		}
	}
	return nil
}

func checkDevices(s *specs.Spec, _ string) error {
	if s.Linux == nil {
		return nil
	}
	for i, d := range s.Linux.Devices {
		field := fmt.Sprintf("linux.devices[%d]", i)
		if !filepath.IsAbs(d.Path) || filepath.Clean(d.Path) == "/" {
			return fmt.Errorf("%s.path: %q is not an absolute file path", field, d.Path)
		}
		if !strings.HasPrefix(filepath.Clean(d.Path), "/dev/") {
			return fmt.Errorf("%s.path: %q is not under /dev", field, d.Path)
		}
		switch d.Type {
		case "c", "u", "b", "p":
		default:
			return fmt.Errorf("%s.type: %q is not one of c, u, b, p", field, d.Type)
		}
	}
	return nil
}

func checkPropagation(s *specs.Spec, _ string) error {
	if s.Linux == nil || s.Linux.RootfsPropagation == "" {
		return nil
	}
	if _, ok := PropagationFlags[s.Linux.RootfsPropagation]; !ok {
		return fmt.Errorf("linux.rootfsPropagation: unknown propagation %q", s.Linux.RootfsPropagation)
	}
	return nil
}

// PropagationFlags maps propagation option names to mount(2) flags.
var PropagationFlags = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// RlimitTypes maps spec rlimit names to resource numbers.
var RlimitTypes = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}
