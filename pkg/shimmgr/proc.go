package shimmgr

import (
	"os"
	"strconv"
	"strings"
)

// alive reports whether pid exists and is not a zombie (pid 1 on this kind
// of machine may leave exited shims as zombies for a while).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	st := s[i+2]
	return st != 'Z' && st != 'X'
}

// findShim is the pid of a live shim server started with -address address,
// -namespace ns and -id id (both xshim and containerd-shim-runc-v2 keep
// these flags on the server's command line), 0 if there is none.
func findShim(address, ns, id string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil {
			continue
		}
		flags := map[string]string{}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if strings.HasPrefix(args[i], "-") {
				flags[strings.TrimLeft(args[i], "-")] = args[i+1]
			}
		}
		if flags["address"] == address && flags["namespace"] == ns && flags["id"] == id && alive(pid) {
			return pid
		}
	}
	return 0
}
