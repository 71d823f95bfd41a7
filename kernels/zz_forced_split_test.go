package kernels

import (
	"os"
	"strconv"
	"testing"

	"github.com/onnxq/onnxq/kernels/parallel"
)

// TestForcedSplitLasts is the package's last test (go test runs the files in
// name order): with ONNXQ_FORCE_SPLIT set, every test before it must have
// left the variable's split in force. Until session 37 a test that forced a
// split for a while and undid it with ForceSplit(0) turned it off for every
// test after it, and the Makefile's forced pass covered a fraction of what
// it said.
func TestForcedSplitLasts(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("ONNXQ_FORCE_SPLIT"))
	if err != nil || n < 1 {
		t.Skip("ONNXQ_FORCE_SPLIT is not set")
	}
	if got := parallel.ForcedSplit(); got != n {
		t.Errorf("after the package's tests the split forced is %d, ONNXQ_FORCE_SPLIT=%d", got, n)
	}
}
