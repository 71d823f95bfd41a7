package converter

import (
	"context"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

// placementNet is a small detector in the style of FastestDet: a ShuffleNet
// channel shuffle (Reshape -> Transpose -> Reshape -> Gather), an exported
// HardSwish (x * Clip(x + 3, 0, 6) / 6), an AveragePool, an upsampling
// ConvTranspose + Relu, and a head whose Sigmoid and Softmax outputs a
// Concat returns as the model output.
type placementNet struct {
	m                                      *graph.Model
	stem, reshape1, transpose, reshape2    string
	gather0, gather1                       string
	clip, mul, div, pool, softmax, sigmoid string
	out, up, upRelu, upWeight, convWeight  string
	softmaxIn                              string
}

func newPlacementNet(seed uint64) placementNet {
	b := testmodels.NewBuilder(seed, 13)
	x := b.Input("image", 1, 3, 16, 16)
	a := b.Relu(b.Conv(x, 8, 3, testmodels.ConvOpts{Pad: 1}))
	r1 := b.Reshape(a, 4, 2, 256)
	t := b.Transpose(r1, 1, 0, 2)
	r2 := b.Reshape(t, 2, 1, 4, 16, 16)
	g0, g1 := b.Gather(r2, 0, 0), b.Gather(r2, 0, 1)
	c1 := b.Relu(b.Conv(g1, 4, 1, testmodels.ConvOpts{}))
	cat := b.Concat(1, g0, c1)
	h := b.Conv(cat, 8, 1, testmodels.ConvOpts{})
	clip := b.Relu6(b.Binary("Add", h, b.Scalar("three", 3)))
	mul := b.Binary("Mul", h, clip)
	div := b.Binary("Div", mul, b.Scalar("six", 6))
	pool := b.AveragePool(div, 3, 1, 1)
	c2 := b.Relu(b.Conv(pool, 8, 1, testmodels.ConvOpts{}))
	sig := b.Sigmoid(b.Conv(c2, 1, 1, testmodels.ConvOpts{}))
	clsIn := b.Conv(c2, 4, 1, testmodels.ConvOpts{})
	sm := b.Softmax(b.Transpose(clsIn, 0, 2, 3, 1))
	out := b.Concat(1, sig, b.Transpose(sm, 0, 3, 1, 2))
	b.Output(out)
	up := b.ConvTranspose(c2, 4, 2, 2)
	upRelu := b.Relu(up)
	b.Output(upRelu)
	return placementNet{
		m: b.Finish(), stem: a.Name, reshape1: r1.Name, transpose: t.Name, reshape2: r2.Name,
		gather0: g0.Name, gather1: g1.Name, clip: clip.Name, mul: mul.Name, div: div.Name, pool: pool.Name,
		softmax: sm.Name, softmaxIn: sm.Producer.Input(0).Name, sigmoid: sig.Name, out: out.Name,
		up: up.Name, upRelu: upRelu.Name, upWeight: up.Producer.Input(1).Name, convWeight: h.Producer.Input(1).Name,
	}
}

func quantizePlacement(t *testing.T, net placementNet, rt Runtime) *Quantized {
	t.Helper()
	_, model, cal := withSamples(t, net.m, 8, []int{1, 3, 16, 16}, 3)
	q, err := Quantize(context.Background(), Options{Model: model, Calib: cal, Runtime: rt, NoMeasure: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// A channel shuffle moves values only: every tensor of the chain, the Gathers'
// outputs included, carries the stem's encoding, whatever the runtime, so
// runtimes run it in integers without requantizing (ONNX Runtime drops the
// Q/DQ pairs around Reshape, Transpose and Gather when the scales agree).
func TestPassThroughChainSharesEncoding(t *testing.T) {
	net := newPlacementNet(5)
	for _, rt := range []Runtime{RuntimeGeneric, RuntimeORT} {
		q := quantizePlacement(t, net, rt)
		root := q.Plan.Activations[net.stem]
		if root == nil {
			t.Fatalf("%s: the stem output %q is not quantized", rt, net.stem)
		}
		for _, name := range []string{net.reshape1, net.transpose, net.reshape2, net.gather0, net.gather1} {
			enc := q.Plan.Activations[name]
			if enc == nil {
				t.Errorf("%s: %q is not quantized", rt, name)
				continue
			}
			if enc.Scale[0] != root.Scale[0] || enc.ZeroPoint[0] != root.ZeroPoint[0] {
				t.Errorf("%s: %q has scale %g zero point %d, the stem %g %d", rt, name, enc.Scale[0], enc.ZeroPoint[0], root.Scale[0], root.ZeroPoint[0])
			}
			if !q.SharesEncoding(name) {
				t.Errorf("%s: %q does not share the stem's encoding", rt, name)
			}
		}
		for _, f := range q.Report.FloatNodes {
			if f.OpType == "Gather" {
				t.Errorf("%s: Gather %s left in float: %s", rt, f.Node, f.Reason)
			}
		}
	}
}

// The generic placement quantizes every op with an integer form; the ort one
// leaves in float what ONNX Runtime's CPU kernels do not run faster in
// integers, with no Q/DQ pair inside a float chain, and narrows int8 weights
// to 7 bits.
func TestRuntimeORTPlacement(t *testing.T) {
	net := newPlacementNet(5)
	gen := quantizePlacement(t, net, RuntimeGeneric)
	ort := quantizePlacement(t, net, RuntimeORT)

	for _, name := range []string{net.clip, net.mul, net.div, net.pool, net.softmax, net.out} {
		if gen.Plan.Activations[name] == nil {
			t.Errorf("generic: %q is not quantized", name)
		}
	}
	if gen.Plan.Weights[net.upWeight] == nil {
		t.Errorf("generic: the ConvTranspose weight %q is not quantized", net.upWeight)
	}
	// Float in ONNX Runtime: the HardSwish chain up to the pool (one DQ
	// before the Add, one Q after the pool), the Softmax and the head
	// Concat returning the model output, and the ConvTranspose with its Relu.
	for _, name := range []string{net.clip, net.mul, net.div, net.softmax, net.sigmoid, net.out, net.up, net.upRelu} {
		if enc := ort.Plan.Activations[name]; enc != nil {
			t.Errorf("ort: %q is quantized (scale %g)", name, enc.Scale[0])
		}
	}
	for _, name := range []string{net.pool, net.softmaxIn, net.stem} {
		if ort.Plan.Activations[name] == nil {
			t.Errorf("ort: %q is not quantized", name)
		}
	}
	if ort.Plan.Weights[net.upWeight] != nil {
		t.Errorf("ort: the ConvTranspose weight %q is quantized", net.upWeight)
	}
	floatOps := map[string]int{}
	for _, f := range ort.Report.FloatNodes {
		if strings.Contains(f.Reason, "--runtime ort") {
			floatOps[f.OpType]++
		}
	}
	want := map[string]int{"Clip": 1, "Mul": 1, "AveragePool": 1, "Softmax": 1, "Concat": 1, "ConvTranspose": 1, "Relu": 1}
	for op, n := range want {
		if floatOps[op] != n {
			t.Errorf("ort: %d %s nodes left in float for ONNX Runtime, want %d (all: %v)", floatOps[op], op, n, floatOps)
		}
	}
	if len(floatOps) != len(want) {
		t.Errorf("ort: float for ONNX Runtime %v, want %v", floatOps, want)
	}

	// 7-bit weights under ort (x86 without VNNI saturates u8 x s8 pairs in
	// int16), the full int8 range under generic.
	codes := func(q *Quantized, w string) (lo, hi int8) {
		v := q.Model.Graph.Value(w + "_quantized")
		if v == nil || v.Const == nil || v.Const.DType != graph.Int8 {
			t.Fatalf("%q: no int8 initializer %q_quantized", w, w)
		}
		for _, c := range v.Const.Data().([]int8) {
			lo, hi = min(lo, c), max(hi, c)
		}
		return lo, hi
	}
	if lo, hi := codes(gen, net.convWeight); lo > -127 && hi < 127 {
		t.Errorf("generic: weight codes in [%d, %d], want one channel at +-127", lo, hi)
	}
	if lo, hi := codes(ort, net.convWeight); lo < -64 || hi > 63 || (lo > -63 && hi < 63) {
		t.Errorf("ort: weight codes in [%d, %d], want 7 bits reaching +-63", lo, hi)
	}
}

func TestParseRuntime(t *testing.T) {
	for i, name := range Runtimes {
		rt, err := ParseRuntime(name)
		if err != nil || rt != Runtime(i) || rt.String() != name {
			t.Errorf("ParseRuntime(%q) = %v, %v", name, rt, err)
		}
	}
	if _, err := ParseRuntime("tensorrt"); err == nil || !strings.Contains(err.Error(), "generic, ort, ort-vnni") {
		t.Errorf("ParseRuntime(tensorrt): %v", err)
	}
}

// A classifier's last Gemm returns the logits: under ort its output is not
// requantized (ONNX Runtime's QGemm writes float), its input and weight are.
func TestRuntimeORTGemmTail(t *testing.T) {
	m := testmodels.ResNetCIFAR(1, 20, false)
	var gemm *graph.Node
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Gemm" {
			gemm = n
		}
	}
	// The builder names the output through an Identity the passes remove.
	out := m.Graph.Outputs[0]
	if gemm == nil || out.Producer.OpType != "Identity" || out.Producer.Input(0) != gemm.Output() {
		t.Fatal("the CIFAR ResNet does not end in a Gemm")
	}
	logits, in, w := out.Name, gemm.Input(0).Name, gemm.Input(1).Name
	_, model, cal := withSamples(t, m, 4, []int{1, 3, 32, 32}, 2)
	for _, rt := range []Runtime{RuntimeGeneric, RuntimeORT} {
		q, err := Quantize(context.Background(), Options{Model: model, Calib: cal, Runtime: rt, NoMeasure: true}, false)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := q.Plan.Activations[logits] != nil, rt == RuntimeGeneric; got != want {
			t.Errorf("%s: logits quantized %v, want %v", rt, got, want)
		}
		if q.Plan.Activations[in] == nil || q.Plan.Weights[w] == nil {
			t.Errorf("%s: the Gemm's input or weight is not quantized", rt)
		}
	}
}
