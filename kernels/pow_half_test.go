package kernels

import (
	"math"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestPowHalfIsPow: Pow(x, 0.5) through the square root gives math.Pow's
// float32 results, -0, -Inf, negatives and NaN included (subnormals are
// flushed in a session by default, so none here).
func TestPowHalfIsPow(t *testing.T) {
	xs := []float32{0, float32(math.Copysign(0, -1)), 1, 2, 0.25, 1e-30, 3e38, -1, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	for range 40 {
		xs = append(xs, float32(len(xs))*0.37)
	}
	got := runOp(t, "Pow", nil, graph.Float32Tensor([]int{len(xs)}, xs), graph.Float32Tensor([]int{}, []float32{0.5}))[0].Float32s()
	for i, v := range xs {
		want := float32(math.Pow(float64(v), 0.5))
		if math.Float32bits(got[i]) != math.Float32bits(want) && !(got[i] != got[i] && want != want) {
			t.Fatalf("Pow(%v, 0.5) = %v, want %v", v, got[i], want)
		}
	}
}
