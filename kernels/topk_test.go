package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestTopKMatchesStableSort: TopK (float32 by integer keys, and the general
// selector; heap selection for small k, a full sort otherwise) gives the first k of a stable sort by value, largest and
// smallest, sorted and in index order, on rows with many ties and NaNs,
// along the last axis and a middle one.
func TestTopKMatchesStableSort(t *testing.T) {
	defer func() { noTopKKeys = false }()
	for _, keys := range []bool{true, false} {
		noTopKKeys = !keys
		testTopK(t)
	}
}

func testTopK(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		shape []int
		axis  int
		k     int
	}{{[]int{3, 1000}, 1, 5}, {[]int{2, 300}, 1, 100}, {[]int{2, 50}, 1, 50}, {[]int{4, 37, 3}, 1, 9}, {[]int{1, 10}, 1, 0}, {[]int{25200}, 0, 100}} {
		n := graph.Numel(c.shape)
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(r.IntN(40)) - 20 // many ties
			switch r.IntN(50) {
			case 0:
				xs[i] = float32(math.NaN())
			case 1:
				xs[i] = float32(math.Copysign(0, -1)) // ties with +0
			}
		}
		x := graph.Float32Tensor(c.shape, xs)
		kt := graph.Int64Tensor([]int{1}, []int64{int64(c.k)})
		outer, dim := graph.Numel(c.shape[:c.axis]), c.shape[c.axis]
		inner := graph.Numel(c.shape[c.axis+1:])
		for _, largest := range []int64{1, 0} {
			for _, sorted := range []int64{1, 0} {
				attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("axis", int64(c.axis)), graph.AttrIntOf("largest", largest), graph.AttrIntOf("sorted", sorted)}
				m := graph.NewModel(graph.Opset{Domain: "", Version: 21})
				g := m.Graph
				nd := g.AddNode("TopK", "topk", []*graph.Value{g.AddInput("x", graph.Float, nil), g.AddInput("k", graph.Int64, nil)}, []string{"v", "i"}, attrs...)
				g.AddOutput(nd.Outputs[0])
				g.AddOutput(nd.Outputs[1])
				s, err := NewSession(m, Options{Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				out, err := s.Run(map[string]*graph.Tensor{"x": x, "k": kt})
				if err != nil {
					t.Fatal(err)
				}
				vals, idx := out["v"].Float32s(), out["i"].Int64s()
				for o := 0; o < outer; o++ {
					for i := 0; i < inner; i++ {
						at := func(j int) float32 { return xs[(o*dim+j)*inner+i] }
						order := make([]int, dim)
						for j := range order {
							order[j] = j
						}
						key := func(j int) float64 { // NaN above every value
							if v := float64(at(j)); v == v {
								return v
							}
							return math.MaxFloat64
						}
						slices.SortStableFunc(order, func(a, b int) int {
							ka, kb := key(a), key(b)
							if largest == 0 {
								ka, kb = -ka, -kb
							}
							switch {
							case ka > kb:
								return -1
							case ka < kb:
								return 1
							}
							return 0
						})
						want := order[:c.k]
						if sorted == 0 {
							want = slices.Clone(want)
							slices.Sort(want)
						}
						for rk, j := range want {
							at2 := (o*c.k+rk)*inner + i
							if idx[at2] != int64(j) || math.Float32bits(vals[at2]) != math.Float32bits(at(j)) {
								t.Fatalf("%v axis %d k %d largest %d sorted %d, lane %d/%d: rank %d is index %d (%v), want %d (%v)",
									c.shape, c.axis, c.k, largest, sorted, o, i, rk, idx[at2], vals[at2], j, at(j))
							}
						}
					}
				}
			}
		}
	}
}
