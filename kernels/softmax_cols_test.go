package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestSoftmaxColumnsMatchRows: Softmax and LogSoftmax over a non-last axis,
// computed row-wise over the columns, match the per-column path with a NaN
// column and a column of -Inf (NaN throughout, as per column), large logits
// and masks: within 2.4e-7 of the result (the per-column path's sums add
// four values at a time in float32 first, within 1.2e-7; here they add in
// float64), plus 2 ulps, and LogSoftmax's outputs near 0 within 2.4e-7 of 1
// (the log of such a sum).
func TestSoftmaxColumnsMatchRows(t *testing.T) {
	defer func() { noSoftmaxCols = false }()
	r := rand.New(rand.NewPCG(21, 22))
	// 2x16x1100 and 1x3x513: several column blocks (softmaxColBlock), a partial last one.
	for _, shape := range [][]int{{1, 16, 4, 37}, {2, 5, 9}, {1, 80, 300}, {2, 16, 1100}, {1, 3, 513}} {
		xs := make([]float32, graph.Numel(shape))
		for i := range xs {
			xs[i] = float32(r.NormFloat64() * 8)
			if r.IntN(10) == 0 {
				xs[i] = -1e4
			}
		}
		inner := graph.Numel(shape[2:])
		xs[3] = float32(math.NaN())
		for j := 0; j < shape[1]; j++ {
			xs[j*inner+5] = float32(math.Inf(-1))
		}
		x := graph.Float32Tensor(shape, xs)
		for _, op := range []string{"Softmax", "LogSoftmax"} {
			attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1)}
			noSoftmaxCols = true
			want := runOp(t, op, attrs, x)[0].Float32s()
			noSoftmaxCols = false
			got := runOp(t, op, attrs, x)[0].Float32s()
			for i := range want {
				w, g := want[i], got[i]
				if w != w || g != g {
					if (w != w) != (g != g) {
						t.Fatalf("%s %v: out[%d] = %v, per column %v", op, shape, i, g, w)
					}
					continue
				}
				scale := math.Abs(float64(w)) // Softmax: relative
				if op == "LogSoftmax" {
					scale = math.Max(scale, 1)
				}
				if d := math.Abs(float64(w - g)); d > 2*ulp32(w)+2.4e-7*scale {
					t.Fatalf("%s %v: out[%d] = %v, per column %v", op, shape, i, g, w)
				}
			}
		}
	}
}

// ulp32 is the spacing of float32 values at v.
func ulp32(v float32) float64 {
	a := math.Abs(float64(v))
	return float64(math.Nextafter32(float32(a), float32(math.Inf(1)))) - a
}

// TestSoftmaxRowsMatchRowByRow: Softmax and LogSoftmax over the last axis
// take blocks of rows (softmaxRows) and must give softmaxRow's bits for
// every row, whatever the row count (blocks of 16 and a partial one),
// with rows of -Inf, NaN and huge values among them.
func TestSoftmaxRowsMatchRowByRow(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, tc := range []struct{ rows, dim int }{{1, 7}, {15, 33}, {16, 512}, {37, 100}, {50, 1}} {
		x := make([]float32, tc.rows*tc.dim)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 20)
		}
		if tc.rows > 3 {
			x[tc.dim] = float32(math.Inf(-1)) // a -Inf in row 1
			x[2*tc.dim] = float32(math.NaN()) // a NaN in row 2
			x[3*tc.dim] = 3e38                // a huge value in row 3
		}
		for _, log := range []bool{false, true} {
			got := make([]float32, len(x))
			softmaxRows(got, x, tc.dim, log)
			want := make([]float32, tc.dim)
			for row := 0; row < tc.rows; row++ {
				softmaxRow(want, x[row*tc.dim:(row+1)*tc.dim], log)
				for j, w := range want {
					if g := got[row*tc.dim+j]; math.Float32bits(g) != math.Float32bits(w) {
						t.Fatalf("log %v %dx%d row %d col %d: %g in blocks, %g row by row", log, tc.rows, tc.dim, row, j, g, w)
					}
				}
			}
		}
	}
}
