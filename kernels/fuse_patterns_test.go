package kernels

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/testmodels"
)

// patternGraph builds small graphs op by op for the pattern tests.
type patternGraph struct {
	b *testmodels.Builder
	n int
}

func newPatternGraph(opset int64) *patternGraph {
	return &patternGraph{b: testmodels.NewBuilder(1, opset)}
}

func (g *patternGraph) op(opType string, attrs []*onnxpb.AttributeProto, in ...*graph.Value) *graph.Value {
	g.n++
	name := opType + "_" + string(rune('a'+g.n%26)) + string(rune('a'+g.n/26))
	return g.b.G.AddNode(opType, name, in, []string{name + "_out"}, attrs...).Output()
}

func (g *patternGraph) scalar(v float32) *graph.Value {
	return g.b.Const("c", []int{}, []float32{v})
}

func (g *patternGraph) output(v *graph.Value, shape ...int) {
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	v.SetTensorType(graph.Float, dims)
	g.b.G.AddOutput(v)
}

// compareFused runs the model with and without fusion on seeded inputs and
// requires every output to agree within 1e-6 relative. The absolute floor
// cancelFloor*max(1,|x|) covers the unfused ops' own float32 rounding where
// they cancel (1 + erf(x/sqrt2) for x << 0 loses its relative accuracy), and
// returns the fused session for inspection.
func compareFused(t *testing.T, m *graph.Model, opts Options, shape ...int) *Session {
	t.Helper()
	r := rand.New(rand.NewPCG(5, 6))
	x := graph.NewTensor(graph.Float, shape)
	xd := x.Float32s()
	for i := range xd {
		xd[i] = float32(r.NormFloat64() * 3)
	}
	xd[0], xd[1] = -9, 9
	fused, plain, a, b := runFusedAndPlain(t, m, opts, map[string]*graph.Tensor{"x": x})
	worst := 0.0
	for name, want := range b {
		got, w := a[name].Float32s(), want.Float32s()
		if len(got) != len(w) {
			t.Fatalf("output %s: %d values fused, %d unfused", name, len(got), len(w))
		}
		for i := range w {
			d := math.Abs(float64(got[i]) - float64(w[i]))
			worst = math.Max(worst, d/math.Max(math.Abs(float64(w[i])), 1e-30))
			xi := 1.0
			if len(w) == len(xd) {
				xi = math.Max(1, math.Abs(float64(xd[i])))
			}
			if d > 1e-6*math.Abs(float64(w[i]))+cancelFloor*xi {
				t.Fatalf("output %s[%d] = %v fused, %v unfused", name, i, got[i], w[i])
			}
		}
	}
	t.Logf("%d steps unfused, %d fused; max relative difference %.3g", len(plain.steps), len(fused.steps), worst)
	return fused
}

// runFusedAndPlain runs the model on in with opts and again without fusion
// (and without taps): both sessions and their outputs.
func runFusedAndPlain(t *testing.T, m *graph.Model, opts Options, in map[string]*graph.Tensor) (fused, plain *Session, a, b map[string]*graph.Tensor) {
	t.Helper()
	fused, err := NewSession(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoFusion = true
	opts.Tap, opts.TapOnly = nil, nil
	if plain, err = NewSession(m, opts); err != nil {
		t.Fatal(err)
	}
	if a, err = fused.Run(in); err != nil {
		t.Fatal(err)
	}
	if b, err = plain.Run(in); err != nil {
		t.Fatal(err)
	}
	return fused, plain, a, b
}

// forms lists the recognised activations among the session's steps (fused
// regions and Conv/MatMul epilogues), and counts normKernel steps.
func forms(s *Session) (names []string, norms []bool) {
	for _, st := range s.steps {
		switch k := st.k.(type) {
		case *fusedKernel:
			names = append(names, k.prog.form)
		case *convKernel:
			if k.epilogue != nil {
				names = append(names, "Conv+"+k.epilogue.form)
			}
		case *matmulEpilogue:
			names = append(names, "MatMul+"+k.prog.form)
		case *normKernel:
			norms = append(norms, k.rms)
		}
	}
	return names, norms
}

func wantForms(t *testing.T, s *Session, want ...string) {
	t.Helper()
	got, _ := forms(s)
	if len(got) != len(want) {
		t.Fatalf("fused forms %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fused forms %q, want %q", got, want)
		}
	}
}

