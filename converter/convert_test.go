package converter

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/testmodels"
	"google.golang.org/protobuf/proto"
)

// randomSamples writes n seeded N(0,1) samples of a shape as .npy files.
func randomSamples(t testing.TB, dir string, n int, shape []int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 9))
	for i := 0; i < n; i++ {
		x := graph.NewTensor(graph.Float, shape)
		for j, d := 0, x.Float32s(); j < len(d); j++ {
			d[j] = float32(r.NormFloat64())
		}
		if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf("s%03d.npy", i)), x); err != nil {
			t.Fatal(err)
		}
	}
}

// withSamples saves m as dir/m.onnx and writes n random samples of shape into
// dir/calib.
func withSamples(t *testing.T, m *graph.Model, n int, shape []int, seed uint64) (dir, model, cal string) {
	t.Helper()
	dir = t.TempDir()
	model = filepath.Join(dir, "m.onnx")
	if err := graph.Save(m, model); err != nil {
		t.Fatal(err)
	}
	cal = filepath.Join(dir, "calib")
	mustMkdir(t, cal)
	randomSamples(t, cal, n, shape, seed)
	return dir, model, cal
}

func convertTestModel(t *testing.T, m *graph.Model, shape []int, obs calib.Config) (string, string, *Report) {
	t.Helper()
	dir, model, cal := withSamples(t, m, 16, shape, 1)
	out := filepath.Join(dir, "model.qdq.onnx")
	rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return model, out, rep
}

func TestConvertTestModel(t *testing.T) {
	model, out, rep := convertTestModel(t, testmodels.ConvBNReLU(1), []int{1, 3, 32, 32}, calib.Config{})
	q, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, n := range q.Graph.Nodes {
		ops[n.OpType]++
	}
	t.Logf("QDQ model ops: %v; %d tensors quantized; float nodes %v", ops, len(rep.Tensors), rep.FloatNodes)
	if ops["QuantizeLinear"] == 0 || ops["DequantizeLinear"] <= ops["QuantizeLinear"] || ops["BatchNormalization"] != 0 {
		t.Errorf("ops %v", ops)
	}
	// Weights are stored quantized: int8 initializers, no float conv weights.
	for _, n := range q.Graph.Nodes {
		if n.OpType == "Conv" {
			w := n.Input(1)
			if w.Producer == nil || w.Producer.OpType != "DequantizeLinear" || w.Producer.Input(0).Const.DType != graph.Int8 {
				t.Errorf("conv %s weight is not int8 + DequantizeLinear", n)
			}
			if b := n.Input(2); b == nil || b.Producer == nil || b.Producer.Input(0).Const.DType != graph.Int32 {
				t.Errorf("conv %s bias is not int32 + DequantizeLinear", n)
			}
		}
	}
	// Quantized outputs stay close to the float model's.
	x := graph.NewTensor(graph.Float, []int{1, 3, 32, 32})
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = float32(math.Sin(float64(i) * 0.1))
	}
	fm, _ := graph.Load(model)
	a := runOnce(t, fm, x)
	b := runOnce(t, q, x)
	if c := cosine(a, b); c < 0.99 {
		t.Errorf("cosine(float, quantized) = %.4f", c)
	} else {
		t.Logf("cosine(float, quantized) = %.5f", c)
	}
	// Determinism: a second conversion gives the same bytes.
	_, out2, _ := convertTestModel(t, testmodels.ConvBNReLU(1), []int{1, 3, 32, 32}, calib.Config{})
	b1, _ := graph.Load(out)
	b2, _ := graph.Load(out2)
	m1, _ := graph.Marshal(b1)
	m2, _ := graph.Marshal(b2)
	if string(m1) != string(m2) {
		t.Error("two conversions differ")
	}
}

func runOnce(t *testing.T, m *graph.Model, x *graph.Tensor) []float32 {
	t.Helper()
	s, err := kernels.NewSession(m, kernels.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(map[string]*graph.Tensor{m.Graph.Inputs[0].Name: x})
	if err != nil {
		t.Fatal(err)
	}
	return out[m.Graph.Outputs[0].Name].Float32s()
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// TestEmpiricalBiasCorrection: with coarse (int4) weights, correcting biases by
// the measured input means removes most of the systematic output shift.
func TestEmpiricalBiasCorrection(t *testing.T) {
	dir, model, cal := withSamples(t, testmodels.ConvBNReLU(3), 32, []int{1, 3, 32, 32}, 5)
	shift := func(bc bool) float64 {
		out := filepath.Join(dir, fmt.Sprintf("q%v.onnx", bc))
		rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, WeightType: graph.Int4, ActType: graph.Uint16, BiasCorrection: bc})
		if err != nil {
			t.Fatal(err)
		}
		corrected := 0
		for _, c := range rep.Passes {
			if c.Pass == "bias-correction (empirical)" {
				corrected = c.Count
			}
		}
		if bc && corrected == 0 {
			t.Fatal("no bias corrected")
		}
		fm, _ := graph.Load(model)
		qm, _ := graph.Load(out)
		// Mean output difference over held-back inputs from the same distribution.
		r := rand.New(rand.NewPCG(77, 1))
		var total float64
		var n int
		for s := 0; s < 16; s++ {
			x := graph.NewTensor(graph.Float, []int{1, 3, 32, 32})
			for j, d := 0, x.Float32s(); j < len(d); j++ {
				d[j] = float32(r.NormFloat64())
			}
			f, q := runOnce(t, fm, x), runOnce(t, qm, x)
			for i := range f {
				total += float64(q[i] - f[i])
				n++
			}
		}
		return math.Abs(total / float64(n))
	}
	before, after := shift(false), shift(true)
	t.Logf("mean output shift with int4 weights: %.4g without bias correction, %.4g with", before, after)
	if after > before/2 {
		t.Errorf("bias correction did not halve the shift: %.4g -> %.4g", before, after)
	}
}

