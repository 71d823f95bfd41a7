package converter

import (
	"math"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/passes"
)

// TestWithinOutputBounds narrows calibrated ranges to what the producing op
// can output (both Clip forms, Relu, Sigmoid, Tanh), never widens one, and
// leaves alone a Clip whose bound is computed and ops without bounds.
func TestWithinOutputBounds(t *testing.T) {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{4})
	scalar := func(name string, v float32) *graph.Value {
		return g.AddInitializer(name, graph.Float32Tensor(nil, []float32{v}))
	}
	relu6 := g.AddNode("Clip", "clip6", []*graph.Value{x, scalar("lo", 0), scalar("hi", 6)}, []string{"relu6"}).Output()
	upper := g.AddNode("Clip", "clipHi", []*graph.Value{x, nil, scalar("hi2", 2.5)}, []string{"upper"}).Output()
	legacy := g.AddNode("Clip", "clipOld", []*graph.Value{x}, []string{"legacy"}, graph.AttrFloatOf("min", -1), graph.AttrFloatOf("max", 1)).Output()
	computed := g.AddNode("Clip", "clipDyn", []*graph.Value{x, x, nil}, []string{"computed"}).Output()
	relu := g.AddNode("Relu", "relu", []*graph.Value{x}, []string{"relu"}).Output()
	sig := g.AddNode("Sigmoid", "sig", []*graph.Value{x}, []string{"sig"}).Output()
	tanh := g.AddNode("Tanh", "tanh", []*graph.Value{x}, []string{"tanh"}).Output()
	add := g.AddNode("Add", "add", []*graph.Value{x, x}, []string{"sum"}).Output()
	for _, c := range []struct {
		v        *graph.Value
		in, want [2]float32
	}{
		{relu6, [2]float32{-0.001, 6.0019}, [2]float32{0, 6}}, // a histogram's bin edges past the bounds
		{relu6, [2]float32{0, 5.5}, [2]float32{0, 5.5}},       // never widened
		{upper, [2]float32{-3, 2.6}, [2]float32{-3, 2.5}},     // min absent: unbounded below
		{legacy, [2]float32{-1.2, 0.7}, [2]float32{-1, 0.7}},  // opset < 11 attributes
		{computed, [2]float32{-9, 9}, [2]float32{-9, 9}},      // a computed bound: left alone
		{relu, [2]float32{-0.01, 40}, [2]float32{0, 40}},
		{sig, [2]float32{0, 1.0005}, [2]float32{0, 1}},
		{tanh, [2]float32{-1.01, 1.01}, [2]float32{-1, 1}},
		{add, [2]float32{-7, 7}, [2]float32{-7, 7}},
		{x, [2]float32{-7, 7}, [2]float32{-7, 7}},   // a graph input: no producer
		{relu6, [2]float32{7, 8}, [2]float32{7, 8}}, // outside the bounds altogether: not narrowed to nothing
	} {
		if got := withinOutputBounds(c.v, c.in); got != c.want {
			t.Errorf("%s %v: got %v, want %v", c.v.Name, c.in, got, c.want)
		}
	}
	if lo, hi, ok := outputBounds(relu); !ok || lo != 0 || !math.IsInf(hi, 1) {
		t.Errorf("Relu bounds %v %v %v", lo, hi, ok)
	}
}

// TestClipWindowWarnings: a Clip output whose encoding's end code stands for
// a value just past the bound (the bound rounding to that code) is named;
// an end exactly on the bound, or a step past it, is not.
func TestClipWindowWarnings(t *testing.T) {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{4})
	lo := g.AddInitializer("lo", graph.Float32Tensor(nil, []float32{0}))
	hi := g.AddInitializer("hi", graph.Float32Tensor(nil, []float32{6}))
	g.AddNode("Clip", "relu6", []*graph.Value{x, lo, hi}, []string{"r6"})
	for _, c := range []struct {
		top  float64 // the uint8 range [0, top]
		warn bool
	}{{6, false}, {6.00001, true}, {6.005, true}, {6.01, true}, {6.02, false}, {6.5, false}, {5.9, false}} {
		enc := &passes.Encoding{DType: graph.Uint8, Scale: []float32{float32(c.top / 255)}, ZeroPoint: []int64{0}}
		w := clipWindowWarnings(g, map[string]*passes.Encoding{"r6": enc})
		if (len(w) > 0) != c.warn {
			t.Errorf("range [0, %g]: warnings %q, want one: %v", c.top, w, c.warn)
		}
	}
}
