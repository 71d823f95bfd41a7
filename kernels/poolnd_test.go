package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// runPool runs one MaxPool (with indices) or AveragePool node on x.
func runPool(t *testing.T, op string, x *graph.Tensor, attrs ...*onnxpb.AttributeProto) (*graph.Tensor, *graph.Tensor) {
	t.Helper()
	m := graph.NewModel(graph.Opset{Domain: "", Version: 19})
	outs := []string{"y"}
	if op == "MaxPool" {
		outs = append(outs, "i")
	}
	n := m.Graph.AddNode(op, "pool", []*graph.Value{m.Graph.AddInput("x", graph.Float, nil)}, outs, attrs...)
	for _, o := range n.Outputs {
		m.Graph.AddOutput(o)
	}
	s, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(map[string]*graph.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	return res["y"], res["i"]
}

// TestPool3DMatches2D: a 3-D pool whose extra axis has size 1 (kernel 1) is
// the 2-D pool of the same data, on 300 random attribute sets (pads, strides,
// dilations, ceil mode, auto_pad, count_include_pad), with the extra axis in
// each of the three places: MaxPool values and indices exactly, AveragePool
// within the rounding of another summation order.
func TestPool3DMatches2D(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	checked := 0
	for trial := 0; trial < 300; trial++ {
		p, h, w := randomPool(r)
		if p.spatial != 2 {
			continue
		}
		x := graph.NewTensor(graph.Float, []int{1, 2, h, w})
		xd := x.Float32s()
		for i := range xd {
			xd[i] = float32(r.NormFloat64())
		}
		if r.IntN(4) == 0 {
			xd[r.IntN(len(xd))] = float32(math.NaN())
		}
		attrs2 := func(extra int) []*onnxpb.AttributeProto {
			ins := func(a, b, one int64) []int64 {
				v := []int64{a, b}
				if extra >= 0 {
					v = append(v[:extra], append([]int64{one}, v[extra:]...)...)
				}
				return v
			}
			pads := []int64{int64(p.padT), int64(p.padL), int64(p.padB), int64(p.padR)}
			if extra >= 0 {
				pads = append(ins(pads[0], pads[1], 0), ins(pads[2], pads[3], 0)...)
			}
			a := []*onnxpb.AttributeProto{
				graph.AttrIntsOf("kernel_shape", ins(int64(p.kh), int64(p.kw), 1)...),
				graph.AttrIntsOf("strides", ins(int64(p.sh), int64(p.sw), 1)...),
				graph.AttrIntsOf("dilations", ins(int64(p.dh), int64(p.dw), 1)...),
				graph.AttrIntOf("ceil_mode", map[bool]int64{false: 0, true: 1}[p.ceil]),
			}
			if p.autoPad != "NOTSET" {
				a = append(a, graph.AttrStringOf("auto_pad", p.autoPad))
			} else {
				a = append(a, graph.AttrIntsOf("pads", pads...))
			}
			return a
		}
		want, wantIdx := runPool(t, "MaxPool", x, attrs2(-1)...)
		avgAttrs := append(attrs2(-1), graph.AttrIntOf("count_include_pad", map[bool]int64{false: 0, true: 1}[p.countIncludePad]))
		wantAvg, _ := runPool(t, "AveragePool", x, avgAttrs...)
		for extra := 0; extra < 3; extra++ {
			shape := []int{h, w}
			shape = append(shape[:extra], append([]int{1}, shape[extra:]...)...)
			x3 := graph.Float32Tensor(append([]int{1, 2}, shape...), xd)
			got, gotIdx := runPool(t, "MaxPool", x3, attrs2(extra)...)
			gotAvg, _ := runPool(t, "AveragePool", x3, append(attrs2(extra), graph.AttrIntOf("count_include_pad", map[bool]int64{false: 0, true: 1}[p.countIncludePad]))...)
			if got.Len() != want.Len() || gotAvg.Len() != wantAvg.Len() {
				t.Fatalf("trial %d extra axis %d: shapes %v / %v, 2-D %v", trial, extra, got.Shape, gotAvg.Shape, want.Shape)
			}
			g, wv := got.Float32s(), want.Float32s()
			gi, wi := gotIdx.Int64s(), wantIdx.Int64s()
			ga, wa := gotAvg.Float32s(), wantAvg.Float32s()
			for i := range wv {
				if math.Float32bits(g[i]) != math.Float32bits(wv[i]) || gi[i] != wi[i] {
					t.Fatalf("trial %d (%+v, %dx%d) extra axis %d: MaxPool[%d] = %v at %d, 2-D %v at %d", trial, *p, h, w, extra, i, g[i], gi[i], wv[i], wi[i])
				}
				if d := math.Abs(float64(ga[i] - wa[i])); d > 1e-5*math.Max(1, math.Abs(float64(wa[i]))) && !(ga[i] != ga[i] && wa[i] != wa[i]) {
					t.Fatalf("trial %d (%+v, %dx%d) extra axis %d: AveragePool[%d] = %v, 2-D %v", trial, *p, h, w, extra, i, ga[i], wa[i])
				}
			}
			checked++
		}
	}
	if checked < 300 {
		t.Fatalf("only %d comparisons ran", checked)
	}
}

// TestAveragePoolCountsAutoPadding: with auto_pad SAME_* and
// count_include_pad, the automatic padding counts on both sides (ONNX
// Runtime 1.30 gives these values for a 4x4 window over a 5x5 plane of ones),
// in 2-D and in 3-D.
func TestAveragePoolCountsAutoPadding(t *testing.T) {
	ones := make([]float32, 25)
	for i := range ones {
		ones[i] = 1
	}
	want := map[string][]float32{
		"SAME_LOWER": {0.25, 0.375, 0.5, 0.5, 0.375, 0.375, 0.5625, 0.75, 0.75, 0.5625},
		"SAME_UPPER": {0.5625, 0.75, 0.75, 0.5625, 0.375, 0.75, 1, 1, 0.75, 0.5},
	}
	for mode, w := range want {
		for _, shape := range [][]int{{1, 1, 5, 5}, {1, 1, 1, 5, 5}} {
			ks := []int64{4, 4}
			if len(shape) == 5 {
				ks = []int64{1, 4, 4}
			}
			y, _ := runPool(t, "AveragePool", graph.Float32Tensor(shape, ones), graph.AttrIntsOf("kernel_shape", ks...),
				graph.AttrStringOf("auto_pad", mode), graph.AttrIntOf("count_include_pad", 1))
			for i, v := range w {
				if y.Float32s()[i] != v {
					t.Fatalf("%s %v: first rows %v, want %v", mode, shape, y.Float32s()[:10], w)
				}
			}
		}
	}
}
