package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestReduceLogSumExpRows holds ReduceLogSumExp over the last axis to
// log(sum(exp(x))) in float64, shifted by the row's maximum so that scores
// past 709 stay finite, and to NaN and infinities as the sum gives them: a
// NaN or +Inf anywhere in a row, and a row of -Inf, -Inf. Rows of 1 to
// 1000 values, 1 and 2 threads.
func TestReduceLogSumExpRows(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, dim := range []int{1, 3, 17, 64, 1000} {
		const rows = 40
		x := graph.NewTensor(graph.Float, []int{rows, dim})
		xd := x.Float32s()
		for i := range xd {
			xd[i] = float32(r.NormFloat64() * 5)
		}
		for i := 0; i < dim; i++ {
			xd[1*dim+i] += 800 // finite, where exp alone overflows
			xd[2*dim+i] = float32(math.Inf(-1))
			xd[3*dim+i] -= 200
		}
		xd[4*dim+dim/2] = float32(math.NaN())
		xd[5*dim+dim-1] = float32(math.Inf(1))
		xd[6*dim] = float32(math.Inf(-1))
		want := make([]float64, rows)
		for o := range want {
			row := xd[o*dim : (o+1)*dim]
			m := math.Inf(-1)
			for _, v := range row {
				m = math.Max(m, float64(v))
			}
			if math.IsInf(m, 0) || math.IsNaN(m) {
				s := 0.0
				for _, v := range row {
					s += math.Exp(float64(v))
				}
				want[o] = math.Log(s)
				continue
			}
			s := 0.0
			for _, v := range row {
				s += math.Exp(float64(v) - m)
			}
			want[o] = m + math.Log(s)
		}
		attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("keepdims", 0)}
		axes := graph.Int64Tensor([]int{1}, []int64{1})
		for _, threads := range []int{1, 2} {
			out, err := runOpThreads(threads, "ReduceLogSumExp", attrs, x, axes)
			if err != nil {
				t.Fatal(err)
			}
			for o, v := range out[0].Float32s() {
				w := want[o]
				same := float64(v) == w || (math.IsNaN(float64(v)) && math.IsNaN(w))
				if !same && math.Abs(float64(v)-w) > 1e-6*math.Max(1, math.Abs(w)) {
					t.Fatalf("rows of %d, %d threads: row %d = %v, want %v", dim, threads, o, v, w)
				}
			}
		}
	}
}