func TestFuseSiLU(t *testing.T) {
	g := newPatternGraph(17)
	x := g.b.Input("x", 2, 4, 8, 8)
	y := g.op("Mul", nil, x, g.op("Sigmoid", nil, x))
	g.output(y, 2, 4, 8, 8)
	s := compareFused(t, g.b.M, Options{Threads: 1}, 2, 4, 8, 8)
	wantForms(t, s, "Silu")
	if len(s.steps) != 1 {
		t.Errorf("%d steps, want 1", len(s.steps))
	}
}

func TestFuseConvSiLUEpilogue(t *testing.T) {
	g := newPatternGraph(17)
	x := g.b.Input("x", 1, 3, 16, 16)
	c := g.b.Conv(x, 8, 3, testmodels.ConvOpts{Pad: 1})
	y := g.op("Mul", nil, g.op("Sigmoid", nil, c), c) // sig * x order
	g.output(y, 1, 8, 16, 16)
	s := compareFused(t, g.b.M, Options{Threads: 1}, 1, 3, 16, 16)
	wantForms(t, s, "Conv+Silu")
}

// An intermediate with a reader outside the pattern, a graph output or a
// tapped tensor keeps the pattern unfused.
func TestFuseSiLUNotWhenIntermediateRead(t *testing.T) {
	build := func(extra string) *graph.Model {
		g := newPatternGraph(17)
		x := g.b.Input("x", 1, 4, 8, 8)
		sig := g.op("Sigmoid", nil, x)
		y := g.op("Mul", nil, x, sig)
		g.output(y, 1, 4, 8, 8)
		switch extra {
		case "reader":
			g.output(g.op("Add", nil, sig, g.scalar(1)), 1, 4, 8, 8)
		case "output":
			g.output(sig, 1, 4, 8, 8)
		}
		return g.b.M
	}
	for _, extra := range []string{"reader", "output"} {
		s := compareFused(t, build(extra), Options{Threads: 1}, 1, 4, 8, 8)
		if got, _ := forms(s); len(got) != 0 && got[0] == "Silu" {
			t.Errorf("%s: fused as %q", extra, got)
		}
	}
	m := build("")
	sigName := ""
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Sigmoid" {
			sigName = n.Output().Name
		}
	}
	seen := false
	s := compareFused(t, m, Options{Threads: 1, Tap: func(name string, _ *graph.Tensor) { seen = seen || name == sigName },
		TapOnly: map[string]bool{sigName: true}}, 1, 4, 8, 8)
	if got, _ := forms(s); len(got) != 0 {
		t.Errorf("tapped: fused as %q", got)
	}
	if _, err := s.Run(map[string]*graph.Tensor{"x": graph.NewTensor(graph.Float, []int{1, 4, 8, 8})}); err != nil || !seen {
		t.Errorf("tapped sigmoid output not seen (err %v)", err)
	}
}

func TestFuseHardSwish(t *testing.T) {
	// x * HardSigmoid(x) with the HardSwish constants.
	g := newPatternGraph(17)
	x := g.b.Input("x", 1, 4, 8, 8)
	hs := g.op("HardSigmoid", []*onnxpb.AttributeProto{graph.AttrFloatOf("alpha", 1.0/6), graph.AttrFloatOf("beta", 0.5)}, x)
	g.output(g.op("Mul", nil, x, hs), 1, 4, 8, 8)
	wantForms(t, compareFused(t, g.b.M, Options{Threads: 1}, 1, 4, 8, 8), "HardSwish")
	// x * Clip(x + 3, 0, 6) / 6.
	g = newPatternGraph(17)
	x = g.b.Input("x", 1, 4, 8, 8)
	cl := g.op("Clip", nil, g.op("Add", nil, x, g.scalar(3)), g.scalar(0), g.scalar(6))
	g.output(g.op("Div", nil, g.op("Mul", nil, x, cl), g.scalar(6)), 1, 4, 8, 8)
	wantForms(t, compareFused(t, g.b.M, Options{Threads: 1}, 1, 4, 8, 8), "HardSwish")
}

