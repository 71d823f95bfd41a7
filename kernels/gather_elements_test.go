package kernels

import (
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestGatherOffsetsMatchDefinition: the row-by-row offsets of GatherElements
// equal the per-element definition (offsetAlong) for ranks 1-4, every axis,
// negative indices, and indices smaller than the data off the axis.
func TestGatherOffsetsMatchDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, c := range []struct{ xs, is []int }{
		{[]int{7}, []int{5}}, {[]int{4, 6}, []int{3, 9}}, {[]int{3, 4, 5}, []int{2, 4, 3}}, {[]int{2, 3, 4, 5}, []int{2, 2, 4, 5}},
	} {
		for ax := range c.xs {
			is := append([]int(nil), c.is...)
			for d := range is {
				if d != ax {
					is[d] = min(is[d], c.xs[d])
				}
			}
			idx := make([]int, graph.Numel(is))
			for i := range idx {
				idx[i] = r.IntN(2*c.xs[ax]) - c.xs[ax]
			}
			got, err := gatherOffsets(idx, is, c.xs, ax)
			if err != nil {
				t.Fatal(err)
			}
			for e, v := range idx {
				if v < 0 {
					v += c.xs[ax]
				}
				if want := offsetAlong(e, ax, v, stridesOf(is), stridesOf(c.xs)); got[e] != want {
					t.Fatalf("data %v indices %v axis %d: element %d reads %d, want %d", c.xs, is, ax, e, got[e], want)
				}
			}
			idx[0] = c.xs[ax]
			if _, err := gatherOffsets(idx, is, c.xs, ax); err == nil {
				t.Fatalf("data %v axis %d: index %d out of range accepted", c.xs, ax, idx[0])
			}
		}
	}
}
