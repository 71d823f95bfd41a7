package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// lrnRef is LRN as the specification writes it, in float64.
func lrnRef(x *graph.Tensor, size int, alpha, beta, bias float64) []float64 {
	n, c := x.Shape[0], x.Shape[1]
	plane := graph.Numel(x.Shape[2:])
	xd := x.Float32s()
	out := make([]float64, len(xd))
	lo, hi := (size-1)/2, (size-1)-(size-1)/2
	for b := 0; b < n; b++ {
		for ch := 0; ch < c; ch++ {
			for p := 0; p < plane; p++ {
				var sq float64
				for k := max(0, ch-lo); k <= min(c-1, ch+hi); k++ {
					v := float64(xd[(b*c+k)*plane+p])
					sq += v * v
				}
				i := (b*c+ch)*plane + p
				out[i] = float64(xd[i]) / math.Pow(bias+alpha/float64(size)*sq, beta)
			}
		}
	}
	return out
}

// TestLRNMatchesReference holds the chunked LRN to the specification's
// formula in float64 on odd and even windows (also wider than the
// channels), ranks 3 to 5, planes shorter and longer than a chunk, two
// images, Caffe's constants and others, and to its own bits at 2 threads.
func TestLRNMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	worst := 0.0
	cases := []struct {
		shape             []int
		size              int
		alpha, beta, bias float32
	}{
		{[]int{1, 64, 56, 56}, 5, 1e-4, 0.75, 1},
		{[]int{2, 7, 9, 33}, 3, 2e-3, 0.5, 2},
		{[]int{1, 3, 300}, 5, 1e-1, 0.75, 1},
		{[]int{1, 16, 2, 3, 45}, 4, 1e-2, 1.3, 0.5},
		{[]int{2, 5, 17, 17}, 1, 1, 0.75, 1},
		{[]int{1, 4, 513}, 9, 0.5, 0.6, 1.5},
		{[]int{1, 1, 1, 1}, 2, 1e-4, 0.75, 1},
	}
	for _, tc := range cases {
		x := graph.NewTensor(graph.Float, tc.shape)
		for i := range x.Float32s() {
			x.Float32s()[i] = float32(r.NormFloat64() * 4)
		}
		want := lrnRef(x, tc.size, float64(tc.alpha), float64(tc.beta), float64(tc.bias))
		attrs := lrnAttrs(tc.size, tc.alpha, tc.beta, tc.bias)
		got := runOp(t, "LRN", attrs, x)[0].Float32s()
		name := fmt.Sprintf("%v size %d", tc.shape, tc.size)
		for i, w := range want {
			e := math.Abs(float64(got[i])-w) / math.Max(math.Abs(w), 1e-30)
			worst = max(worst, e)
			if e > 1e-6 {
				t.Fatalf("%s: y[%d] = %g, want %g (relative error %.2g)", name, i, got[i], w, e)
			}
		}
		two, err := runOpThreads(2, "LRN", attrs, x)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range two[0].Float32s() {
			if math.Float32bits(v) != math.Float32bits(got[i]) {
				t.Fatalf("%s: 2 threads y[%d] = %g, 1 thread %g", name, i, v, got[i])
			}
		}
	}
	t.Logf("largest relative error against float64: %.2g", worst)
}

func lrnAttrs(size int, alpha, beta, bias float32) []*onnxpb.AttributeProto {
	return []*onnxpb.AttributeProto{graph.AttrIntOf("size", int64(size)), graph.AttrFloatOf("alpha", alpha),
		graph.AttrFloatOf("beta", beta), graph.AttrFloatOf("bias", bias)}
}

// TestLRNBadInput: a rank-1 input and a size below 1 are errors.
func TestLRNBadInput(t *testing.T) {
	if _, err := runOpThreads(1, "LRN", lrnAttrs(3, 1e-4, 0.75, 1), graph.NewTensor(graph.Float, []int{5})); err == nil {
		t.Error("rank-1 input: no error")
	}
	if _, err := runOpThreads(1, "LRN", lrnAttrs(0, 1e-4, 0.75, 1), graph.NewTensor(graph.Float, []int{1, 2, 3})); err == nil {
		t.Error("size 0: no error")
	}
}