func TestFuseGeluErf(t *testing.T) {
	// PyTorch's order: Div sqrt2, Erf, Add 1, Mul x, Mul 0.5.
	g := newPatternGraph(17)
	x := g.b.Input("x", 4, 64)
	e := g.op("Erf", nil, g.op("Div", nil, x, g.scalar(1.4142135)))
	y := g.op("Mul", nil, g.op("Mul", nil, x, g.op("Add", nil, e, g.scalar(1))), g.scalar(0.5))
	g.output(y, 4, 64)
	wantForms(t, compareFused(t, g.b.M, Options{Threads: 1}, 4, 64), "GeluErf")
	// Another association: (0.5 * x) * (1 + erf(x * 1/sqrt2)).
	g = newPatternGraph(17)
	x = g.b.Input("x", 4, 64)
	e = g.op("Erf", nil, g.op("Mul", nil, x, g.scalar(0.70710677)))
	y = g.op("Mul", nil, g.op("Mul", nil, g.scalar(0.5), x), g.op("Add", nil, g.scalar(1), e))
	g.output(y, 4, 64)
	wantForms(t, compareFused(t, g.b.M, Options{Threads: 1}, 4, 64), "GeluErf")
	// A rounded constant is a different function: fused as a plain region only.
	g = newPatternGraph(17)
	x = g.b.Input("x", 4, 64)
	e = g.op("Erf", nil, g.op("Div", nil, x, g.scalar(1.4142)))
	y = g.op("Mul", nil, g.op("Mul", nil, x, g.op("Add", nil, e, g.scalar(1))), g.scalar(0.5))
	g.output(y, 4, 64)
	wantForms(t, compareFused(t, g.b.M, Options{Threads: 1}, 4, 64), "")
}

func TestFuseGeluTanh(t *testing.T) {
	g := newPatternGraph(17)
	x := g.b.Input("x", 4, 64)
	inner := g.op("Add", nil, x, g.op("Mul", nil, g.scalar(0.044715), g.op("Pow", nil, x, g.scalar(3))))
	th := g.op("Tanh", nil, g.op("Mul", nil, inner, g.scalar(float32(math.Sqrt(2/math.Pi)))))
	y := g.op("Mul", nil, g.op("Mul", nil, g.scalar(0.5), x), g.op("Add", nil, th, g.scalar(1)))
	g.output(y, 4, 64)
	wantForms(t, compareFused(t, g.b.M, Options{Threads: 1}, 4, 64), "GeluTanh")
}

func TestFuseMatMulGeluEpilogue(t *testing.T) {
	g := newPatternGraph(17)
	x := g.b.Input("x", 2, 8, 32)
	w := g.b.Const("w", []int{32, 48}, g.b.Normal(32*48, 0, 0.3))
	h := g.op("MatMul", nil, x, w)
	e := g.op("Erf", nil, g.op("Div", nil, h, g.scalar(1.4142135)))
	y := g.op("Mul", nil, g.op("Mul", nil, h, g.op("Add", nil, e, g.scalar(1))), g.scalar(0.5))
	g.output(y, 2, 8, 48)
	s := compareFused(t, g.b.M, Options{Threads: 1}, 2, 8, 32)
	wantForms(t, s, "MatMul+GeluErf")
	if len(s.steps) != 1 {
		t.Errorf("%d steps, want 1", len(s.steps))
	}
}

