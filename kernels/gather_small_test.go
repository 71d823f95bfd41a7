package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestGatherSmallRows: Gather of rows of 1 to 7 elements (the element
// loop) and of 8 (the copier) gives the definition's values for float32,
// int64 and int32 data, on every axis, with negative and repeated indices;
// an index out of range is an error.
func TestGatherSmallRows(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	for _, dt := range []graph.DataType{graph.Float, graph.Int64, graph.Int32} {
		for _, shape := range [][]int{{50, 1}, {30, 3}, {6, 10, 7}, {4, 9, 8}, {5, 2, 3, 2}} {
			for axis := range shape {
				n := graph.Numel(shape)
				vals := make([]int64, n)
				for i := range vals {
					vals[i] = r.Int64N(1<<40) - 1<<39
				}
				x := graph.NewTensor(dt, shape)
				StoreInt64s(x, vals)
				dim := shape[axis]
				idx := []int64{int64(dim - 1), 0, -1, int64(-dim), int64(r.IntN(dim)), 0}
				it := graph.Int64Tensor([]int{2, 3}, idx)
				got := runOp(t, "Gather", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", int64(axis))}, x, it)[0]
				outer, inner := graph.Numel(shape[:axis]), graph.Numel(shape[axis+1:])
				want := make([]int64, 0, outer*len(idx)*inner)
				xv := readInt64s(x)
				for o := range outer {
					for _, v := range idx {
						if v < 0 {
							v += int64(dim)
						}
						want = append(want, xv[(o*dim+int(v))*inner:(o*dim+int(v)+1)*inner]...)
					}
				}
				what := fmt.Sprintf("%s %v axis %d", dt.Short(), shape, axis)
				wantShape := slices.Concat(shape[:axis], []int{2, 3}, shape[axis+1:])
				if !slices.Equal(got.Shape, wantShape) || got.DType != dt || !slices.Equal(readInt64s(got), want) {
					t.Fatalf("%s: got %s %v %v, want %v %v", what, got.DType.Short(), got.Shape, readInt64s(got), wantShape, want)
				}
				bad := graph.Int64Tensor([]int{2}, []int64{0, int64(dim)})
				if _, err := runOpThreads(1, "Gather", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", int64(axis))}, x, bad); err == nil || !strings.Contains(err.Error(), "out of range") {
					t.Fatalf("%s: index %d: err %v, want out of range", what, dim, err)
				}
			}
		}
	}
}
