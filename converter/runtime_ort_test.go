//go:build ort

package converter

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
)

// ortGraph runs a model once in ONNX Runtime with all optimizations and
// returns its outputs and the graph ORT ran (its QDQ fusions applied).
func ortGraph(t *testing.T, path string, in map[string]*graph.Tensor) (map[string]*graph.Tensor, *graph.Model) {
	t.Helper()
	opt := filepath.Join(t.TempDir(), "optimized.onnx")
	s, err := ortref.NewSessionOpts(path, ortref.Options{Threads: 1, Level: ortref.OptAll, OptimizedModel: opt})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	m, err := graph.Load(opt)
	if err != nil {
		t.Fatal(err)
	}
	return out, m
}

// conversions counts what ORT left of a QDQ model in float: QuantizeLinear
// and DequantizeLinear nodes, and DequantizeLinear nodes that feed an op
// that only moves values (a Q/DQ pair ORT did not drop).
func conversions(m *graph.Model) (q, dq, dqIntoMove int, ops map[string]int) {
	ops = map[string]int{}
	moves := map[string]bool{"Gather": true, "Split": true, "Squeeze": true, "Reshape": true, "Transpose": true}
	for _, n := range m.Graph.Nodes {
		ops[n.OpType]++
		switch n.OpType {
		case "QuantizeLinear":
			q++
		case "DequantizeLinear":
			dq++
			for _, c := range n.Output().Consumers {
				if moves[c.OpType] {
					dqIntoMove++
				}
			}
		}
	}
	return
}

// The ort placement in ONNX Runtime itself: no QLinearSoftmax, QLinearMul or
// QLinearAveragePool (the generic placement gets them), the channel shuffle
// in uint8, and outputs as close to float as the generic ones.
func TestRuntimeORTPlacementInORT(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	net := newPlacementNet(5)
	dir, model, cal := withSamples(t, net.m, 8, []int{1, 3, 16, 16}, 3)
	x, err := npy.ReadFile(filepath.Join(cal, "s000.npy"))
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]*graph.Tensor{"image": x}
	ref := ortRun(t, model, in)
	for _, rt := range []Runtime{RuntimeGeneric, RuntimeORT} {
		out := filepath.Join(dir, rt.String()+".onnx")
		if _, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, Runtime: rt, NoMeasure: true}); err != nil {
			t.Fatal(err)
		}
		got, opt := ortGraph(t, out, in)
		q, dq, dqMove, ops := conversions(opt)
		t.Logf("%s: ORT runs %d QuantizeLinear, %d DequantizeLinear (%d into movement ops); %v", rt, q, dq, dqMove, ops)
		if dqMove != 0 {
			t.Errorf("%s: %d DequantizeLinear feed movement ops in ORT's graph, want 0", rt, dqMove)
		}
		slow := ops["QLinearSoftmax"] + ops["QLinearMul"] + ops["QLinearAveragePool"]
		if rt == RuntimeORT && slow != 0 {
			t.Errorf("ort: ORT runs %d QLinearSoftmax/QLinearMul/QLinearAveragePool, want 0", slow)
		}
		if rt == RuntimeGeneric && (ops["QLinearSoftmax"] != 1 || ops["QLinearMul"] != 1) {
			t.Errorf("generic: ORT runs %d QLinearSoftmax and %d QLinearMul, want 1 each", ops["QLinearSoftmax"], ops["QLinearMul"])
		}
		if rt == RuntimeORT && q > 2 {
			t.Errorf("ort: ORT runs %d QuantizeLinear, want at most 2 (the image, after the float HardSwish and pool)", q)
		}
		for _, name := range []string{net.out, net.upRelu} {
			c := cosine(ref[name].Float32s(), got[name].Float32s())
			t.Logf("%s: %s cosine to float %.5f", rt, name, c)
			if c < 0.99 {
				t.Errorf("%s: output %s cosine %.5f to float, want >= 0.99", rt, name, c)
			}
		}
	}
}

// FastestDet (../shared/models/fastestdet) with --runtime ort: the latency
// model keeps the stem and the first stages in float, so in ONNX Runtime no
// QuantizeLinear reads the image and none sits before the MaxPool (ORT would
// move it above into a uint8 MaxPool); the Convs it keeps quantized are
// exactly the QLinearConvs ORT runs; no DequantizeLinear feeds the channel
// shuffles; no QLinearSoftmax or QLinearAveragePool; and on the reference
// input the output keeps cosine 0.95 to float (8 calibration images; the
// generic placement with full 8-bit weights gets 0.47 on an AVX2 CPU
// without VNNI, whose u8 x s8 products saturate in int16).
func TestFastestDetRuntimeORT(t *testing.T) {
	model := testdata.SharedModel(t, "fastestdet", "FastestDet.onnx")
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	fd := filepath.Dir(model)
	x, err := npy.ReadFile(filepath.Join(fd, "reference", "000000000009_input.npy"))
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]*graph.Tensor{"input.1": x}
	ref := ortRun(t, model, in)["758"].Float32s()
	out := filepath.Join(t.TempDir(), "fd.ort.onnx")
	opt := Options{Model: model, Output: out, Calib: filepath.Join(fd, "calib"), Runtime: RuntimeORT, NoMeasure: true,
		Dataset: dataset.Options{Limit: 8, Image: dataset.ImageOptions{Channels: "BGR"}}}
	rep, err := Convert(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.FloatNodes {
		if f.OpType == "Gather" {
			t.Errorf("Gather %s left in float: %s", f.Node, f.Reason)
		}
	}
	latencyConvs := 0
	for _, f := range rep.FloatNodes {
		if f.OpType == "Conv" && strings.Contains(f.Reason, "latency model") {
			latencyConvs++
		}
	}
	if !slices.ContainsFunc(rep.FloatNodes, func(f FloatNode) bool { return f.Node == `"Conv_0" (Conv)` }) {
		t.Error("the 3-channel stem Conv_0 is not kept in float")
	}
	got, g := ortGraph(t, out, in)
	q, dq, dqMove, ops := conversions(g)
	t.Logf("ORT runs %d QuantizeLinear, %d DequantizeLinear (%d into movement ops), %d QLinearConv; %d Convs float by the latency model", q, dq, dqMove, ops["QLinearConv"], latencyConvs)
	if dqMove != 0 || ops["QLinearSoftmax"] != 0 || ops["QLinearAveragePool"] != 0 || ops["QLinearConv"] != 70-latencyConvs || latencyConvs == 0 {
		t.Errorf("ORT runs %d DequantizeLinear into movement ops (want 0), %d QLinearSoftmax and %d QLinearAveragePool (want 0), %d QLinearConv (want 70 - %d)",
			dqMove, ops["QLinearSoftmax"], ops["QLinearAveragePool"], ops["QLinearConv"], latencyConvs)
	}
	for _, n := range g.Graph.Nodes {
		if n.OpType == "QuantizeLinear" && n.Input(0).Name == "input.1" {
			t.Error("a QuantizeLinear reads the image, which only the float stem reads")
		}
		if strings.Contains(n.OpType, "MaxPool") && n.Input(0).Producer != nil && n.Input(0).Producer.OpType == "QuantizeLinear" {
			t.Errorf("%s runs on uint8 from a QuantizeLinear", n.Name)
		}
	}
	c := cosine(ref, got["758"].Float32s())
	t.Logf("output cosine to float in ORT: %.5f", c)
	if c < 0.95 {
		t.Errorf("output cosine to float in ORT %.5f, want >= 0.95", c)
	}
}