// layerNormGraph spells LayerNorm (or RMSNorm) out over the last axis of x [2, 6, 32].
func layerNormGraph(opset int64, rms, reciprocal, extraReader bool) *graph.Model {
	g := newPatternGraph(opset)
	x := g.b.Input("x", 2, 6, 32)
	mean := func(v *graph.Value) *graph.Value {
		if opset >= 18 {
			return g.op("ReduceMean", nil, v, g.b.Int64Const("axes", -1))
		}
		return g.op("ReduceMean", []*onnxpb.AttributeProto{graph.AttrIntsOf("axes", -1)}, v)
	}
	d := x
	var m *graph.Value
	if !rms {
		m = mean(x)
		d = g.op("Sub", nil, x, m)
	}
	v := mean(g.op("Pow", nil, d, g.scalar(2)))
	root := g.op("Sqrt", nil, g.op("Add", nil, v, g.scalar(1e-5)))
	var n *graph.Value
	if reciprocal {
		n = g.op("Mul", nil, d, g.op("Reciprocal", nil, root))
	} else {
		n = g.op("Div", nil, d, root)
	}
	y := g.op("Mul", nil, n, g.b.Const("gamma", []int{32}, g.b.Normal(32, 1, 0.2)))
	if !rms {
		y = g.op("Add", nil, y, g.b.Const("beta", []int{32}, g.b.Normal(32, 0, 0.2)))
	}
	g.output(y, 2, 6, 32)
	if extraReader && m != nil {
		g.output(m, 2, 6, 1)
	}
	return g.b.M
}

func TestFuseLayerNorm(t *testing.T) {
	for _, c := range []struct {
		name                     string
		opset                    int64
		rms, recip, extra, fused bool
	}{
		{"layernorm opset 17", 17, false, false, false, true},
		{"layernorm opset 18", 18, false, false, false, true},
		{"layernorm reciprocal", 17, false, true, false, true},
		{"rmsnorm", 17, true, false, false, true},
		{"rmsnorm reciprocal opset 18", 18, true, true, false, true},
		{"layernorm mean is an output", 17, false, false, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := compareFused(t, layerNormGraph(c.opset, c.rms, c.recip, c.extra), Options{Threads: 2}, 2, 6, 32)
			_, norms := forms(s)
			if !c.fused {
				// No LayerNorm; x - mean may still be RMS-normalized, which is
				// what the remaining ops compute.
				for _, rms := range norms {
					if !rms {
						t.Fatalf("LayerNorm fused although the mean is an output")
					}
				}
				return
			}
			if len(norms) != 1 || norms[0] != c.rms || len(s.steps) != 1 {
				t.Fatalf("norm steps %v (rms), %d steps; want one step, rms=%v", norms, len(s.steps), c.rms)
			}
		})
	}
}

// The stories260K Llama spells RMSNorm out (Pow/ReduceMean/Add/Sqrt/Div/Mul)
// and SiLU as Sigmoid and Mul: both are recognised there.
func TestFusePatternsOnStories(t *testing.T) {
	m := loadSharedModel(t, "stories260K/stories260K.onnx")
	s, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	names, norms := forms(s)
	silu := 0
	for _, n := range names {
		if n == "Silu" || n == "MatMul+Silu" {
			silu++
		}
	}
	t.Logf("recognised: %d RMSNorm, %d SiLU (%q)", len(norms), silu, names)
	if len(norms) != 11 || silu != 5 {
		t.Errorf("want 11 RMSNorm and 5 SiLU, got %d and %d", len(norms), silu)
	}
}

// loadSharedModel loads a model from ../shared/models beside the repository;
// it skips when absent unless ONNXQ_REQUIRE_DATA is set.
func loadSharedModel(t *testing.T, rel string) *graph.Model {
	t.Helper()
	p := filepath.Join(testdata.Root(), "..", "shared", "models", rel)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("ONNXQ_REQUIRE_DATA") != "" {
			t.Fatalf("%s not found: ../shared/models is required", p)
		}
		t.Skipf("%s not found", p)
	}
	m, err := graph.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// MatMul, a bias along the last axis, then Gelu: the bias and the activation
// run as the MatMul's epilogue, for rank-3 and rank-2 activations.
func TestFuseMatMulBiasGelu(t *testing.T) {
	for _, shape := range [][]int{{2, 8, 32}, {16, 32}} {
		g := newPatternGraph(17)
		x := g.b.Input("x", shape...)
		w := g.b.Const("w", []int{32, 48}, g.b.Normal(32*48, 0, 0.3))
		h := g.op("Add", nil, g.op("MatMul", nil, x, w), g.b.Const("bias", []int{48}, g.b.Normal(48, 0, 0.5)))
		e := g.op("Erf", nil, g.op("Div", nil, h, g.scalar(1.4142135)))
		y := g.op("Mul", nil, g.op("Mul", nil, h, g.op("Add", nil, e, g.scalar(1))), g.scalar(0.5))
		out := append(append([]int(nil), shape[:len(shape)-1]...), 48)
		g.output(y, out...)
		s := compareFused(t, g.b.M, Options{Threads: 2}, shape...)
		wantForms(t, s, "MatMul+Bias+GeluErf")
	}
}