// TestBiasCorrectionPerWeightType: bias correction measures each layer against
// the encoding that layer gets, so a layer set to int4 by an override is
// corrected exactly as under a global int4 run, and the others as under int8.
func TestBiasCorrectionPerWeightType(t *testing.T) {
	dir, model, cal := withSamples(t, testmodels.MobileNetV2Block(1), 8, []int{1, 8, 16, 16}, 3)
	// biases maps each compute node to its stored int32 bias.
	biases := func(wt graph.DataType, js string) map[string][]int32 {
		var f *overrides.File
		if js != "" {
			var err error
			if f, err = overrides.Parse([]byte(js)); err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(dir, fmt.Sprintf("q%d_%d.onnx", len(js), wt))
		if _, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, WeightType: wt, BiasCorrection: true, Overrides: f}); err != nil {
			t.Fatal(err)
		}
		q, _ := graph.Load(out)
		got := map[string][]int32{}
		for _, n := range q.Graph.Nodes {
			if b := n.Input(2); (n.OpType == "Conv" || n.OpType == "Gemm") && b != nil && b.Producer != nil && b.Producer.OpType == "DequantizeLinear" {
				got[n.Name] = graph.Elems[int32](b.Producer.Input(0).Const)
			}
		}
		return got
	}
	mixed := biases(graph.Int8, `{"version": 1, "nodes": {"Conv_1": {"weight_dtype": "int4"}}}`)
	all4, all8 := biases(graph.Int4, ""), biases(graph.Int8, "")
	if len(mixed) != 4 || slices.Equal(all4["Conv_1"], all8["Conv_1"]) {
		t.Fatalf("%d int32 biases; Conv_1 int4 %v int8 %v", len(mixed), all4["Conv_1"], all8["Conv_1"])
	}
	for node, b := range mixed {
		want := all8[node]
		if node == "Conv_1" {
			want = all4[node]
		}
		if !slices.Equal(b, want) {
			t.Errorf("%s: bias %v, want %v", node, b, want)
		}
	}
}

// TestBiasFitsInt32: a near-dead channel (tiny weights, large bias) would
// saturate its int32 bias at scale s_in x s_w; the converter raises that
// channel's weight scale instead, so the output keeps the bias.
func TestBiasFitsInt32(t *testing.T) {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 13})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{1, 2, 4, 4})
	w := g.AddInitializer("w", graph.Float32Tensor([]int{2, 2, 1, 1}, []float32{0.5, -0.25, 3e-8, -1e-8}))
	b := g.AddInitializer("b", graph.Float32Tensor([]int{2}, []float32{0.1, 40}))
	n := g.AddNode("Conv", "conv", []*graph.Value{x, w, b}, []string{"y"})
	g.AddOutput(n.Output())
	dir, model, cal := withSamples(t, m, 4, []int{1, 2, 4, 4}, 2)
	out := filepath.Join(dir, "q.onnx")
	rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, ActType: graph.Uint16, WeightType: graph.Int16})
	if err != nil {
		t.Fatal(err)
	}
	adjusted := ""
	for _, tr := range rep.Tensors {
		if tr.Name == "w" {
			adjusted = tr.Adjusted
		}
	}
	if adjusted != "scale raised on 1 channel(s) so the int32 bias fits" || len(rep.Warnings) != 1 {
		t.Errorf("report: adjusted %q, warnings %v", adjusted, rep.Warnings)
	}
	q, _ := graph.Load(out)
	in := graph.NewTensor(graph.Float, []int{1, 2, 4, 4})
	for i, d := 0, in.Float32s(); i < len(d); i++ {
		d[i] = float32(i%5) - 2
	}
	f, got := runOnce(t, m, in), runOnce(t, q, in)
	for i := 16; i < 32; i++ { // channel 1: the bias, 40
		if math.Abs(float64(got[i]-f[i])) > 0.01 {
			t.Fatalf("channel 1 output %v, float %v: the bias saturated", got[i], f[i])
		}
	}
}

