package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestArgAndCumSumFloat32Paths: float32 ArgMax/ArgMin (row-wise) and
// CumSum (a float64 running row) give what the general float64 loops give
// on the same values as doubles: the same indices (ties, last index, NaN),
// and the float32 rounding of the double sums, on every axis.
func TestArgAndCumSumFloat32Paths(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	shape := []int{3, 5, 7}
	xs := make([]float32, graph.Numel(shape))
	xd := make([]float64, len(xs))
	for i := range xs {
		xs[i] = float32(r.IntN(9)) - 4 + float32(r.IntN(4))*0.25
		if r.IntN(30) == 0 {
			xs[i] = float32(math.NaN())
		}
		xd[i] = float64(xs[i])
	}
	x32 := graph.Float32Tensor(shape, xs)
	x64, err := graph.TensorOf(graph.Double, shape, xd)
	if err != nil {
		t.Fatal(err)
	}
	for axis := 0; axis < 3; axis++ {
		for _, op := range []string{"ArgMax", "ArgMin"} {
			for _, last := range []int64{0, 1} {
				attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("axis", int64(axis)), graph.AttrIntOf("select_last_index", last)}
				got := runOp(t, op, attrs, x32)[0].Int64s()
				want := runOp(t, op, attrs, x64)[0].Int64s()
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s axis %d last %d: [%d] = %d, float64 path %d", op, axis, last, i, got[i], want[i])
					}
				}
			}
		}
		ax := graph.Int64Tensor([]int{}, []int64{int64(axis)})
		for _, ex := range []int64{0, 1} {
			for _, rev := range []int64{0, 1} {
				attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("exclusive", ex), graph.AttrIntOf("reverse", rev)}
				got := runOp(t, "CumSum", attrs, x32, ax)[0].Float32s()
				want := runOp(t, "CumSum", attrs, x64, ax)[0].Data().([]float64)
				for i := range want {
					w := float32(want[i])
					if math.Float32bits(got[i]) != math.Float32bits(w) && !(w != w && got[i] != got[i]) {
						t.Fatalf("CumSum axis %d exclusive %d reverse %d: [%d] = %v, float64 path %v", axis, ex, rev, i, got[i], w)
					}
				}
			}
		}
	}
}

// TestArgRowsBlocks: ArgMax/ArgMin along a middle axis whose rows are
// longer than one block (2100 columns: three blocks, the last ragged), on 1
// and 2 threads, against a scan of each column, ties and NaNs included.
func TestArgRowsBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	outer, dim, inner := 2, 6, 2100
	x := make([]float32, outer*dim*inner)
	for i := range x {
		x[i] = float32(r.IntN(5)) - 2
		if r.IntN(40) == 0 {
			x[i] = float32(math.NaN())
		}
	}
	for _, threads := range []int{1, 2} {
		ctx := &Context{Threads: threads}
		for _, isMax := range []bool{true, false} {
			for _, last := range []bool{false, true} {
				got := make([]int64, outer*inner)
				argRows(ctx, x, got, outer, dim, inner, isMax, last)
				for o := 0; o < outer; o++ {
					for i := 0; i < inner; i++ {
						b, bi := x[o*dim*inner+i], 0
						for j := 1; j < dim; j++ {
							v := x[(o*dim+j)*inner+i]
							if (isMax && v > b) || (!isMax && v < b) || (last && v == b) {
								b, bi = v, j
							}
						}
						if g := got[o*inner+i]; g != int64(bi) {
							t.Fatalf("threads %d max %v last %v: [%d][%d] = %d, want %d", threads, isMax, last, o, i, g, bi)
						}
					}
				}
			}
		}
	}
}

// TestArgOfRowMatchesScan: the last axis's two-pass ArgMax/ArgMin against
// the scan it replaces, on rows long enough for the SIMD passes (and their
// ragged ends), with ties, -0 and +0, infinities and NaNs (also first).
func TestArgOfRowMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 0}
	for trial := 0; trial < 400; trial++ {
		n := 1 + r.IntN(300)
		row := make([]float32, n)
		for i := range row {
			row[i] = float32(r.IntN(7)) - 3
			if r.IntN(10) == 0 {
				row[i] = special[r.IntN(len(special))]
			}
		}
		if trial%17 == 0 {
			row[0] = float32(math.NaN())
		}
		for _, isMax := range []bool{true, false} {
			for _, last := range []bool{false, true} {
				b, bi := row[0], 0
				for j, v := range row {
					if (isMax && v > b) || (!isMax && v < b) || (last && v == b) {
						b, bi = v, j
					}
				}
				if got := argOfRow(row, isMax, last); got != bi {
					t.Fatalf("trial %d max %v last %v, row %v: %d, the scan %d", trial, isMax, last, row, got, bi)
				}
			}
		}
	}
}
