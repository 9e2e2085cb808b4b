package main

import (
	"encoding/json"
	"os"
	"sort"

	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/xstack/xstack/pkg/cli"
	"github.com/xstack/xstack/pkg/runtime/caps"
	"github.com/xstack/xstack/pkg/runtime/hooks"
	"github.com/xstack/xstack/pkg/runtime/procattr"
	"github.com/xstack/xstack/pkg/runtime/rootfs"
	"github.com/xstack/xstack/pkg/runtime/seccomp"
	rspec "github.com/xstack/xstack/pkg/runtime/spec"
	"github.com/xstack/xstack/pkg/version"
)

var featuresCommand = &cli.Command{
	Name:  "features",
	Usage: "show the enabled features",
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(0, 0); err != nil {
			return err
		}
		yes, no := true, false
		actions, operators, archs, flags := seccomp.Features()
		var namespaces []string
		for t := range rspec.NamespaceTypes {
			namespaces = append(namespaces, string(t))
		}
		sort.Strings(namespaces)
		f := features.Features{
			OCIVersionMin: "1.0.0",
			OCIVersionMax: version.OCISpec,
			Hooks:         hooks.All,
			MountOptions:  rootfs.KnownMountOptions(),
			Linux: &features.Linux{
				Namespaces:   namespaces,
				Capabilities: caps.Names(),
				Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no},
				Seccomp: &features.Seccomp{
					Enabled: &yes, Actions: actions, Operators: operators, Archs: archs, KnownFlags: flags,
					SupportedFlags: flags,
				},
				Apparmor: &features.Apparmor{Enabled: &no},
				Selinux:  &features.Selinux{Enabled: &no},
				IntelRdt: &features.IntelRdt{Enabled: &no},
				MountExtensions: &features.MountExtensions{
					IDMap: &features.IDMap{Enabled: &yes},
				},
				MemoryPolicy: &features.MemoryPolicy{Modes: procattr.MemoryPolicyModes(), Flags: procattr.MemoryPolicyFlags()},
				NetDevices:   &features.NetDevices{Enabled: &yes},
			},
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "    ")
		return enc.Encode(f)
	},
}
