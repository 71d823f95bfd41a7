package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/testmodels"
)

func TestLegacyAlign(t *testing.T) {
	for _, c := range []struct {
		a, b      []int
		broadcast bool
		axis      int
		hasAxis   bool
		want      []int // nil: an error
	}{
		{[]int{2, 3, 4, 5}, []int{2, 3, 4, 5}, false, 0, false, []int{2, 3, 4, 5}},
		{[]int{2, 3, 4, 5}, []int{5}, false, 0, false, nil}, // no broadcast attribute: equal shapes only
		{[]int{2, 3, 4, 5}, []int{}, true, 0, false, []int{}},
		{[]int{2, 3, 4, 5}, []int{1, 1}, true, 0, false, []int{}}, // one element
		{[]int{2, 3, 4, 5}, []int{4, 5}, true, 0, false, []int{1, 1, 4, 5}},
		{[]int{2, 3, 4, 5}, []int{3, 4}, true, 1, true, []int{1, 3, 4, 1}},
		{[]int{2, 3, 4, 5}, []int{2}, true, 0, true, []int{2, 1, 1, 1}},
		{[]int{2, 3, 4, 5}, []int{3}, true, -3, true, []int{1, 3, 1, 1}},
		{[]int{2, 3}, []int{2, 1}, true, 0, false, []int{2, 1}}, // a unit dimension stretches (the backend tests)
		{[]int{2, 3, 4, 5}, []int{3}, true, 2, true, nil},       // 3 against 4
		{[]int{2, 3, 4, 5}, []int{4, 5}, true, 3, true, nil},    // past the end
		{[]int{2, 3}, []int{2, 3, 4}, true, 0, false, nil},      // more dimensions than a
	} {
		got, err := legacyAlign(c.a, c.b, c.broadcast, c.axis, c.hasAxis)
		if c.want == nil {
			if err == nil {
				t.Errorf("legacyAlign(%v, %v, %v, %d, %v) = %v, want an error", c.a, c.b, c.broadcast, c.axis, c.hasAxis, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("legacyAlign(%v, %v, %v, %d, %v) = %v, %v, want %v", c.a, c.b, c.broadcast, c.axis, c.hasAxis, got, err, c.want)
		}
	}
}

// TestLegacyBroadcastIsNotFusedAsNumpy: a Conv and Relu on a 4-channel 4x4
// map, then Add(broadcast=1, axis=1) of a 4-vector and a Relu. numpy's rules
// would add the vector along the width, which has the same length: the
// session must not take the Add into the elementwise pass that follows the
// Conv as an opset-7 Add. The reference adds by channel to the tapped Relu.
func TestLegacyBroadcastIsNotFusedAsNumpy(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m := graph.NewModel(graph.Opset{Domain: "", Version: 6})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{1, 4, 4, 4})
	w := g.AddInitializer("w", graph.Float32Tensor([]int{4, 4, 3, 3}, randFloats(r, 144)))
	bias := []float32{-3, -1, 1, 3}
	b := g.AddInitializer("b", graph.Float32Tensor([]int{4}, bias))
	y := g.AddNode("Conv", "conv", []*graph.Value{x, w}, []string{"c"}, graph.AttrIntsOf("pads", 1, 1, 1, 1)).Output()
	y = g.AddNode("Relu", "relu0", []*graph.Value{y}, []string{"y"}).Output()
	z := g.AddNode("Add", "add", []*graph.Value{y, b}, []string{"z"}, graph.AttrIntOf("broadcast", 1), graph.AttrIntOf("axis", 1)).Output()
	out := g.AddNode("Relu", "relu", []*graph.Value{z}, []string{"out"}).Output()
	g.AddOutput(out)
	in := map[string]*graph.Tensor{"x": graph.Float32Tensor([]int{1, 4, 4, 4}, randFloats(r, 64))}

	var conv []float32
	compileAndRun(t, m, Options{Threads: 1, Tap: func(name string, t *graph.Tensor) {
		if name == "y" {
			conv = slices.Clone(t.Float32s())
		}
	}}, in)
	want := make([]float32, len(conv))
	for i, v := range conv {
		want[i] = max(0, v+bias[i/16])
	}
	for _, threads := range []int{1, 2} {
		got := compileAndRun(t, m, Options{Threads: threads}, in)["out"].Float32s()
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%d threads: out[%d] = %g, want %g (the bias added by channel)", threads, i, got[i], want[i])
			}
		}
	}
}

