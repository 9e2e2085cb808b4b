package shim_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// helperEnv selects a helper mode of the test binary (helper_test.go):
// the tests re-execute themselves to play a daemon that can be SIGKILLed,
// or a client with other credentials.
const helperEnv = "XSTACK_SHIMTEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runHelper(mode); err != nil {
			fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	testenv.Main(m)
}
