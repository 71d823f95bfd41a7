package kernels

import (
	"math"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestShapePlansFollowShapes: kernels that keep what they laid out for the
// last input shape (Pad's index maps, Resize's taps) lay it out again when
// the shape changes between runs of one session: each run, through shapes
// A, B, A, gives the bits of a fresh session's single run.
func TestShapePlansFollowShapes(t *testing.T) {
	cases := []struct {
		op     string
		attrs  []*onnxpb.AttributeProto
		consts []*graph.Tensor // inputs after x, fixed across runs
	}{
		{"Pad", []*onnxpb.AttributeProto{graph.AttrStringOf("mode", "reflect")},
			[]*graph.Tensor{graph.Int64Tensor([]int{8}, []int64{0, 0, 1, 2, 0, 0, 2, 1})}},
		{"Pad", nil, []*graph.Tensor{graph.Int64Tensor([]int{8}, []int64{0, 1, 0, 3, 0, 0, 2, 0})}},
		{"Resize", []*onnxpb.AttributeProto{graph.AttrStringOf("mode", "linear")},
			[]*graph.Tensor{nil, graph.Float32Tensor([]int{4}, []float32{1, 1, 2, 1.5})}},
		{"Resize", []*onnxpb.AttributeProto{graph.AttrStringOf("mode", "nearest")},
			[]*graph.Tensor{nil, graph.Float32Tensor([]int{4}, []float32{1, 1, 3, 2})}},
	}
	shapes := [][]int{{1, 2, 5, 7}, {2, 3, 4, 6}, {1, 2, 5, 7}}
	for _, c := range cases {
		s := dynamicNodeSession(t, c.op, c.attrs, c.consts)
		for r, shape := range shapes {
			x := seeded(uint64(40+r), shape...)
			in := append([]*graph.Tensor{x}, c.consts...)
			want, err := runNode(t, "", c.op, 19, c.attrs, []string{"y"}, in...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Run(map[string]*graph.Tensor{"x": x})
			if err != nil {
				t.Fatalf("%s run %d: %v", c.op, r, err)
			}
			g, w := got["y"], want["y"]
			if !slices.Equal(g.Shape, w.Shape) {
				t.Fatalf("%s run %d on %v: shape %v, fresh session %v", c.op, r, shape, g.Shape, w.Shape)
			}
			for i, v := range g.Float32s() {
				if math.Float32bits(v) != math.Float32bits(w.Float32s()[i]) {
					t.Fatalf("%s run %d on %v: y[%d] = %v, fresh session %v", c.op, r, shape, i, v, w.Float32s()[i])
				}
			}
		}
	}
}

// dynamicNodeSession is a one-node session whose input x has a dynamic
// 4-D shape and whose other inputs are the given constants (nil: omitted).
func dynamicNodeSession(t *testing.T, op string, attrs []*onnxpb.AttributeProto, consts []*graph.Tensor) *Session {
	t.Helper()
	m := graph.NewModel(graph.Opset{Version: 19})
	g := m.Graph
	vals := []*graph.Value{g.AddInput("x", graph.Float, []int64{-1, -1, -1, -1})}
	for i, c := range consts {
		if c == nil {
			vals = append(vals, nil)
			continue
		}
		vals = append(vals, g.AddInitializer(string(rune('b'+i)), c))
	}
	nd := g.AddNode(op, "n", vals, []string{"y"}, attrs...)
	g.AddOutput(nd.Outputs[0])
	s, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
