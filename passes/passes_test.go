package passes

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/testmodels"
)

func countOps(m *graph.Model) map[string]int {
	c := map[string]int{}
	for _, n := range m.Graph.Nodes {
		c[n.OpType]++
	}
	return c
}

func runPipeline(t *testing.T, m *graph.Model, list string, v *Verifier) *Report {
	t.Helper()
	ps, err := Parse(list, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v == nil {
		v = &Verifier{Seed: 3}
	}
	rep, err := (&Pipeline{Passes: ps, Verify: v}).Run(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Changes {
		if c.MaxRelDiff > 1e-4 {
			t.Errorf("%s moved the outputs by %g", c.Pass, c.MaxRelDiff)
		}
	}
	return rep
}

func TestDefaultPipelineOnTestModels(t *testing.T) {
	cases := []struct {
		name        string
		model       *graph.Model
		nodesBefore int
		nodesAfter  int
	}{
		// 3 Conv+BN+ReLU (one with a residual Add), pooling, Gemm head, output Identity.
		{"convbnrelu", testmodels.ConvBNReLU(1), 15, 11},
		{"mobilenetv2-block", testmodels.MobileNetV2Block(1), 13, 9},
		{"gemm-bn", testmodels.GemmBN(1), 6, 3},
		{"convtranspose-bn", testmodels.ConvTransposeBN(1), 8, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if n := len(c.model.Graph.Nodes); n != c.nodesBefore {
				t.Fatalf("%d nodes before, want %d", n, c.nodesBefore)
			}
			runPipeline(t, c.model, "default", nil)
			ops := countOps(c.model)
			if ops["BatchNormalization"] != 0 || ops["Identity"] != 0 {
				t.Errorf("left %v", ops)
			}
			if n := len(c.model.Graph.Nodes); n != c.nodesAfter {
				t.Errorf("%d nodes after, want %d (%v)", n, c.nodesAfter, ops)
			}
			if err := c.model.Graph.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestStandaloneBN(t *testing.T) {
	// BN right after the input has no producer to fold into.
	b := testmodels.NewBuilder(2, 13)
	x := b.Input("input", 1, 4, 6, 6)
	y := b.Relu(b.BatchNorm(x))
	y.SetTensorType(graph.Float, nil)
	b.G.AddOutput(y)
	m := b.M
	rep := runPipeline(t, m, "fold-bn", nil)
	if ops := countOps(m); ops["BatchNormalization"] != 0 || ops["Mul"] != 1 || ops["Add"] != 1 {
		t.Errorf("ops %v", ops)
	}
	if len(rep.Changes[0].Notes) != 1 || !strings.Contains(rep.Changes[0].Notes[0], "Mul+Add") {
		t.Errorf("notes %v", rep.Changes[0].Notes)
	}
	// With keep, it stays; a skipped node stays too.
	m2 := testmodels.ConvBNReLU(1)
	ps, _ := Parse("fold-bn", Options{FoldBNSkip: []string{"BatchNormalization_2"}})
	if _, err := (&Pipeline{Passes: ps}).Run(m2); err != nil {
		t.Fatal(err)
	}
	if countOps(m2)["BatchNormalization"] != 1 {
		t.Errorf("skip list ignored: %v", countOps(m2))
	}
}

func TestPaddleOCRDefaultAndUpgrade(t *testing.T) {
	for kind, shape := range map[string][]int{"det": {1, 3, 320, 320}, "rec": {1, 3, 48, 320}, "cls": {1, 3, 48, 192}} {
		t.Run(kind, func(t *testing.T) {
			m, err := graph.Load(testdata.OCRModel(t, kind))
			if err != nil {
				t.Fatal(err)
			}
			h, w := shape[2], shape[3]
			v := &Verifier{Inputs: map[string]*graph.Tensor{"x": testdata.ImageNetNormalized(testdata.TextImage(h, w, 2), h, w)}}
			runPipeline(t, m, "default,upgrade-opset", v)
			if got := m.OpsetVersion(""); got != 21 {
				t.Errorf("opset %d", got)
			}
			for _, n := range m.Graph.Nodes {
				if n.OpType == "BatchNormalization" {
					if p := n.Input(0).Producer; p != nil && (p.OpType == "Conv" || p.OpType == "ConvTranspose" || p.OpType == "Gemm") && len(n.Input(0).Consumers) == 1 {
						t.Errorf("BatchNormalization %s after %s was not folded", n, p)
					}
				}
				if n.OpType == "Constant" {
					t.Errorf("Constant node %s left", n)
				}
			}
		})
	}
}

func TestUpgradeRewrites(t *testing.T) {
	// Opset 9 ops whose signature changes: Clip (11), Unsqueeze/Squeeze (13),
	// ReduceMean (18), Softmax pre-13 on a 3-D input (axis 1: flattens two dims).
	b := testmodels.NewBuilder(4, 9)
	x := b.Input("input", 2, 3, 5)
	c := b.G.AddNode("Clip", "clip", []*graph.Value{x}, []string{"c"}, graph.AttrFloatOf("min", -0.5), graph.AttrFloatOf("max", 0.5)).Output()
	u := b.G.AddNode("Unsqueeze", "unsq", []*graph.Value{c}, []string{"u"}, graph.AttrIntsOf("axes", 0)).Output()
	s := b.G.AddNode("Squeeze", "sq", []*graph.Value{u}, []string{"s"}, graph.AttrIntsOf("axes", 0)).Output()
	r := b.G.AddNode("ReduceMean", "rm", []*graph.Value{s}, []string{"r"}, graph.AttrIntsOf("axes", 2)).Output()
	sm := b.G.AddNode("Softmax", "sm", []*graph.Value{x}, []string{"sm"}).Output()
	r.SetTensorType(graph.Float, nil)
	sm.SetTensorType(graph.Float, nil)
	b.G.AddOutput(r)
	b.G.AddOutput(sm)
	rep := runPipeline(t, b.M, "upgrade-opset:18", nil)
	if rep.Changes[0].Count != 6 { // 5 nodes + the version
		t.Errorf("changed %d: %v", rep.Changes[0].Count, rep.Changes[0].Nodes)
	}
	for _, n := range b.M.Graph.Nodes {
		if n.HasAttr("axes") || n.HasAttr("min") {
			t.Errorf("node %s still has attribute inputs", n)
		}
	}
	if ops := countOps(b.M); ops["Flatten"] != 1 || ops["Reshape"] != 1 {
		t.Errorf("softmax not made explicit: %v", ops)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Parse("default,frobnicate", Options{}); err == nil || !strings.Contains(err.Error(), `unknown pass "frobnicate"`) {
		t.Errorf("unknown pass: %v", err)
	}
	if _, err := Parse("upgrade-opset:25", Options{}); err == nil || !strings.Contains(err.Error(), "opset 25 cannot be reached") {
		t.Errorf("opset 25: %v", err)
	}
	m := testmodels.ConvBNReLU(1) // opset 13
	ps, _ := Parse("upgrade-opset:11", Options{})
	if _, err := (&Pipeline{Passes: ps}).Run(m); err == nil || !strings.Contains(err.Error(), "downgrading to 11 is not supported") {
		t.Errorf("downgrade: %v", err)
	}
	// An op with no upgrade rule is refused by name, and nothing changes.
	m2 := graph.NewModel(graph.Opset{Domain: "", Version: 11})
	x := m2.Graph.AddInput("x", graph.Float, []int64{2, 2})
	n := m2.Graph.AddNode("Det", "det1", []*graph.Value{x}, []string{"y"})
	m2.Graph.AddOutput(n.Output())
	ps, _ = Parse("upgrade-opset", Options{})
	if _, err := (&Pipeline{Passes: ps}).Run(m2); err == nil || !strings.Contains(err.Error(), `cannot upgrade node "det1" (Det) from opset 11 to 21`) {
		t.Errorf("no rule: %v", err)
	}
	if m2.OpsetVersion("") != 11 {
		t.Error("a refused upgrade changed the opset")
	}
	// A model onnxq cannot run: infer-shapes says so and the pipeline goes on.
	m3 := graph.NewModel(graph.Opset{Domain: "", Version: 11})
	x3 := m3.Graph.AddInput("x", graph.Float, []int64{2, 2})
	m3.Graph.AddOutput(m3.Graph.AddNode("Frobnicate", "f1", []*graph.Value{x3}, []string{"y"}).Output())
	ps, _ = Parse("infer-shapes", Options{})
	rep, err := (&Pipeline{Passes: ps}).Run(m3)
	if err != nil || len(rep.Changes[0].Notes) != 1 || !strings.Contains(rep.Changes[0].Notes[0], "unsupported op Frobnicate") {
		t.Errorf("infer-shapes on an unrunnable model: %v %v", err, rep)
	}
}

// spread is the ratio of the largest to the smallest per-output-channel weight range.
func spread(w *graph.Tensor) float64 {
	per := graph.Numel(w.Shape[1:])
	lo, hi := math.Inf(1), 0.0
	for o := 0; o < w.Shape[0]; o++ {
		r := 0.0
		for _, v := range w.Float32s()[o*per : (o+1)*per] {
			r = math.Max(r, math.Abs(float64(v)))
		}
		lo, hi = math.Min(lo, r), math.Max(hi, r)
	}
	return hi / lo
}

// quantizedOutputSQNR runs m with float weights and with every Conv's weights
// fake-quantized to per-tensor symmetric int8, and returns the output SQNR in dB.
func quantizedOutputSQNR(t *testing.T, m *graph.Model, in map[string]*graph.Tensor) float64 {
	t.Helper()
	ref, err := runModel(m, in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := graph.Marshal(m)
	q, err := graph.Decode(b, "", graph.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range q.Graph.Nodes {
		if n.OpType != "Conv" {
			continue
		}
		w := n.Input(1).Const.Float32s()
		mx := 0.0
		for _, v := range w {
			mx = math.Max(mx, math.Abs(float64(v)))
		}
		scale := mx / 127
		for i, v := range w {
			w[i] = float32(math.Max(-127, math.Min(127, math.RoundToEven(float64(v)/scale))) * scale)
		}
	}
	got, err := runModel(q, in)
	if err != nil {
		t.Fatal(err)
	}
	var sig, noise float64
	for name, r := range ref {
		for i, v := range r.Float32s() {
			d := float64(got[name].Float32s()[i]) - float64(v)
			sig += float64(v) * float64(v)
			noise += d * d
		}
	}
	return 10 * math.Log10(sig/noise)
}

func TestCLEEqualizes(t *testing.T) {
	m := testmodels.Unbalanced(1)
	in := map[string]*graph.Tensor{"input": graph.NewTensor(graph.Float, []int{1, 3, 16, 16})}
	for i, d := 0, in["input"].Float32s(); i < len(d); i++ {
		d[i] = float32(math.Sin(float64(i) * 0.37))
	}
	convs := func() []*graph.Tensor {
		var out []*graph.Tensor
		for _, n := range m.Graph.Nodes {
			if n.OpType == "Conv" {
				out = append(out, n.Input(1).Const)
			}
		}
		return out
	}
	var spreadBefore []float64
	for _, w := range convs()[:2] {
		spreadBefore = append(spreadBefore, spread(w))
	}
	sqnrBefore := quantizedOutputSQNR(t, m, in)
	rep := runPipeline(t, m, "cle", nil) // verification holds the float outputs to 1e-4
	if rep.Changes[0].Count != 2 {
		t.Errorf("equalized %d pairs, want 2: %v", rep.Changes[0].Count, rep.Changes[0].Nodes)
	}
	for i, w := range convs()[:2] {
		s := spread(w)
		t.Logf("conv %d: per-channel weight range spread %.1f -> %.1f", i, spreadBefore[i], s)
		if s > spreadBefore[i]/4 {
			t.Errorf("conv %d: spread %.2f -> %.2f did not shrink fourfold", i, spreadBefore[i], s)
		}
	}
	sqnrAfter := quantizedOutputSQNR(t, m, in)
	t.Logf("output SQNR with per-tensor int8 conv weights: %.1f dB before CLE, %.1f dB after", sqnrBefore, sqnrAfter)
	// At least 3 dB: the quantization noise power halves (measured: 30.0 -> 35.5 dB).
	if sqnrAfter < sqnrBefore+3 {
		t.Errorf("output SQNR %.1f -> %.1f dB did not rise by 3 dB", sqnrBefore, sqnrAfter)
	}
}

func TestCLEDepthwiseTriple(t *testing.T) {
	// conv -> ReLU -> depthwise -> ReLU -> conv, after replace-relu6 on MobileNetV2.
	m := testmodels.MobileNetV2Block(3)
	runPipeline(t, m, "default", nil)
	ps, _ := Parse("replace-relu6,cle", Options{})
	rep, err := (&Pipeline{Passes: ps, Verify: &Verifier{Seed: 1}}).Run(m)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changes[0].Count != 2 || rep.Changes[1].Count != 2 {
		t.Errorf("relu6 %d, cle pairs %d (%v)", rep.Changes[0].Count, rep.Changes[1].Count, rep.Changes[1].Nodes)
	}
	if rep.Changes[1].MaxRelDiff > 1e-4 {
		t.Errorf("cle moved outputs by %g", rep.Changes[1].MaxRelDiff)
	}
	t.Logf("replace-relu6 changed the outputs by %.3g; cle by %.3g", rep.Changes[0].MaxRelDiff, rep.Changes[1].MaxRelDiff)
}

func TestHighBiasAndBiasCorrection(t *testing.T) {
	// ConvBNReLU: fold-bn records BN statistics; absorption and correction use them.
	m := testmodels.ConvBNReLU(4)
	st := NewState()
	ps, _ := Parse("default,absorb-high-bias,bias-correction", Options{})
	rep, err := (&Pipeline{Passes: ps, State: st, Verify: &Verifier{Seed: 2}}).Run(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.BNStats) != 3 {
		t.Errorf("BN statistics for %d layers, want 3", len(st.BNStats))
	}
	byName := map[string]*Change{}
	for _, c := range rep.Changes {
		byName[c.Pass] = c
	}
	// Only Conv_2 reads a folded BN + ReLU directly (Conv_3 follows the residual Add).
	if c := byName["bias-correction"]; c.Count != 1 || c.Nodes[0] != `"Conv_2" (Conv)` {
		t.Errorf("bias-correction corrected %v, want Conv_2", c.Nodes)
	}
	if c := byName["bias-correction"]; c.MaxRelDiff <= 0 || c.MaxRelDiff > 0.05 {
		t.Errorf("bias-correction changed float outputs by %g: expected a small, nonzero change", c.MaxRelDiff)
	}
	t.Logf("absorb-high-bias: %d pairs, output change %.3g; bias-correction: %d layers, output change %.3g",
		byName["absorb-high-bias"].Count, byName["absorb-high-bias"].MaxRelDiff, byName["bias-correction"].Count, byName["bias-correction"].MaxRelDiff)
}

// TestBiasCorrectionFormula checks -(Q(W)-W)·E[x] on a one-layer Gemm by hand.
func TestBiasCorrectionFormula(t *testing.T) {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 13})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{1, 2})
	w := g.AddInitializer("w", graph.Float32Tensor([]int{2, 1}, []float32{1, 0.3}))
	n := g.AddNode("Gemm", "fc", []*graph.Value{x, w}, []string{"y"})
	g.AddOutput(n.Output())
	// 2-bit weights: qmax 1, scale = 1 (max |w| of the single output channel).
	// Q(w) = [1, 0]; error = [0, -0.3]; E[x] = [2, 5]; delta = -1.5; bias = +1.5.
	c := &Change{}
	if err := CorrectBias(m, fixedMeans{2, 5}, PerChannelBits(2), c); err != nil {
		t.Fatal(err)
	}
	b := n.Input(2).Const.Float32s()
	if c.Count != 1 || math.Abs(float64(b[0])-1.5) > 1e-6 {
		t.Errorf("bias %v, want [1.5]", b)
	}
}

type fixedMeans []float32

func (f fixedMeans) InputMean(*graph.Node) ([]float32, bool) { return f, true }

// TestAbsorbHighBias builds conv -> BN(high beta) -> ReLU -> 1x1 conv: the ReLU
// never clips the shifted part, so absorbing it keeps the outputs.
func TestAbsorbHighBias(t *testing.T) {
	b := testmodels.NewBuilder(9, 13)
	x := b.Input("input", 1, 3, 8, 8)
	y := b.Conv(x, 6, 3, testmodels.ConvOpts{Pad: 1})
	y = b.Relu(b.BatchNorm(y))
	y = b.Conv(y, 4, 1, testmodels.ConvOpts{})
	y.SetTensorType(graph.Float, nil)
	b.G.AddOutput(y)
	for _, n := range b.G.Nodes {
		if n.OpType == "BatchNormalization" {
			beta, gamma := n.Input(2).Const.Float32s(), n.Input(1).Const.Float32s()
			for i := range beta {
				beta[i], gamma[i] = 3+float32(i)*0.1, 0.2 // mean 3, spread 0.2: c = beta - 0.6
			}
		}
	}
	rep := runPipeline(t, b.M, "fold-bn,absorb-high-bias", nil)
	c := rep.Changes[1]
	if c.Count != 1 {
		t.Fatalf("absorbed %d pairs", c.Count)
	}
	t.Logf("absorb-high-bias changed the outputs by %.2g", c.MaxRelDiff)
	if c.MaxRelDiff > 1e-4 {
		t.Errorf("outputs moved by %g", c.MaxRelDiff)
	}
	// The first conv's bias dropped by about beta - 3 gamma.
	var bias []float32
	for _, n := range b.G.Nodes {
		if n.OpType == "Conv" {
			bias = n.Input(2).Const.Float32s()
			break
		}
	}
	t.Logf("first conv bias after absorption: %v", bias)
}

func TestCleanupPasses(t *testing.T) {
	// x[2,3,4] -> Shape -> Gather(1) -> Unsqueeze -> Concat with [-1] -> Reshape(x),
	// plus an unused node and initializer, and an Identity at the graph output.
	m := graph.NewModel(graph.Opset{Domain: "", Version: 13})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{2, 3, 4})
	shape := g.AddNode("Shape", "shape", []*graph.Value{x}, []string{"shape"}).Output()
	idx := g.AddInitializer("idx", graph.Int64Tensor(nil, []int64{1}))
	dim := g.AddNode("Gather", "gather", []*graph.Value{shape, idx}, []string{"dim"}).Output()
	axes := g.AddInitializer("axes", graph.Int64Tensor([]int{1}, []int64{0}))
	u := g.AddNode("Unsqueeze", "unsq", []*graph.Value{dim, axes}, []string{"u"}).Output()
	minus := g.AddInitializer("minus", graph.Int64Tensor([]int{1}, []int64{-1}))
	target := g.AddNode("Concat", "cat", []*graph.Value{u, minus}, []string{"target"}, graph.AttrIntOf("axis", 0)).Output()
	r := g.AddNode("Reshape", "reshape", []*graph.Value{x, target}, []string{"r"}).Output()
	g.AddNode("Neg", "unused", []*graph.Value{x}, []string{"dead"})
	g.AddInitializer("unused_init", graph.Float32Tensor([]int{1}, []float32{1}))
	out := g.AddNode("Identity", "id", []*graph.Value{r}, []string{"out"}).Output()
	out.SetTensorType(graph.Float, nil)
	g.AddOutput(out)

	rep := runPipeline(t, m, "fold-constants,eliminate-identity,eliminate-dead", nil)
	if c := rep.Changes[0]; c.Count != 4 { // Shape, Gather, Unsqueeze, Concat
		t.Errorf("folded %d: %v", c.Count, c.Nodes)
	}
	if len(g.Nodes) != 1 || g.Nodes[0].OpType != "Reshape" || g.Nodes[0].Output().Name != "out" {
		t.Fatalf("nodes %v", g.Nodes)
	}
	if got := g.Nodes[0].Input(1).Const.Int64s(); len(got) != 2 || got[0] != 3 || got[1] != -1 {
		t.Errorf("folded shape %v, want [3 -1]", got)
	}
	for _, v := range g.Initializers {
		if v.Name == "unused_init" || v.Name == "idx" {
			t.Errorf("initializer %q left", v.Name)
		}
	}
}

func TestInferShapesSymbolic(t *testing.T) {
	m := testmodels.ConvBNReLU(1)
	in := m.Graph.Inputs[0]
	in.Info.Type.GetTensorType().Shape.Dim[0].Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}
	runPipeline(t, m, "infer-shapes", &Verifier{Shapes: map[string][]int{"input": {1, 3, 32, 32}}})
	for _, n := range m.Graph.Nodes {
		if n.OpType != "Conv" {
			continue
		}
		dims, ok := n.Output().Shape()
		if !ok || len(dims) != 4 || dims[0].Param != "batch" || !dims[1].Known || dims[1].Value != 16 || dims[2].Value != 32 {
			t.Errorf("%s: shape %v", n, dims)
		}
		if n.Output().ElemType() != graph.Float {
			t.Errorf("%s: type %v", n, n.Output().ElemType())
		}
		break
	}
}

func TestUpgradeMoreOps(t *testing.T) {
	b := testmodels.NewBuilder(5, 9)
	x := b.Input("input", 1, 2, 4, 6)
	g := b.G
	p := g.AddNode("Pad", "pad", []*graph.Value{x}, []string{"p"}, graph.AttrIntsOf("pads", 0, 0, 1, 2, 0, 0, 1, 0), graph.AttrFloatOf("value", 0.5)).Output()
	sp := g.AddNode("Split", "split", []*graph.Value{p}, []string{"s1", "s2"}, graph.AttrIntOf("axis", 3), graph.AttrIntsOf("split", 3, 5))
	scales := g.AddInitializer("scales", graph.Float32Tensor([]int{4}, []float32{1, 1, 2, 2}))
	up := g.AddNode("Upsample", "up", []*graph.Value{sp.Outputs[0], scales}, []string{"up"}, graph.AttrStringOf("mode", "nearest")).Output()
	dr := g.AddNode("Dropout", "drop", []*graph.Value{up}, []string{"d"}, graph.AttrFloatOf("ratio", 0.3)).Output()
	sl := g.AddNode("Slice", "slice", []*graph.Value{sp.Outputs[1]}, []string{"sl"}, graph.AttrIntsOf("starts", 1), graph.AttrIntsOf("ends", 4), graph.AttrIntsOf("axes", 2)).Output()
	for _, v := range []*graph.Value{dr, sl} {
		v.SetTensorType(graph.Float, nil)
		g.AddOutput(v)
	}
	rep := runPipeline(t, b.M, "upgrade-opset", nil) // verified: outputs within 1e-4
	if c := rep.Changes[0]; c.Count != 6 {
		t.Errorf("changed %d: %v", c.Count, c.Nodes)
	}
	ops := countOps(b.M)
	if ops["Upsample"] != 0 || ops["Resize"] != 1 {
		t.Errorf("ops %v", ops)
	}
	for _, n := range g.Nodes {
		for _, a := range []string{"pads", "split", "ratio", "starts", "scales"} {
			if n.HasAttr(a) {
				t.Errorf("%s still has %q", n, a)
			}
		}
		if n.OpType == "Split" && !n.HasAttr("num_outputs") && n.Input(1) == nil {
			t.Errorf("Split lost its sizes")
		}
	}
}

func TestFoldAffine(t *testing.T) {
	// conv -> Mul(per channel) -> Add(scalar) -> Div(2) -> Relu, then
	// conv -> Sub(c - x): the reversed Sub must stay.
	b := testmodels.NewBuilder(6, 13)
	x := b.Input("input", 1, 3, 8, 8)
	y := b.Conv(x, 4, 3, testmodels.ConvOpts{Pad: 1})
	scale := b.Const("scale", []int{1, 4, 1, 1}, []float32{0.5, 2, -1, 3})
	y = b.G.AddNode("Mul", "mul", []*graph.Value{y, scale}, []string{"m"}).Output()
	shift := b.Const("shift", []int{1}, []float32{0.25})
	y = b.G.AddNode("Add", "add", []*graph.Value{shift, y}, []string{"a"}).Output()
	two := b.Const("two", nil, []float32{2})
	y = b.G.AddNode("Div", "div", []*graph.Value{y, two}, []string{"d"}).Output()
	y = b.G.AddNode("Relu", "relu", []*graph.Value{y}, []string{"r"}).Output()
	z := b.Conv(x, 4, 1, testmodels.ConvOpts{})
	c := b.Const("c", []int{1, 4, 1, 1}, []float32{1, 2, 3, 4})
	z = b.G.AddNode("Sub", "rsub", []*graph.Value{c, z}, []string{"s"}).Output()
	for _, v := range []*graph.Value{y, z} {
		v.SetTensorType(graph.Float, nil)
		b.G.AddOutput(v)
	}
	rep := runPipeline(t, b.M, "fold-affine", nil) // verified within 1e-4
	if got := rep.Changes[0]; got.Count != 3 {
		t.Errorf("folded %d: %v", got.Count, got.Nodes)
	}
	ops := countOps(b.M)
	if ops["Mul"] != 0 || ops["Add"] != 0 || ops["Div"] != 0 || ops["Sub"] != 1 {
		t.Errorf("ops %v", ops)
	}
}

// TestFoldLeavesRandomAndSequences: constant folding keeps random draws
// random and does not turn a sequence into an initializer.
func TestFoldLeavesRandomAndSequences(t *testing.T) {
	m := graph.NewModel(graph.Opset{Version: 17})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{2, 3})
	noise := g.AddNode("RandomNormal", "noise", nil, []string{"noise"}, graph.AttrIntsOf("shape", 2, 3)).Output()
	c := g.AddInitializer("c", graph.Float32Tensor([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6}))
	seq := g.AddNode("SequenceConstruct", "seq", []*graph.Value{c, c}, []string{"seq"}).Output()
	cat := g.AddNode("ConcatFromSequence", "cat", []*graph.Value{seq}, []string{"cat"}, graph.AttrIntOf("axis", 0)).Output()
	sum := g.AddNode("Add", "sum", []*graph.Value{x, noise}, []string{"sum"}).Output()
	out := g.AddNode("Concat", "out", []*graph.Value{sum, cat}, []string{"out"}, graph.AttrIntOf("axis", 0)).Output()
	out.SetTensorType(graph.Float, nil)
	g.AddOutput(out)
	rep := runPipeline(t, m, "fold-constants", &Verifier{Seed: 3})
	var ops []string
	for _, n := range g.Nodes {
		ops = append(ops, n.OpType)
	}
	// ConcatFromSequence of constants folds (its output is a tensor); the
	// sequence it read goes with it, the RandomNormal stays.
	if !slices.Contains(ops, "RandomNormal") || slices.Contains(ops, "SequenceConstruct") && !slices.Contains(ops, "ConcatFromSequence") {
		t.Fatalf("nodes after folding: %v (changes %v)", ops, rep.Changes)
	}
	for _, v := range g.Initializers {
		if v.Const.DType == graph.SequenceOf {
			t.Fatalf("initializer %q holds a sequence", v.Name)
		}
	}
}

// TestQuantizeTensorPerChannelRuns: per-channel quantization, a channel's
// run at a time, gives the per-element formula's codes on every axis, for
// typed outputs and the 4-bit ones stored through int64.
func TestQuantizeTensorPerChannelRuns(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	shape := []int{5, 3, 4, 2}
	x := make([]float32, graph.Numel(shape))
	for i := range x {
		x[i] = float32(r.NormFloat64() * 3)
	}
	w := graph.Float32Tensor(shape, x)
	for _, dt := range []graph.DataType{graph.Int8, graph.Uint8, graph.Int16, graph.Int32, graph.Int4} {
		lo, hi, _ := kernels.QuantRange(dt)
		for axis := range shape {
			n := shape[axis]
			enc := &Encoding{DType: dt, Axis: axis, Scale: make([]float32, n), ZeroPoint: make([]int64, n)}
			for i := range enc.Scale {
				enc.Scale[i] = 0.05 + r.Float32()/10
				if dt == graph.Uint8 {
					enc.ZeroPoint[i] = 128
				}
			}
			q, err := QuantizeTensor(w, enc)
			if err != nil {
				t.Fatal(err)
			}
			got, err := q.AsFloat32()
			if err != nil {
				t.Fatal(err)
			}
			inner := graph.Numel(shape[axis+1:])
			for i, v := range x {
				k := i / inner % n
				if want := kernels.QuantizeValue(v, enc.Scale[k], int32(enc.ZeroPoint[k]), lo, hi); got[i] != float32(want) {
					t.Fatalf("%s axis %d: code %d = %g, want %d", dt.Short(), axis, i, got[i], want)
				}
			}
		}
	}
}
