package rootfs

import (
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	rspec "github.com/xstack/xstack/pkg/runtime/spec"
)

// mountOptions is a spec mount's option list split into what each kernel
// interface needs.
type mountOptions struct {
	flags       uintptr // mount(2) flags to set (fs mounts)
	data        []string
	propagation []uintptr // MS_PRIVATE|MS_REC and friends, in order
	bind        bool
	recursive   bool // rbind
	// For bind mounts, applied with mount_setattr: attrSet/attrClr on the
	// top mount only (mount(2) remount semantics), rAttrSet/rAttrClr on the
	// whole tree ("rro", "rnosuid", ...).
	attrSet, attrClr   uint64
	rAttrSet, rAttrClr uint64
	// atime is true when an atime option was given; the last one wins.
	atime, rAtime bool
	// copyUp ("tmpcopyup", runc's and crun's extension) fills a new tmpfs
	// with what was at its mount point.
	copyUp bool
}

type flagOption struct {
	clear bool
	flag  uintptr
}

var flagOptions = map[string]flagOption{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"iversion":      {false, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"loud":          {true, unix.MS_SILENT},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"noiversion":    {true, unix.MS_I_VERSION},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

// propagationOptions are the spec's propagation words; one table for the
// config check and the mounts.
var propagationOptions = rspec.PropagationFlags

// attrOption is a mount_setattr attribute; atime values live in a 3-bit
// field rather than being independent bits.
type attrOption struct {
	clear bool
	attr  uint64
	atime bool
}

var attrOptions = map[string]attrOption{
	"ro":          {false, unix.MOUNT_ATTR_RDONLY, false},
	"rw":          {true, unix.MOUNT_ATTR_RDONLY, false},
	"nosuid":      {false, unix.MOUNT_ATTR_NOSUID, false},
	"suid":        {true, unix.MOUNT_ATTR_NOSUID, false},
	"nodev":       {false, unix.MOUNT_ATTR_NODEV, false},
	"dev":         {true, unix.MOUNT_ATTR_NODEV, false},
	"noexec":      {false, unix.MOUNT_ATTR_NOEXEC, false},
	"exec":        {true, unix.MOUNT_ATTR_NOEXEC, false},
	"nodiratime":  {false, unix.MOUNT_ATTR_NODIRATIME, false},
	"diratime":    {true, unix.MOUNT_ATTR_NODIRATIME, false},
	"nosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW, false},
	"symfollow":   {true, unix.MOUNT_ATTR_NOSYMFOLLOW, false},
	"noatime":     {false, unix.MOUNT_ATTR_NOATIME, true},
	"relatime":    {false, unix.MOUNT_ATTR_RELATIME, true},
	"strictatime": {false, unix.MOUNT_ATTR_STRICTATIME, true},
	"atime":       {false, unix.MOUNT_ATTR_RELATIME, true},
	"norelatime":  {false, unix.MOUNT_ATTR_STRICTATIME, true},
}

// parseOptions splits spec mount options. Unknown words go to the
// filesystem as data ("mode=755", "size=64m", "newinstance").
func parseOptions(opts []string) mountOptions {
	var o mountOptions
	for _, opt := range opts {
		if p, ok := propagationOptions[opt]; ok {
			o.propagation = append(o.propagation, p)
			continue
		}
		switch opt {
		case "bind":
			o.bind = true
			continue
		case "rbind":
			o.bind, o.recursive = true, true
			continue
		case "idmap", "ridmap":
			// Handled through the mount's uidMappings/gidMappings.
			continue
		case "tmpcopyup":
			o.copyUp = true
			continue
		}
		if a, ok := attrOptions[opt]; ok {
			o.setAttr(a, false)
		} else if len(opt) > 1 && opt[0] == 'r' {
			if a, ok := attrOptions[opt[1:]]; ok {
				o.setAttr(a, true)
				continue
			}
		}
		if f, ok := flagOptions[opt]; ok {
			if f.clear {
				o.flags &^= f.flag
			} else {
				o.flags |= f.flag
			}
			continue
		}
		if _, ok := attrOptions[opt]; ok {
			continue
		}
		if len(opt) > 1 && opt[0] == 'r' {
			if _, ok := attrOptions[opt[1:]]; ok {
				continue
			}
		}
		o.data = append(o.data, opt)
	}
	return o
}

func (o *mountOptions) setAttr(a attrOption, recursive bool) {
	set, clr := &o.attrSet, &o.attrClr
	atime := &o.atime
	if recursive {
		set, clr, atime = &o.rAttrSet, &o.rAttrClr, &o.rAtime
	}
	if a.atime {
		// The atime field is replaced as a whole.
		*set &^= unix.MOUNT_ATTR__ATIME
		*set |= a.attr
		*clr |= unix.MOUNT_ATTR__ATIME
		*atime = true
		return
	}
	if a.clear {
		*set &^= a.attr
		*clr |= a.attr
	} else {
		*set |= a.attr
		*clr &^= a.attr
	}
}

// dataString joins the filesystem-specific options for mount(2).
func (o *mountOptions) dataString() string {
	return strings.Join(o.data, ",")
}

// KnownMountOptions lists every option word this package interprets
// itself (everything else is passed to the filesystem as data).
func KnownMountOptions() []string {
	seen := map[string]bool{"bind": true, "rbind": true, "idmap": true, "ridmap": true, "tmpcopyup": true}
	for k := range flagOptions {
		seen[k] = true
	}
	for k := range propagationOptions {
		seen[k] = true
	}
	for k := range attrOptions {
		seen[k] = true
		seen["r"+k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