// TestWeightOnly: --weight-only needs no calibration data, stores every weight
// quantized behind a DequantizeLinear and leaves activations and biases float.
func TestWeightOnly(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	m := testmodels.MobileNetV2Block(1)
	if err := graph.Save(m, model); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "q.onnx")
	rep, err := Convert(context.Background(), Options{Model: model, Output: out, WeightOnly: true, WeightType: graph.Int8})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := graph.Load(out)
	ops := map[string]int{}
	for _, n := range q.Graph.Nodes {
		ops[n.OpType]++
		if n.OpType == "DequantizeLinear" && (n.Input(0).Const == nil || n.Input(0).Const.DType != graph.Int8) {
			t.Errorf("%s dequantizes a non-int8 tensor", n)
		}
	}
	if !rep.WeightOnly || rep.Samples != 0 || ops["QuantizeLinear"] != 0 || ops["DequantizeLinear"] != 4 {
		t.Errorf("weight-only %v, %d samples, ops %v", rep.WeightOnly, rep.Samples, ops)
	}
	x := graph.NewTensor(graph.Float, []int{1, 8, 16, 16})
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = float32(math.Sin(float64(i) * 0.3))
	}
	if c := cosine(runOnce(t, m, x), runOnce(t, q, x)); c < 0.999 {
		t.Errorf("cosine to float %.5f with int8 weights only", c)
	}
}

// TestHistogramObserversDeterministic: the histogram observers give the same
// model whether they count on the worker goroutine beside the run (all
// threads), in the run itself (one thread), or both (large tensors in the
// run), and twice in a row.
func TestHistogramObserversDeterministic(t *testing.T) {
	dir, model, cal := withSamples(t, testmodels.MobileNetV2Block(1), 24, []int{1, 8, 16, 16}, 5)
	saved := asyncMax
	defer func() { asyncMax = saved }()
	for _, kind := range []string{"entropy", "percentile", "mse"} {
		var first []byte
		for i, threads := range []int{0, 1, 0, 0} {
			asyncMax = saved
			if i == 3 {
				asyncMax = 1500 // tensors of 2048 values counted in the run
			}
			b := convertedBytes(t, Options{Model: model, Output: filepath.Join(dir, fmt.Sprintf("%s%d.onnx", kind, i)), Calib: cal, Observer: calib.Config{Kind: kind}, Threads: threads})
			if first == nil {
				first = b
			} else if !bytes.Equal(first, b) {
				t.Errorf("%s: conversion %d (threads %d) differs from the first", kind, i, threads)
			}
		}
	}
}

type panickingObserver struct{}

func (panickingObserver) Observe([]float32)                { panic("index out of range [9] with length 9") }
func (panickingObserver) Range() (float32, float32, error) { return 0, 0, nil }

// TestObserverPanicIsAnError: a failure on the observer worker goroutine comes
// back as the tensor's error, not a crash of the process.
func TestObserverPanicIsAnError(t *testing.T) {
	err := observe("conv1_out", panickingObserver{}, graph.NewTensor(graph.Float, []int{3}))
	if err == nil || err.Error() != `tensor "conv1_out": observer failed: index out of range [9] with length 9` {
		t.Errorf("got %v", err)
	}
}

// TestConvertControlFlowSaysWhatStaysFloat: a model with an If converts; the
// If is reported as control flow whose subgraphs stay in float, and the
// Convs around it are quantized.
func TestConvertControlFlowSaysWhatStaysFloat(t *testing.T) {
	m := testmodels.ConvBNReLU(1)
	g := m.Graph
	out := g.Outputs[0]
	g.Outputs = nil
	sum := g.AddNode("ReduceSum", "sum", []*graph.Value{out}, []string{"s"}, graph.AttrIntOf("keepdims", 0)).Output()
	cond := g.AddNode("Greater", "gt", []*graph.Value{sum, g.AddInitializer("zero", graph.Float32Tensor([]int{}, []float32{0}))}, []string{"cond"}).Output()
	branch := func(name, op string) *onnxpb.AttributeProto {
		vi := &onnxpb.ValueInfoProto{Name: proto.String(name + "_y")}
		gp := &onnxpb.GraphProto{Name: proto.String(name), Output: []*onnxpb.ValueInfoProto{vi},
			Node: []*onnxpb.NodeProto{{OpType: proto.String(op), Input: []string{out.Name}, Output: []string{name + "_y"}}}}
		return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: gp}
	}
	y := g.AddNode("If", "if", []*graph.Value{cond}, []string{"y"}, branch("then_branch", "Sigmoid"), branch("else_branch", "Neg")).Output()
	y.SetTensorType(graph.Float, nil)
	g.AddOutput(y)
	_, _, rep := convertTestModel(t, m, []int{1, 3, 32, 32}, calib.Config{})
	var reason string
	for _, f := range rep.FloatNodes {
		if f.OpType == "If" {
			reason = f.Reason
		}
	}
	if !strings.Contains(reason, "control flow") || !strings.Contains(reason, "2 nodes") {
		t.Fatalf("the If's reason: %q (float nodes %v)", reason, rep.FloatNodes)
	}
	if len(rep.Tensors) == 0 {
		t.Fatal("nothing quantized")
	}
}
