package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestFastReductionsMatchGeneral: the float32 reductions over one run of
// axes (last axis, NCHW's spatial axes, its channels, leading axes, with
// size-1 axes between, keepdims 0 and 1) give the general walk's results:
// Max and Min bit for bit (NaN propagating, +0 above -0), the float64 sums
// to within an ulp of the float32 result (their lanes add in another order),
// ±Inf among the values.
// Axes that are not one run (0 and 2 of a 3-D tensor) keep the general walk.
func TestFastReductionsMatchGeneral(t *testing.T) {
	defer func() { noFastReduce = false }()
	r := rand.New(rand.NewPCG(9, 10))
	cases := []struct {
		shape []int
		axes  []int64
	}{
		{[]int{2, 7, 37}, []int64{-1}}, {[]int{1, 16, 9, 11}, []int64{2, 3}}, {[]int{2, 16, 9, 11}, []int64{1}},
		{[]int{5, 3, 40}, []int64{0}}, {[]int{5, 3, 40}, []int64{0, 1}}, {[]int{4, 1, 6, 1, 3}, []int64{0, 2}},
		{[]int{3, 4, 5}, []int64{0, 2}}, {[]int{3, 0, 5}, []int64{1}}, {[]int{6, 1025}, []int64{1}}, {[]int{2, 5, 4100}, []int64{1}},
	}
	for _, op := range []string{"ReduceSum", "ReduceMean", "ReduceSumSquare", "ReduceL2", "ReduceMax", "ReduceMin"} {
		for _, c := range cases {
			for _, keep := range []int64{0, 1} {
				n := graph.Numel(c.shape)
				xs := make([]float32, n)
				for i := range xs {
					xs[i] = float32(r.NormFloat64())
					switch r.IntN(40) {
					case 0:
						xs[i] = 0
					case 1:
						xs[i] = float32(math.Copysign(0, -1))
					case 2:
						if r.IntN(4) == 0 { // +Inf wins over a NaN in math.Max
							xs[i] = float32(math.Inf(1 - 2*r.IntN(2)))
						}
					}
				}
				if n > 20 && op != "ReduceSumSquare" {
					xs[n/3] = float32(math.NaN())
				}
				x := graph.Float32Tensor(c.shape, xs)
				axes := graph.Int64Tensor([]int{len(c.axes)}, c.axes)
				attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("keepdims", keep)}
				run := func(general bool) *graph.Tensor {
					noFastReduce = general
					return runOp(t, op, attrs, x, axes)[0]
				}
				want, got := run(true), run(false)
				what := fmt.Sprintf("%s %v axes %v keepdims %d", op, c.shape, c.axes, keep)
				if fmt.Sprint(want.Shape) != fmt.Sprint(got.Shape) {
					t.Fatalf("%s: shape %v, general %v", what, got.Shape, want.Shape)
				}
				w, g := want.Float32s(), got.Float32s()
				exact := op == "ReduceMax" || op == "ReduceMin"
				for i := range w {
					same := math.Float32bits(w[i]) == math.Float32bits(g[i]) || (w[i] != w[i] && g[i] != g[i])
					if !same && (exact || math.Abs(float64(w[i]-g[i])) > 1.2e-7*math.Abs(float64(w[i]))) {
						t.Fatalf("%s: out[%d] = %v, general walk %v", what, i, g[i], w[i])
					}
				}
			}
		}
	}
}
