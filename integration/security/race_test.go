package security_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// raceRuns bounds the symlink-exchange harness: enough runs for the swap to
// hit the runtime's path handling many times, few enough for CI.
const raceRuns = 30

// TestSymlinkExchangeRace (CVE-2021-30465, CVE-2024-45310): a shared volume
// in the rootfs holds a directory and a symlink pointing out of the rootfs,
// and a racer (here a host goroutine standing for another container)
// swaps them with RENAME_EXCHANGE while the runtime creates and mounts
// nested destinations below the directory. Whatever the runtime sees, it
// must create and mount only inside the rootfs: no entry may appear in the
// host dir the symlink points at.
func TestSymlinkExchangeRace(t *testing.T) {
	checkCVE(t, "CVE-2021-30465 CVE-2024-45310 exchange race", refRace, func(t *testing.T, rt *testenv.Runtime) []string {
		host := testenv.TempDir(t, 0o755)
		b := testenv.NewBundle(t, testenv.WithRootfs(func(root string) {
			mustDo(t, os.MkdirAll(filepath.Join(root, "vol/dir"), 0o755))
			mustDo(t, os.Symlink("../../../../../../../.."+host, filepath.Join(root, "vol/link")))
		}), testenv.WithArgs("/xtest", "exit", "0"))
		dir, link := filepath.Join(b.Rootfs, "vol/dir"), filepath.Join(b.Rootfs, "vol/link")

		var stop atomic.Bool
		var wg sync.WaitGroup
		swaps := 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := unix.Renameat2(unix.AT_FDCWD, dir, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE); err == nil {
					swaps++
				}
			}
		}()
		refused := 0
		base := append([]specs.Mount(nil), b.Spec.Mounts...)
		for i := 0; i < raceRuns; i++ {
			b.ID = fmt.Sprintf("race-%s-%d", testenv.RandHex(3), i)
			b.Spec.Mounts = append(append([]specs.Mount(nil), base...),
				specs.Mount{Destination: fmt.Sprintf("/vol/dir/n%d/x", i), Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
				specs.Mount{Destination: fmt.Sprintf("/vol/dir/n%d/x/y", i), Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
			)
			if r := rt.RunBundle(t, b); r.Code != 0 {
				refused++
			}
		}
		stop.Store(true)
		wg.Wait()
		t.Logf("%d runs (%d refused) against %d swaps", raceRuns, refused, swaps)
		if swaps == 0 {
			t.Fatal("the racer never swapped the directory and the symlink")
		}
		return hostEntries(host)
	})
}
