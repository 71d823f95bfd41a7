package kernels

import (
	"math"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

func TestPoisonBuffersFillEmptyNotNew(t *testing.T) {
	poisonBuffers = true
	defer func() { poisonBuffers = false }()
	ctx := &Context{Threads: 1, pool: newBufferPool()}
	for _, v := range ctx.Empty(graph.Float, []int{37}).Float32s() {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("Empty float32 holds %v, want the NaN poison", v)
		}
	}
	for _, v := range ctx.Empty(graph.Int64, []int{5}).Int64s() {
		if v != -1 {
			t.Fatalf("Empty int64 holds %v, want the -1 poison", v)
		}
	}
	for _, v := range ctx.New(graph.Float, []int{37}).Float32s() {
		if v != 0 {
			t.Fatalf("New float32 holds %v, want 0", v)
		}
	}
}

// TestMovementWritesEveryElement runs the data-movement ops that take
// their outputs Empty (Pad: constant padding of float32) (undefined contents) on zeros from a poisoned pool:
// an element they leave unwritten would be NaN.
func TestMovementWritesEveryElement(t *testing.T) {
	poisonBuffers = true
	defer func() { poisonBuffers = false }()
	zeros := graph.Float32Tensor([]int{2, 6, 5, 7}, make([]float32, 2*6*5*7))
	i64 := func(shape []int, v ...int64) *graph.Tensor { return tensorOf(t, graph.Int64, shape, v) }
	idx := make([]int64, 2*3*5*7)
	for i := range idx {
		idx[i] = int64(i % 6)
	}
	cases := []struct {
		op string
		in []*graph.Tensor
	}{
		{"Slice", []*graph.Tensor{zeros, i64([]int{2}, 1, 0), i64([]int{2}, 5, 7), i64([]int{2}, 1, 3), i64([]int{2}, 2, 3)}},
		{"Gather", []*graph.Tensor{zeros, i64([]int{3}, 5, 0, 2)}},
		{"GatherElements", []*graph.Tensor{zeros, i64([]int{2, 3, 5, 7}, idx...)}},
		{"ConstantOfShape", []*graph.Tensor{i64([]int{3}, 3, 4, 5)}},
		{"Pad", []*graph.Tensor{zeros, i64([]int{8}, 0, 1, 2, 0, 1, 2, 1, 3)}},
	}
	for _, c := range cases {
		var attrs []*onnxpb.AttributeProto
		if c.op == "Gather" || c.op == "GatherElements" {
			attrs = append(attrs, graph.AttrIntOf("axis", 1))
		}
		out, err := runOpThreads(2, c.op, attrs, c.in...)
		if err != nil {
			t.Fatalf("%s: %v", c.op, err)
		}
		allZero(t, c.op, out[0])
	}
	// Split, two outputs.
	m := graph.NewModel(graph.Opset{Domain: "", Version: 21})
	g := m.Graph
	x, sizes := g.AddInput("x", graph.Float, nil), g.AddInput("s", graph.Int64, nil)
	n := g.AddNode("Split", "split", []*graph.Value{x, sizes}, []string{"y0", "y1"}, graph.AttrIntOf("axis", 1))
	for _, o := range n.Outputs {
		g.AddOutput(o)
	}
	s, err := NewSession(m, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(map[string]*graph.Tensor{"x": zeros, "s": i64([]int{2}, 2, 4)})
	if err != nil {
		t.Fatal(err)
	}
	allZero(t, "Split y0", out["y0"])
	allZero(t, "Split y1", out["y1"])
}

func allZero(t *testing.T, what string, x *graph.Tensor) {
	t.Helper()
	for i, v := range x.Float32s() {
		if v != 0 {
			t.Fatalf("%s: element %d is %v, want 0 (unwritten?)", what, i, v)
		}
	}
}
