package converter

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/passes"
	"github.com/onnxq/onnxq/testmodels"
)

// The cost classes: a 3x3 stem on 3 channels and a depthwise Conv run slower
// in ONNX Runtime's integer kernels on AVX2 without VNNI, a wide pointwise
// Conv and a 7x7 stem (ResNet-50's: 2.3 against 4.1 ms) faster; a Conv
// without a static output shape is left to the op rules.
func TestConvCosts(t *testing.T) {
	b := testmodels.NewBuilder(1, 13)
	x := b.Input("image", 1, 3, 128, 128)
	stem := b.Conv(x, 24, 3, testmodels.ConvOpts{Stride: 2, Pad: 1})
	dw := b.Conv(stem, 24, 3, testmodels.ConvOpts{Pad: 1, Group: 24})
	wide := b.Conv(b.Conv(dw, 256, 1, testmodels.ConvOpts{}), 256, 1, testmodels.ConvOpts{})
	b.Output(wide)
	stem7 := b.Conv(x, 64, 7, testmodels.ConvOpts{Stride: 2, Pad: 3}) // ResNet's: 147 products per output
	b.Output(stem7)
	withShapes(t, b.Finish())
	for _, c := range []struct {
		name      string
		v         *graph.Value
		intSlower bool
	}{{"stem", stem, true}, {"depthwise", dw, true}, {"wide pointwise", wide, false}, {"7x7 stem", stem7, false}} {
		f, i, ok := convCosts(c.v.Producer)
		if !ok {
			t.Fatalf("%s: no cost estimate", c.name)
		}
		if (i > f) != c.intSlower {
			t.Errorf("%s: integer %.0f ns, float %.0f ns; want integer slower = %v", c.name, i, f, c.intSlower)
		}
	}
	// 64x64x24 outputs: the stem's 1.77M multiply-adds at 0.048 and 0.07 ns.
	macs := 24.0 * 27 * 64 * 64
	if f, i, _ := convCosts(stem.Producer); math.Abs(f-floatStemMAC*macs) > 1e-6*f || math.Abs(i-intStemMAC*macs) > 1e-6*i {
		t.Errorf("stem: float %.0f, integer %.0f ns", f, i)
	}
	stem.SetTensorType(graph.Float, nil) // shape unknown
	if _, _, ok := convCosts(stem.Producer); ok {
		t.Error("a Conv without a static output shape got a cost estimate")
	}
}

// latencyNet is a detector stem in the style of FastestDet: a strided 3x3
// Conv on the 3-channel image, a MaxPool, a depthwise Conv whose output a
// Concat joins to the pool's, then wide pointwise Convs.
type latencyNet struct {
	m                          *graph.Model
	stem, pool, dw, cat        *graph.Value
	wide1, wide2, wide3, image *graph.Value
}

func newLatencyNet(t *testing.T) latencyNet {
	b := testmodels.NewBuilder(3, 13)
	n := latencyNet{image: b.Input("image", 1, 3, 128, 128)}
	n.stem = b.Relu(b.Conv(n.image, 24, 3, testmodels.ConvOpts{Stride: 2, Pad: 1}))
	n.pool = b.MaxPool(n.stem, 2, 2, 0)
	n.dw = b.Relu(b.Conv(n.pool, 24, 3, testmodels.ConvOpts{Pad: 1, Group: 24}))
	n.cat = b.Concat(1, n.dw, n.pool)
	n.wide1 = b.Relu(b.Conv(n.cat, 256, 1, testmodels.ConvOpts{}))
	n.wide2 = b.Relu(b.Conv(n.wide1, 256, 1, testmodels.ConvOpts{}))
	n.wide3 = b.Conv(n.wide2, 256, 1, testmodels.ConvOpts{})
	b.Output(n.wide3)
	n.m = withShapes(t, b.Finish())
	return n
}

