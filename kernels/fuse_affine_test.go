package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// sameBitsFused runs the model fused and unfused on seeded inputs and
// requires bit-identical outputs: a Mul then an Add merged into one affine
// rounds exactly as the two ops do. Returns the fused session.
func sameBitsFused(t *testing.T, m *graph.Model, threads int, shape ...int) *Session {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	x := graph.NewTensor(graph.Float, shape)
	for i, xd := 0, x.Float32s(); i < len(xd); i++ {
		xd[i] = float32(r.NormFloat64() * 4)
	}
	fused, _, a, b := runFusedAndPlain(t, m, Options{Threads: threads}, map[string]*graph.Tensor{"x": x})
	for name, want := range b {
		got, w := a[name].Float32s(), want.Float32s()
		if len(got) != len(w) {
			t.Fatalf("output %s: %d values fused, %d unfused", name, len(got), len(w))
		}
		for i := range w {
			if math.Float32bits(got[i]) != math.Float32bits(w[i]) {
				t.Fatalf("output %s[%d] = %v fused, %v unfused", name, i, got[i], w[i])
			}
		}
	}
	return fused
}

// hardSwishSpelled is x * Clip(x + 3, 0, 6) / 6 as Paddle and PyTorch export it.
func (g *patternGraph) hardSwishSpelled(x *graph.Value) *graph.Value {
	cl := g.op("Clip", nil, g.op("Add", nil, x, g.scalar(3)), g.scalar(0), g.scalar(6))
	return g.op("Div", nil, g.op("Mul", nil, x, cl), g.scalar(6))
}

// TestFuseLearnableAffineHardSwish: PP-LCNetV3's block, a Conv, a learnable
// scale and bias (scalar Mul and Add), the spelled-out HardSwish and another
// learnable scale and bias, runs as the Conv's epilogue of three ops (affine,
// HardSwish, affine) instead of eight, with the unfused ops' bits.
func TestFuseLearnableAffineHardSwish(t *testing.T) {
	for _, threads := range []int{1, 2} {
		g := newPatternGraph(11)
		x := g.b.Input("x", 1, 3, 12, 20)
		w := g.b.Const("w", []int{8, 3, 3, 3}, g.b.Normal(8*27, 0, 0.4))
		conv := g.op("Conv", []*onnxpb.AttributeProto{graph.AttrIntsOf("pads", 1, 1, 1, 1)}, x, w)
		a := g.op("Add", nil, g.op("Mul", nil, conv, g.scalar(1.3)), g.scalar(-0.2))
		h := g.hardSwishSpelled(a)
		y := g.op("Add", nil, g.b.Const("c", []int{1}, []float32{0.07}), g.op("Mul", nil, g.scalar(0.9), h))
		g.output(y, 1, 8, 12, 20)
		s := sameBitsFused(t, g.b.M, threads, 1, 3, 12, 20)
		wantForms(t, s, "Conv+Affine+HardSwish+Affine")
		k := s.steps[len(s.steps)-1].k.(*convKernel)
		if n := len(k.epilogue.ops); n != 3 || !k.epilogue.chain() {
			t.Fatalf("epilogue of %d ops (chain %v), want 3 in a chain", n, k.epilogue.chain())
		}
	}
}

// TestMergeAffinePerChannel: BatchNormalization exported as a Mul and a Sub
// by [C, 1, 1] constants (with a scalar among them) is one per-channel
// affine, fused into the producing Conv's stores with a Relu.
func TestMergeAffinePerChannel(t *testing.T) {
	g := newPatternGraph(13)
	x := g.b.Input("x", 1, 3, 9, 9)
	w := g.b.Const("w", []int{6, 3, 3, 3}, g.b.Normal(6*27, 0, 0.4))
	conv := g.op("Conv", nil, x, w)
	m := g.op("Mul", nil, conv, g.b.Const("s", []int{6, 1, 1}, g.b.Uniform(6, 0.5, 2)))
	y := g.op("Relu", nil, g.op("Sub", nil, m, g.b.Const("b", []int{1, 6, 1, 1}, g.b.Normal(6, 0, 1))))
	g.output(y, 1, 6, 7, 7)
	s := sameBitsFused(t, g.b.M, 1, 1, 3, 9, 9)
	k := s.steps[len(s.steps)-1].k.(*convKernel)
	if k.epilogue == nil || len(k.epilogue.ops) != 2 || k.epilogue.ops[0].kind != ewAffine || len(k.eps) != 6 {
		t.Fatalf("want a Conv with an affine+Relu epilogue in its stores, got %+v", k.epilogue)
	}
	// A scalar scale with a per-channel bias, no Conv: one standalone affine.
	g = newPatternGraph(13)
	x = g.b.Input("x", 2, 4, 5, 5)
	y = g.op("Add", nil, g.op("Mul", nil, g.scalar(-1.7), x), g.b.Const("b", []int{4, 1, 1}, g.b.Normal(4, 0, 1)))
	g.output(g.op("Sigmoid", nil, y), 2, 4, 5, 5)
	s = sameBitsFused(t, g.b.M, 2, 2, 4, 5, 5)
	f := s.steps[0].k.(*fusedKernel)
	if op := f.prog.ops[0]; op.kind != ewAffine || len(op.mul) != 4 || op.mul[3] != -1.7 {
		t.Fatalf("first op %+v, want a 4-channel affine", op)
	}
}

// TestMergeAffineShapeChecked: [C, 1] constants are per channel on a rank-3
// input but run along the last axis of a rank-2 one; a merged affine that
// does not fit the input it meets runs the region's own steps.
func TestMergeAffineShapeChecked(t *testing.T) {
	for _, shape := range [][]int{{3, 4, 5}, {4, 4}} {
		g := newPatternGraph(13)
		x := g.b.Input("x", shape...)
		y := g.op("Add", nil, g.op("Mul", nil, x, g.b.Const("s", []int{4, 1}, g.b.Uniform(4, 0.5, 2))), g.b.Const("b", []int{4, 1}, g.b.Normal(4, 0, 1)))
		g.output(g.op("Tanh", nil, y), shape...)
		sameBitsFused(t, g.b.M, 1, shape...)
	}
	// The product read twice: nothing is merged.
	g := newPatternGraph(13)
	x := g.b.Input("x", 1, 4, 3, 3)
	m := g.op("Mul", nil, x, g.scalar(2))
	g.output(g.op("Mul", nil, g.op("Add", nil, m, g.scalar(1)), m), 1, 4, 3, 3)
	s := sameBitsFused(t, g.b.M, 1, 1, 4, 3, 3)
	for _, op := range s.steps[0].k.(*fusedKernel).prog.ops {
		if op.kind == ewAffine {
			t.Fatalf("merged a Mul whose product is read twice")
		}
	}
}
