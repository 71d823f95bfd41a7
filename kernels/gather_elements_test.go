package kernels

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels/parallel"
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
			for _, bad := range []int{c.xs[ax], -c.xs[ax] - 1} {
				idx[0] = bad
				_, err := gatherOffsets(idx, is, c.xs, ax)
				if err == nil {
					t.Fatalf("data %v axis %d: index %d out of range accepted", c.xs, ax, bad)
				}
				if want := fmt.Sprintf("index %d is out of range", bad); !strings.Contains(err.Error(), want) {
					t.Fatalf("data %v axis %d: error %q does not name the index (%q)", c.xs, ax, err, want)
				}
			}
		}
	}
}

// TestGatherElementsKernel: the op row by row (split over workers too),
// float32, int64 and uint8 data, int64 and int32 indices, against the
// definition; an index out of range is an error.
func TestGatherElementsKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	defer parallel.ForceSplit(0)
	for trial := 0; trial < 60; trial++ {
		parallel.ForceSplit([]int{0, 3}[trial%2])
		rank := 1 + r.IntN(4)
		xs, is := make([]int, rank), make([]int, rank)
		for d := range xs {
			xs[d] = 1 + r.IntN(6)
			is[d] = 1 + r.IntN(xs[d])
		}
		ax := r.IntN(rank)
		is[ax] = 1 + r.IntN(7)
		n := graph.Numel(is)
		i64, i32 := make([]int64, n), make([]int32, n)
		for i := range i64 {
			v := r.IntN(2*xs[ax]) - xs[ax]
			i64[i], i32[i] = int64(v), int32(v)
		}
		xf := make([]float32, graph.Numel(xs))
		xi, xb := make([]int64, len(xf)), make([]uint8, len(xf))
		for i := range xf {
			xf[i], xi[i], xb[i] = float32(i)+0.25, int64(i)*7, uint8(i)
		}
		attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("axis", int64(ax))}
		xu, err := graph.TensorOf(graph.Uint8, xs, xb)
		if err != nil {
			t.Fatal(err)
		}
		idx32, err := graph.TensorOf(graph.Int32, is, i32)
		if err != nil {
			t.Fatal(err)
		}
		run := func(x, idx *graph.Tensor) *graph.Tensor {
			out, err := runOpThreads(2, "GatherElements", attrs, x, idx)
			if err != nil {
				t.Fatal(err)
			}
			return out[0]
		}
		gf := run(graph.Float32Tensor(xs, xf), graph.Int64Tensor(is, i64)).Float32s()
		gi := run(graph.Int64Tensor(xs, xi), idx32).Int64s()
		gb := run(xu, graph.Int64Tensor(is, i64)).Data().([]uint8)
		ist, xst := stridesOf(is), stridesOf(xs)
		for e := range gf {
			v := int(i64[e])
			if v < 0 {
				v += xs[ax]
			}
			at := offsetAlong(e, ax, v, ist, xst)
			if gf[e] != xf[at] || gi[e] != xi[at] || gb[e] != xb[at] {
				t.Fatalf("data %v indices %v axis %d: [%d] = %v %v %v, want %v %v %v", xs, is, ax, e, gf[e], gi[e], gb[e], xf[at], xi[at], xb[at])
			}
		}
		i64[r.IntN(n)] = int64(xs[ax])
		if _, err := runOpThreads(2, "GatherElements", attrs, graph.Float32Tensor(xs, xf), graph.Int64Tensor(is, i64)); err == nil {
			t.Fatalf("data %v axis %d: index %d out of range accepted", xs, ax, xs[ax])
		}
	}
}