// withShapes records every value's static shape, as convert's passes do.
func withShapes(t *testing.T, m *graph.Model) *graph.Model {
	t.Helper()
	ps, err := passes.Parse("infer-shapes", passes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ps[0].Apply(m, passes.NewState()); err != nil {
		t.Fatal(err)
	}
	return m
}

// conv is the Conv that computes v (through a fused Relu).
func conv(v *graph.Value) *graph.Node {
	n := v.Producer
	if n.OpType == "Relu" {
		n = n.Input(0).Producer
	}
	return n
}

// The latency placement keeps the stem and the depthwise Conv in float up to
// the Concat, which runs in float with them and where one Q starts the
// integer part: a stem alone in float would put a Q after the MaxPool, which
// ONNX Runtime moves above it into a slow uint8 MaxPool. The wide pointwise
// Convs stay quantized, and the image, read only by a float Conv, gets no
// Q/DQ.
func TestORTLatencyPlacement(t *testing.T) {
	net := newLatencyNet(t)
	q := quantizePlacementModel(t, net.m, []int{1, 3, 128, 128}, RuntimeORT)
	latency := map[string]bool{}
	for _, f := range q.Report.FloatNodes {
		if strings.Contains(f.Reason, "latency model") {
			latency[f.Node] = true
		}
	}
	for _, v := range []*graph.Value{net.stem, net.dw} {
		if n := conv(v); !latency[n.String()] {
			t.Errorf("%s is not kept float by the latency model (float: %v)", n, latency)
		}
	}
	if len(latency) != 2 {
		t.Errorf("latency model kept %d nodes float, want the stem and the depthwise Conv: %v", len(latency), latency)
	}
	catFloat := false
	for _, f := range q.Report.FloatNodes {
		catFloat = catFloat || (f.Node == net.cat.Producer.String() && strings.Contains(f.Reason, "all its inputs come from float nodes"))
	}
	if !catFloat {
		t.Errorf("the Concat %s does not run in float with its inputs", net.cat.Producer)
	}
	for _, v := range []*graph.Value{net.wide1, net.wide2, net.wide3} {
		w := conv(v).Input(1).Name
		if q.Plan.Weights[w] == nil {
			t.Errorf("the wide Conv weight %q is not quantized", w)
		}
	}
	for _, v := range []*graph.Value{net.image, net.stem, net.pool, net.dw} {
		if enc := q.Plan.Activations[v.Name]; enc != nil {
			t.Errorf("%q in the float stage is quantized (scale %g)", v.Name, enc.Scale[0])
		}
	}
	if q.Plan.Activations[net.cat.Name] == nil {
		t.Errorf("the Concat output %q, where the integer part starts, is not quantized", net.cat.Name)
	}
	// The generic placement quantizes all of it.
	gen := quantizePlacementModel(t, net.m, []int{1, 3, 128, 128}, RuntimeGeneric)
	for _, v := range []*graph.Value{net.image, net.pool, net.dw, net.cat} {
		if gen.Plan.Activations[v.Name] == nil {
			t.Errorf("generic: %q is not quantized", v.Name)
		}
	}
}

// The cost of a placement counts the traps: a MaxPool with a float input and
// a quantized output, and an AveragePool between DQ and Q.
func TestORTLatencyCostTraps(t *testing.T) {
	net := newLatencyNet(t)
	lm := newLatencyModel(net.m.Graph)
	stemOnly := map[*graph.Node]bool{conv(net.stem): true}
	p := buildPlan(net.m, RuntimeORT, stemOnly)
	if !slicesContains(p.observe, net.pool.Name) {
		t.Fatalf("with only the stem float, the MaxPool output %q is not quantized", net.pool.Name)
	}
	convs := 0.0
	for _, c := range lm.convs {
		if c == conv(net.stem) {
			convs += lm.floatCost[c]
		} else {
			convs += lm.intCost[c]
		}
	}
	// The Q after the MaxPool, its uint8 MaxPool in NCHW, and no Q on the image.
	pool := elems(net.pool)
	want := convs + boundaryElem*pool + maxPoolU8Out*pool
	if got := lm.cost(p, stemOnly); math.Abs(got-want) > 1e-9*want {
		t.Errorf("cost with the stem float: %.0f ns, want %.0f", got, want)
	}
	all := lm.cost(buildPlan(net.m, RuntimeORT, nil), nil)
	if all >= lm.cost(p, stemOnly) {
		t.Errorf("all integer %.0f ns is not below the stem alone in float %.0f ns (the MaxPool trap)", all, lm.cost(p, stemOnly))
	}
}

// A model too small for the integer kernels' fixed costs keeps the op-rule
// placement, with a warning, rather than ending up with nothing quantized.
func TestORTLatencyFallback(t *testing.T) {
	net := newPlacementNet(5)
	q := quantizePlacement(t, net, RuntimeORT)
	found := false
	for _, w := range q.Report.Warnings {
		found = found || strings.Contains(w, "latency model estimates this model faster in float")
	}
	if !found {
		t.Errorf("no fallback warning in %q", q.Report.Warnings)
	}
	if q.Plan.Activations[net.stem] == nil {
		t.Errorf("the stem output %q is not quantized under the op rules", net.stem)
	}
}

func quantizePlacementModel(t *testing.T, m *graph.Model, shape []int, rt Runtime) *Quantized {
	t.Helper()
	_, model, cal := withSamples(t, m, 4, shape, 3)
	q, err := Quantize(context.Background(), Options{Model: model, Calib: cal, Runtime: rt, NoMeasure: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func slicesContains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
