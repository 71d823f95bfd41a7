package passes

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// swiGLU builds x [3, 8] -> gate = x Wg, up = x Wu + bu -> h = sigmoid(gate)
// * up -> y = Gemm(h, Wd^T, c) (transB) -> out, plus a second graph output
// reading x through a MatMul that shares Wu, so copies are needed.
func swiGLU(seed uint64) *graph.Model {
	r := rand.New(rand.NewPCG(seed, 1))
	rnd := func(shape ...int) *graph.Tensor {
		t := graph.NewTensor(graph.Float, shape)
		for i, d := 0, t.Float32s(); i < len(d); i++ {
			d[i] = float32(r.NormFloat64())
		}
		return t
	}
	m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{3, 8})
	wg := g.AddInitializer("wg", rnd(8, 6))
	wu := g.AddInitializer("wu", rnd(8, 6))
	bu := g.AddInitializer("bu", rnd(6))
	wd := g.AddInitializer("wd", rnd(4, 6))
	c := g.AddInitializer("c", rnd(4))
	gate := g.AddNode("MatMul", "gate", []*graph.Value{x, wg}, []string{"gate_out"}).Output()
	upm := g.AddNode("MatMul", "up", []*graph.Value{x, wu}, []string{"up_mm"}).Output()
	up := g.AddNode("Add", "up_bias", []*graph.Value{upm, bu}, []string{"up_out"}).Output()
	sg := g.AddNode("Sigmoid", "act", []*graph.Value{gate}, []string{"act_out"}).Output()
	h := g.AddNode("Mul", "glu", []*graph.Value{sg, up}, []string{"h"}).Output()
	y := g.AddNode("Gemm", "down", []*graph.Value{h, wd, c}, []string{"y"}, graph.AttrIntOf("transB", 1)).Output()
	z := g.AddNode("MatMul", "other", []*graph.Value{x, wu}, []string{"z"}).Output()
	y.SetTensorType(graph.Float, []int64{3, 4})
	z.SetTensorType(graph.Float, []int64{3, 6})
	g.AddOutput(y)
	g.AddOutput(z)
	return m
}

func runAll(t *testing.T, m *graph.Model, x *graph.Tensor) map[string]*graph.Tensor {
	t.Helper()
	s, err := kernels.NewSession(m, kernels.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(map[string]*graph.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrateInputScaleSwiGLU: a scale on the input of a transposed Gemm
// (down_proj) folds through SwiGLU's product and the up projection's bias
// into the up projection's output columns, leaving the MatMul that shares
// up's weight alone; a scale on x (a graph input) needs an inserted Mul.
// Outputs stay within 1e-5 relative.
func TestMigrateInputScaleSwiGLU(t *testing.T) {
	m := swiGLU(1)
	x := graph.NewTensor(graph.Float, []int{3, 8})
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = float32(math.Sin(float64(i)))
	}
	want := runAll(t, swiGLU(1), x)
	g := m.Graph
	mig, err := MigrateInputScaleOf(g, g.Value("h"), WeightReaders(g, g.Value("h")), []float32{0.5, 2, 8, 1, 0.1, 3})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mig.How, `the output channels of "up"`) || len(mig.Changed) != 3 {
		t.Errorf("how %q, changed %v: want the fold into up's output channels, changing up_mm, up_out and h", mig.How, mig.Changed)
	}
	how, err := MigrateInputScale(g, g.Value("x"), []float32{1, 2, 3, 4, 5, 6, 7, 8})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(how, "Mul by 1/s inserted before 3 layer(s)") {
		t.Errorf("scale on a graph input: %q", how)
	}
	got := runAll(t, m, x)
	for _, name := range []string{"y", "z"} {
		a, b := want[name].Float32s(), got[name].Float32s()
		var d, mx float64
		for i := range a {
			d = math.Max(d, math.Abs(float64(a[i]-b[i])))
			mx = math.Max(mx, math.Abs(float64(a[i])))
		}
		if d/mx > 1e-5 {
			t.Errorf("%s moved by %.3g relative", name, d/mx)
		}
	}
	if g.Value("wu").Consumers[0].Name != "other" || len(g.Value("wu").Consumers) != 1 {
		t.Error("the shared weight was changed in place")
	}
	// Bad scales are refused before anything changes.
	for _, s := range [][]float32{{1, 2}, {1, 1, 1, 0, 1, 1}, {1, 1, float32(math.Inf(1)), 1, 1, 1}} {
		if _, err := MigrateInputScale(g, g.Value("h"), s); err == nil {
			t.Errorf("scale %v accepted", s)
		}
	}
}

func TestSmoothScales(t *testing.T) {
	s, err := SmoothScales([]float32{100, 1, 0, 4}, []float32{0.01, 1, 1, 0}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{100, 1, 1, 1} // sqrt(100)/sqrt(0.01); zero maxima keep 1
	for i := range want {
		if math.Abs(float64(s[i]-want[i])) > 1e-4*float64(want[i]) {
			t.Errorf("s[%d] = %v, want %v", i, s[i], want[i])
		}
	}
	if _, err := SmoothScales([]float32{1}, []float32{1}, 1.5); err == nil {
		t.Error("alpha 1.5 accepted")
	}
}

// TestMigrateInputScaleRMSNorm: the scale of a SimplifiedLayerNormalization
// (ORT's RMSNorm, which the executor does not run) and of ONNX's
// RMSNormalization is divided by s, and the reading weight's rows multiplied.
func TestMigrateInputScaleRMSNorm(t *testing.T) {
	for _, op := range []string{"SimplifiedLayerNormalization", "RMSNormalization"} {
		m := graph.NewModel(graph.Opset{Domain: "", Version: 23})
		g := m.Graph
		x := g.AddInput("x", graph.Float, []int64{2, 3})
		gamma := g.AddInitializer("gamma", graph.Float32Tensor([]int{3}, []float32{1, 2, 4}))
		w := g.AddInitializer("w", graph.Float32Tensor([]int{3, 2}, []float32{1, 1, 1, 1, 1, 1}))
		n := g.AddNode(op, "norm", []*graph.Value{x, gamma}, []string{"n"}, graph.AttrIntOf("axis", -1)).Output()
		y := g.AddNode("MatMul", "mm", []*graph.Value{n, w}, []string{"y"}).Output()
		g.AddOutput(y)
		mig, err := MigrateInputScaleOf(g, n, WeightReaders(g, n), []float32{2, 4, 8})
		if err != nil {
			t.Fatal(err)
		}
		norm := n.Producer
		if !strings.Contains(mig.How, "the scale of") || len(mig.Changed) != 1 || mig.Changed[0] != "n" {
			t.Errorf("%s: %+v", op, mig)
		}
		if got := norm.Input(1).Const.Float32s(); got[0] != 0.5 || got[1] != 0.5 || got[2] != 0.5 {
			t.Errorf("%s: scale %v, want [0.5 0.5 0.5]", op, got)
		}
		if got := y.Producer.Input(1).Const.Float32s(); got[0] != 2 || got[2] != 4 || got[5] != 8 {
			t.Errorf("%s: weight %v, want rows 2, 4, 8", op, got)
		}
	}
}
