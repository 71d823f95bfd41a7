package kernels

import (
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestGemmCStrides: C broadcasts to [m, n] from the right, a dimension of 1
// or the output's, at most rank 2; the strides find row i's values.
func TestGemmCStrides(t *testing.T) {
	for _, c := range []struct {
		shape []int
		st    [2]int
		ok    bool
	}{
		{nil, [2]int{0, 0}, true},
		{[]int{1}, [2]int{0, 0}, true},
		{[]int{5}, [2]int{0, 1}, true},
		{[]int{1, 5}, [2]int{0, 1}, true},
		{[]int{3, 1}, [2]int{1, 0}, true},
		{[]int{3, 5}, [2]int{5, 1}, true},
		{[]int{3}, [2]int{}, false},
		{[]int{2, 5}, [2]int{}, false},
		{[]int{3, 4}, [2]int{}, false},
		{[]int{1, 3, 5}, [2]int{}, false},
	} {
		st, ok := gemmCStrides(c.shape, 3, 5)
		if ok != c.ok || (ok && st != c.st) {
			t.Errorf("C %v on [3 5]: %v %v, want %v %v", c.shape, st, ok, c.st, c.ok)
		}
	}
	// A C that does not broadcast is the node's error, not a panic; one
	// that does is added to every row.
	a, b := graph.NewTensor(graph.Float, []int{3, 4}), graph.NewTensor(graph.Float, []int{4, 5})
	_, err := runOpThreads(1, "Gemm", nil, a, b, graph.NewTensor(graph.Float, []int{2, 5}))
	if err == nil || !strings.Contains(err.Error(), "Gemm C of shape [2 5] does not broadcast to [3 5]") {
		t.Errorf("C [2 5]: %v", err)
	}
	c := graph.Float32Tensor([]int{3, 1}, []float32{1, 2, 3})
	out := runOp(t, "Gemm", nil, a, b, c)[0].Float32s()
	for i, v := range out {
		if v != float32(i/5+1) {
			t.Fatalf("C [3 1]: out %v", out)
		}
	}
}