// oneNode is a model of one node of op at opset, reading inputs x (and the
// constants consts, in order) and writing "y".
func oneNode(opset int64, op string, xShape []int64, consts []*graph.Tensor, attrs ...*onnxpb.AttributeProto) *graph.Model {
	m := graph.NewModel(graph.Opset{Domain: "", Version: opset})
	g := m.Graph
	ins := []*graph.Value{g.AddInput("x", graph.Float, xShape)}
	for i, c := range consts {
		ins = append(ins, g.AddInitializer(string(rune('a'+i)), c))
	}
	g.AddOutput(g.AddNode(op, "n", ins, []string{"y"}, attrs...).Output())
	return m
}

// TestLegacyAndExperimentalOps checks the ops of opsets 1-6 and the
// experimental ops against their definitions, elementwise.
func TestLegacyAndExperimentalOps(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := graph.Float32Tensor([]int{2, 3, 4, 5}, randFloats(r, 120))
	xd := x.Float32s()
	at := func(n, c, h, w int) float32 { return xd[((n*3+c)*4+h)*5+w] }
	f32 := func(v []float32) *graph.Tensor { return graph.Float32Tensor([]int{len(v)}, v) }
	i64 := func(v ...int64) *graph.Tensor { return graph.Int64Tensor([]int{len(v)}, v) }
	for _, c := range []struct {
		name  string
		m     *graph.Model
		shape []int
		want  func(n, c, h, w int) float64
	}{
		{"ImageScaler", oneNode(8, "ImageScaler", nil, nil, graph.AttrFloatOf("scale", 0.5), graph.AttrFloatsOf("bias", 1, 2, 3)),
			[]int{2, 3, 4, 5}, func(n, c, h, w int) float64 { return float64(at(n, c, h, w)*0.5 + float32(c+1)) }},
		{"Crop border", oneNode(8, "Crop", nil, nil, graph.AttrIntsOf("border", 1, 2, 0, 1)),
			[]int{2, 3, 1, 4}, func(n, c, h, w int) float64 { return float64(at(n, c, h+2, w+1)) }},
		{"Crop scale", oneNode(8, "Crop", nil, nil, graph.AttrIntsOf("border", 2, 1, 0, 0), graph.AttrIntsOf("scale", 2, 3)),
			[]int{2, 3, 2, 3}, func(n, c, h, w int) float64 { return float64(at(n, c, h+1, w+2)) }},
		{"Affine", oneNode(8, "Affine", nil, nil, graph.AttrFloatOf("alpha", 2), graph.AttrFloatOf("beta", -1)),
			[]int{2, 3, 4, 5}, func(n, c, h, w int) float64 { return float64(at(n, c, h, w)*2 - 1) }},
		{"Scale", oneNode(8, "Scale", nil, nil, graph.AttrFloatOf("scale", 3)),
			[]int{2, 3, 4, 5}, func(n, c, h, w int) float64 { return float64(at(n, c, h, w) * 3) }},
		{"ScaledTanh", oneNode(8, "ScaledTanh", nil, nil, graph.AttrFloatOf("alpha", 2), graph.AttrFloatOf("beta", 0.5)),
			[]int{2, 3, 4, 5}, func(n, c, h, w int) float64 { return 2 * math.Tanh(0.5*float64(at(n, c, h, w))) }},
		{"ParametricSoftplus", oneNode(8, "ParametricSoftplus", nil, nil, graph.AttrFloatOf("alpha", 2), graph.AttrFloatOf("beta", 3)),
			[]int{2, 3, 4, 5}, func(n, c, h, w int) float64 { return 2 * math.Log1p(math.Exp(3*float64(at(n, c, h, w)))) }},
		{"ThresholdedRelu-1", oneNode(1, "ThresholdedRelu", nil, nil, graph.AttrFloatOf("alpha", 0.2)),
			[]int{2, 3, 4, 5}, func(n, c, h, w int) float64 {
				if v := at(n, c, h, w); v > 0.2 {
					return float64(v)
				}
				return 0
			}},
		{"PRelu-6 per channel", oneNode(6, "PRelu", nil, []*graph.Tensor{f32([]float32{0.1, 0.2, 0.3})}),
			[]int{2, 3, 4, 5}, func(n, c, h, w int) float64 {
				if v := at(n, c, h, w); v < 0 {
					return float64(v * []float32{0.1, 0.2, 0.3}[c])
				}
				return float64(at(n, c, h, w))
			}},
		{"Tile-1", oneNode(1, "Tile", nil, []*graph.Tensor{i64(2), i64(3)}),
			[]int{2, 3, 4, 10}, func(n, c, h, w int) float64 { return float64(at(n, c, h, w%5)) }},
		{"Tile-1 float counts", oneNode(1, "Tile", nil, []*graph.Tensor{f32([]float32{3}), f32([]float32{-3})}), // the schema's T
			[]int{2, 9, 4, 5}, func(n, c, h, w int) float64 { return float64(at(n, c%3, h, w)) }},
		{"Upsample-1", oneNode(1, "Upsample", nil, nil, graph.AttrFloatOf("height_scale", 2), graph.AttrFloatOf("width_scale", 3)),
			[]int{2, 3, 8, 15}, func(n, c, h, w int) float64 { return float64(at(n, c, h/2, w/3)) }},
		{"Mul-6 by axis", oneNode(6, "Mul", nil, []*graph.Tensor{f32([]float32{1, 2, 3})}, graph.AttrIntOf("broadcast", 1), graph.AttrIntOf("axis", 1)),
			[]int{2, 3, 4, 5}, func(n, c, h, w int) float64 { return float64(at(n, c, h, w) * float32(c+1)) }},
		{"Sub-1 trailing", oneNode(1, "Sub", nil, []*graph.Tensor{f32([]float32{1, 2, 3, 4, 5})}, graph.AttrIntOf("broadcast", 1), graph.AttrIntsOf("consumed_inputs", 0, 0)),
			[]int{2, 3, 4, 5}, func(n, c, h, w int) float64 { return float64(at(n, c, h, w) - float32(w+1)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := compileAndRun(t, c.m, Options{Threads: 2}, map[string]*graph.Tensor{"x": x})["y"]
			if !slices.Equal(got.Shape, c.shape) {
				t.Fatalf("shape %v, want %v", got.Shape, c.shape)
			}
			gd := got.Float32s()
			i := 0
			for n := 0; n < c.shape[0]; n++ {
				for ch := 0; ch < c.shape[1]; ch++ {
					for h := 0; h < c.shape[2]; h++ {
						for w := 0; w < c.shape[3]; w++ {
							want := c.want(n, ch, h, w)
							if d := math.Abs(float64(gd[i]) - want); d > 1e-6*math.Max(1, math.Abs(want)) {
								t.Fatalf("y[%d %d %d %d] = %g, want %g", n, ch, h, w, gd[i], want)
							}
							i++
						}
					}
				}
			}
		})
	}
}

// TestLegacyShapeChecks: the old versions' stricter shape rules are errors,
// not numpy broadcasts.
func TestLegacyShapeChecks(t *testing.T) {
	x := map[string]*graph.Tensor{"x": graph.NewTensor(graph.Float, []int{2, 3})}
	for _, c := range []struct {
		name string
		m    *graph.Model
		want string
	}{
		{"Max-6 of two shapes", oneNode(6, "Max", nil, []*graph.Tensor{graph.NewTensor(graph.Float, []int{3})}), "one shape"},
		{"Add-6 without broadcast", oneNode(6, "Add", nil, []*graph.Tensor{graph.NewTensor(graph.Float, []int{3})}), "broadcast attribute is not set"},
		{"Gemm-6 C without broadcast", oneNode(6, "Gemm", nil, []*graph.Tensor{graph.NewTensor(graph.Float, []int{3, 4}), graph.NewTensor(graph.Float, []int{4})}), "broadcast attribute is not set"},
	} {
		s, err := NewSession(c.m, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, err := s.Run(x); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

// TestLegacyCNNFusedMatchesUnfused: the opset-3 classifier (legacy broadcasts
// after every Conv, a BatchNormalization, PRelu, Caffe's Scale) computes the
// same with the session's fusions as without them (a Tap turns them off), at
// 1 and 2 threads.
func TestLegacyCNNFusedMatchesUnfused(t *testing.T) {
	m := testmodels.LegacyCNN(1)
	ins, err := testmodels.Samples("legacy-cnn", m, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		ref := compileAndRun(t, m, Options{Threads: 1, Tap: func(string, *graph.Tensor) {}}, in)["prob"].Float32s()
		for _, threads := range []int{1, 2} {
			got := compileAndRun(t, m, Options{Threads: threads}, in)["prob"].Float32s()
			for i := range ref {
				if d := math.Abs(float64(got[i] - ref[i])); d > 1e-6 {
					t.Fatalf("%d threads: prob[%d] = %g fused, %g unfused", threads, i, got[i], ref[i])
				}
			}
		}
	}
}

// TestConstantFill: ConstantFill's three shapes (the attribute, the input's
// shape, the input's values) with extra_shape, in float and int64; a shape
// attribute beside an input is an error.
func TestConstantFill(t *testing.T) {
	x := graph.Float32Tensor([]int{2, 3}, make([]float32, 6))
	shapeIn := graph.Int64Tensor([]int{2}, []int64{4, 1})
	for _, c := range []struct {
		name  string
		in    []*graph.Tensor
		attrs []*onnxpb.AttributeProto
		shape []int
		want  float64
		dt    graph.DataType
	}{
		{"attribute", nil, []*onnxpb.AttributeProto{graph.AttrIntsOf("shape", 3, 2), graph.AttrFloatOf("value", 1.5)}, []int{3, 2}, 1.5, graph.Float},
		{"like input", []*graph.Tensor{x}, []*onnxpb.AttributeProto{graph.AttrIntsOf("extra_shape", 5), graph.AttrIntOf("dtype", int64(graph.Int64)), graph.AttrFloatOf("value", 7)}, []int{2, 3, 5}, 7, graph.Int64},
		{"input as shape", []*graph.Tensor{shapeIn}, []*onnxpb.AttributeProto{graph.AttrIntOf("input_as_shape", 1)}, []int{4, 1}, 0, graph.Float},
	} {
		k, err := newConstantFill(&NodeInfo{Node: &graph.Node{OpType: "ConstantFill", Attrs: c.attrs}, Opset: 1})
		if err != nil {
			t.Fatal(err)
		}
		out, err := k.Run(&Context{}, c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		v, _ := out[0].AsFloat64()
		if out[0].DType != c.dt || !slices.Equal(out[0].Shape, c.shape) || v[len(v)-1] != c.want || v[0] != c.want {
			t.Errorf("%s: %s%v %v, want %s%v of %g", c.name, out[0].DType.Short(), out[0].Shape, v, c.dt.Short(), c.shape, c.want)
		}
	}
	k, _ := newConstantFill(&NodeInfo{Node: &graph.Node{OpType: "ConstantFill", Attrs: []*onnxpb.AttributeProto{graph.AttrIntsOf("shape", 2)}}, Opset: 1})
	if _, err := k.Run(&Context{}, []*graph.Tensor{x}); err == nil || !strings.Contains(err.Error(), "must not set shape") {
		t.Errorf("shape beside an input: %v", err)
	}
}