func TestFuseConvBiasSiLU(t *testing.T) {
	g := newPatternGraph(17)
	x := g.b.Input("x", 1, 3, 16, 16)
	c := g.b.Conv(x, 8, 3, testmodels.ConvOpts{Pad: 1, NoBias: true})
	h := g.op("Add", nil, c, g.b.Const("bias", []int{8, 1, 1}, g.b.Normal(8, 0, 0.5)))
	g.output(g.op("Mul", nil, h, g.op("Sigmoid", nil, h)), 1, 8, 16, 16)
	wantForms(t, compareFused(t, g.b.M, Options{Threads: 1}, 1, 3, 16, 16), "Conv+Bias+Silu")
}

// A vector-by-vector MatMul gives a scalar; a [1] constant added to it makes
// [1]. The epilogue's program does not fit that output and runs the region's
// own steps instead.
func TestMatMulEpilogueFallback(t *testing.T) {
	g := newPatternGraph(17)
	x := g.b.Input("x", 32)
	w := g.b.Const("w", []int{32}, g.b.Normal(32, 0, 0.3))
	y := g.op("Sigmoid", nil, g.op("Add", nil, g.op("MatMul", nil, x, w), g.b.Const("b", []int{1}, []float32{0.25})))
	g.output(y, 1)
	s := compareFused(t, g.b.M, Options{Threads: 1}, 32)
	if _, ok := s.steps[0].k.(*matmulEpilogue); !ok || len(s.steps) != 1 {
		t.Fatalf("steps %d, first %T: want one MatMul with an epilogue", len(s.steps), s.steps[0].k)
	}
	out, err := s.Run(map[string]*graph.Tensor{"x": graph.NewTensor(graph.Float, []int{32})})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range out {
		if len(v.Shape) != 1 || v.Shape[0] != 1 || math.Abs(float64(v.Float32s()[0])-1/(1+math.Exp(-0.25))) > 1e-7 {
			t.Fatalf("output %v %v, want [1] sigmoid(0.25)", v.Shape, v.Float32s())
		}
	}
}

// TestFuseBatchNormHardSwish: MobileNetV3's Conv, BatchNormalization and the
// spelled-out HardSwish become the Conv's epilogue as the per-channel affine
// and one HardSwish routine, agreeing with the unfused ops.
func TestFuseBatchNormHardSwish(t *testing.T) {
	g := newPatternGraph(17)
	x := g.b.Input("x", 1, 3, 8, 8)
	r := rand.New(rand.NewPCG(7, 8))
	vals := func(n int, lo, hi float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*r.Float64())
		}
		return v
	}
	w := g.b.Const("w", []int{4, 3, 3, 3}, vals(4*27, -0.5, 0.5))
	conv := g.op("Conv", []*onnxpb.AttributeProto{graph.AttrIntsOf("pads", 1, 1, 1, 1)}, x, w)
	bn := g.op("BatchNormalization", nil, conv, g.b.Const("s", []int{4}, vals(4, 0.5, 2)), g.b.Const("b", []int{4}, vals(4, -1, 1)),
		g.b.Const("m", []int{4}, vals(4, -0.5, 0.5)), g.b.Const("v", []int{4}, vals(4, 0.5, 2)))
	cl := g.op("Clip", nil, g.op("Add", nil, bn, g.scalar(3)), g.scalar(0), g.scalar(6))
	g.output(g.op("Div", nil, g.op("Mul", nil, bn, cl), g.scalar(6)), 1, 4, 8, 8)
	wantForms(t, compareFused(t, g.b.M, Options{Threads: 1}, 1, 3, 8, 8), "Conv+BatchNormalization+HardSwish")
}
