package kernels

import (
	"math"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestCompareBroadcastMatchesDefinition runs the five comparisons on a row
// against a column ([n] against [m,1], and the other way round: the
// scalar-per-run loops) and on equal shapes, in float32 with NaN and ±0 and
// in int64, against the element-wise definition.
func TestCompareBroadcastMatchesDefinition(t *testing.T) {
	fa := []float32{-1, 0, float32(math.Copysign(0, -1)), 2.5, float32(math.NaN()), 7, 3, -4}
	fb := []float32{0, float32(math.NaN()), 2.5, -4, 9}
	ia := []int64{-3, 0, 2, 5, 7, 1, 9, 4}
	ib := []int64{2, 0, 7, -1, 5}
	def := map[string]func(x, y float64) bool{
		"Equal": func(x, y float64) bool { return x == y }, "Less": func(x, y float64) bool { return x < y },
		"Greater": func(x, y float64) bool { return x > y }, "LessOrEqual": func(x, y float64) bool { return x <= y },
		"GreaterOrEqual": func(x, y float64) bool { return x >= y },
	}
	for op, f := range def {
		for _, rowFirst := range []bool{true, false} {
			for _, dt := range []graph.DataType{graph.Float, graph.Int64} {
				var row, col *graph.Tensor
				var rv, cv []float64
				if dt == graph.Float {
					row, col = graph.Float32Tensor([]int{len(fa)}, fa), graph.Float32Tensor([]int{len(fb), 1}, fb)
					for _, v := range fa {
						rv = append(rv, float64(v))
					}
					for _, v := range fb {
						cv = append(cv, float64(v))
					}
				} else {
					row, col = graph.Int64Tensor([]int{len(ia)}, ia), graph.Int64Tensor([]int{len(ib), 1}, ib)
					for _, v := range ia {
						rv = append(rv, float64(v))
					}
					for _, v := range ib {
						cv = append(cv, float64(v))
					}
				}
				x, y := row, col
				if !rowFirst {
					x, y = col, row
				}
				got := runOp(t, op, nil, x, y)[0].Data().([]bool)
				for i := range cv {
					for j := range rv {
						want := f(rv[j], cv[i])
						if !rowFirst {
							want = f(cv[i], rv[j])
						}
						if got[i*len(rv)+j] != want {
							t.Fatalf("%s %s rowFirst=%v: [%d,%d] = %v, want %v", op, dt.Short(), rowFirst, i, j, got[i*len(rv)+j], want)
						}
					}
				}
			}
		}
	}
}
