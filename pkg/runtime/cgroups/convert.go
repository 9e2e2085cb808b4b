package cgroups

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Conversions from OCI resource values to cgroup file contents. They are pure
// so they can be tested without cgroupfs.

// cpuWeightFromShares maps v1 cpu.shares [2, 262144] linearly onto v2
// cpu.weight [1, 10000], the mapping runc, crun and systemd agree on.
func cpuWeightFromShares(shares uint64) uint64 {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// ioWeightFromBlkio maps a v1 blkio weight [10, 1000] onto v2 io.weight
// [1, 10000].
func ioWeightFromBlkio(weight uint16) uint64 {
	w := min(max(uint64(weight), 10), 1000)
	return 1 + (w-10)*9999/990
}

// set reports whether an optional OCI number is present and non-zero: like
// runc, xstack treats 0 as "not specified" for limits whose zero value would
// be meaningless or harmful (a 0-byte memory limit, a 0 cpu period).
func set[T int64 | uint64 | uint16](p *T) bool { return p != nil && *p != 0 }

// v1Int formats a v1 limit, where -1 means unlimited.
func v1Int(v int64) string {
	if v < 0 {
		return "-1"
	}
	return strconv.FormatInt(v, 10)
}

// v2Int formats a v2 limit, where "max" means unlimited.
func v2Int(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// pidsMax formats pids.max (v1 and v2), where 0 or less means no limit.
func pidsMax(limit int64) string {
	if limit <= 0 {
		return "max"
	}
	return strconv.FormatInt(limit, 10)
}

// asLimit orders limits with -1 (unlimited) above every real value.
func asLimit(v int64) uint64 {
	if v < 0 {
		return Unlimited
	}
	return uint64(v)
}

// checkSwapAboveLimit validates the OCI rule that swap counts memory+swap and
// therefore cannot be below the memory limit.
func checkSwapAboveLimit(limit, swap int64) error {
	if asLimit(swap) < asLimit(limit) {
		return fmt.Errorf("memory.swap %d (memory+swap) is below memory.limit %d", swap, limit)
	}
	return nil
}

// v2SwapMax converts OCI memory+swap into v2 memory.swap.max, which counts
// swap alone.
func v2SwapMax(limit, swap *int64) (string, error) {
	if *swap < 0 {
		return "max", nil
	}
	if !set(limit) || *limit < 0 {
		return "", fmt.Errorf("memory.swap %d needs a memory.limit on cgroup v2, where swap is limited separately", *swap)
	}
	if err := checkSwapAboveLimit(*limit, *swap); err != nil {
		return "", err
	}
	return strconv.FormatInt(*swap-*limit, 10), nil
}

// v2CPUMax formats cpu.max: "quota period", "max period" for no quota, or the
// quota alone when only it changes (the kernel keeps the period).
func v2CPUMax(quota *int64, period *uint64) string {
	q := "max"
	if quota != nil && *quota > 0 {
		q = strconv.FormatInt(*quota, 10)
	}
	if set(period) {
		return q + " " + strconv.FormatUint(*period, 10)
	}
	return q
}

// validPageSize accepts hugepage sizes such as "64KB", "2MB" or "1GB". The
// size becomes part of a file name, so nothing else may pass.
func validPageSize(size string) error {
	digits, ok := strings.CutSuffix(size, "B")
	if n := len(digits); ok && n > 0 && strings.IndexByte("KMGTP", digits[n-1]) >= 0 {
		digits = digits[:n-1]
	}
	ok = ok && digits != "" && digits[0] != '0'
	for i := 0; ok && i < len(digits); i++ {
		ok = digits[i] >= '0' && digits[i] <= '9'
	}
	if !ok {
		return fmt.Errorf("invalid hugepage size %q", size)
	}
	return nil
}

// pageSizeName names a hugepage size given in KiB the way the hugetlb
// controller names its files: 2048 -> "2MB", 1048576 -> "1GB".
func pageSizeName(kib uint64) string {
	units := [...]string{"KB", "MB", "GB", "TB", "PB"}
	i := 0
	for kib >= 1024 && kib%1024 == 0 && i < len(units)-1 {
		kib /= 1024
		i++
	}
	return strconv.FormatUint(kib, 10) + units[i]
}

// v1DeviceRule formats one devices-cgroup rule as "type major:minor access"
// and names the file it goes to.
func v1DeviceRule(d specs.LinuxDeviceCgroup) (file, rule string, err error) {
	file = "devices.deny"
	if d.Allow {
		file = "devices.allow"
	}
	typ := d.Type
	if typ == "" {
		typ = "a"
	}
	if typ != "a" && typ != "b" && typ != "c" {
		return "", "", fmt.Errorf("device rule: invalid type %q", d.Type)
	}
	access := d.Access
	if access == "" {
		access = "rwm"
	}
	if len(access) > 3 || strings.Trim(access, "rwm") != "" {
		return "", "", fmt.Errorf("device rule: invalid access %q", d.Access)
	}
	if typ == "a" {
		// "a" means every device with every access; the kernel ignores
		// anything after it.
		return file, "a", nil
	}
	return file, typ + " " + deviceNumber(d.Major) + ":" + deviceNumber(d.Minor) + " " + access, nil
}

func deviceNumber(n *int64) string {
	if n == nil || *n < 0 {
		return "*"
	}
	return strconv.FormatInt(*n, 10)
}

func blockDevice(d specs.LinuxBlockIODevice) string {
	return strconv.FormatInt(d.Major, 10) + ":" + strconv.FormatInt(d.Minor, 10)
}

// rdmaMax formats one rdma.max line (the same on v1 and v2).
func rdmaMax(device string, l specs.LinuxRdma) (string, bool, error) {
	if err := checkToken("rdma device", device); err != nil {
		return "", false, err
	}
	line := device
	if l.HcaHandles != nil {
		line += " hca_handle=" + strconv.FormatUint(uint64(*l.HcaHandles), 10)
	}
	if l.HcaObjects != nil {
		line += " hca_object=" + strconv.FormatUint(uint64(*l.HcaObjects), 10)
	}
	return line, line != device, nil
}

// checkToken rejects names that would change the meaning of a line written
// to a cgroup file (a space or newline starts a new field or request).
func checkToken(what, s string) error {
	if s == "" || strings.ContainsAny(s, " \t\n\x00") {
		return fmt.Errorf("invalid %s %q", what, s)
	}
	return nil
}

// checkFileName rejects cgroup file names taken from the spec (unified keys)
// that could point outside the container's directory.
func checkFileName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid cgroup file name %q", name)
	}
	return nil
}
