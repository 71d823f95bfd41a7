package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestHardmaxMatchesScan holds Hardmax to the scan the specification
// describes (the first of the largest values along the axis, compared with
// v > best, so a NaN neither wins nor is beaten) on ties, NaNs, the last
// and a middle axis, and to its own output at 2 threads.
func TestHardmaxMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		shape []int
		axis  int
	}{{[]int{3, 5, 17}, -1}, {[]int{2, 40, 300}, 1}, {[]int{4, 1, 9}, 1}, {[]int{2, 3, 1000}, 2}, {[]int{1, 6, 5000}, 1}} {
		x := graph.NewTensor(graph.Float, tc.shape)
		xd := x.Float32s()
		for i := range xd {
			xd[i] = float32(r.IntN(7)) // ties
			if r.IntN(20) == 0 {
				xd[i] = float32(math.NaN())
			}
		}
		ax := (tc.axis + len(tc.shape)) % len(tc.shape)
		outer, dim, inner := graph.Numel(tc.shape[:ax]), tc.shape[ax], graph.Numel(tc.shape[ax+1:])
		want := make([]float32, len(xd))
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				best := 0
				for j := 1; j < dim; j++ {
					if xd[(o*dim+j)*inner+i] > xd[(o*dim+best)*inner+i] {
						best = j
					}
				}
				want[(o*dim+best)*inner+i] = 1
			}
		}
		attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("axis", int64(tc.axis))}
		for _, threads := range []int{1, 2} {
			out, err := runOpThreads(threads, "Hardmax", attrs, x)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range out[0].Float32s() {
				if v != want[i] {
					t.Fatalf("%v axis %d, %d threads: y[%d] = %v, want %v", tc.shape, tc.axis, threads, i, v, want[i])
				}
			}
		}
	}
}
