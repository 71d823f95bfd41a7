package testmodels

import (
	"math"
	"math/rand/v2"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

func init() { catalog["legacy-cnn"] = LegacyCNN }

// LegacyCNN is a classifier as Caffe2 and the first PyTorch exporters wrote
// them, at opset 3 (the ONNX model zoo's oldest classics): ImageScaler in
// front, convolutions without bias followed by Add with broadcast=1, axis=1
// of a per-channel bias, consumed_inputs on Relu, Add and
// BatchNormalization (is_test, spatial), a per-channel PRelu slope, Concat
// without an axis, Caffe's Scale layer as Mul and Add by axis, the
// experimental Upsample, Sum, Reshape with its shape as an attribute, Gemm
// with broadcast, Dropout with is_test, and Softmax. Input "data"
// 1x3x32x32, output "prob" 1x10.
func LegacyCNN(seed uint64) *graph.Model {
	r := rand.New(rand.NewPCG(seed, 0x6c656761))
	m := graph.NewModel(graph.Opset{Domain: "", Version: 3})
	g := m.Graph
	k := 0
	name := func(s string) string { k++; return s + "_" + string(rune('a'+k%26)) + string(rune('a'+k/26)) }
	normal := func(n int, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * std)
		}
		return v
	}
	param := func(shape []int, v []float32) *graph.Value {
		return g.AddInitializer(name("w"), graph.Float32Tensor(shape, v))
	}
	node := func(op string, in []*graph.Value, attrs ...*onnxpb.AttributeProto) *graph.Value {
		return g.AddNode(op, name(op), in, []string{name(op + "_out")}, attrs...).Output()
	}
	// byAxis is a legacy broadcast of a per-channel operand along axis 1.
	byAxis := func(op string, x *graph.Value, v []float32) *graph.Value {
		return node(op, []*graph.Value{x, param([]int{len(v)}, v)},
			graph.AttrIntOf("broadcast", 1), graph.AttrIntOf("axis", 1), graph.AttrIntsOf("consumed_inputs", 0, 0))
	}
	relu := func(x *graph.Value) *graph.Value {
		return node("Relu", []*graph.Value{x}, graph.AttrIntsOf("consumed_inputs", 0))
	}
	conv := func(x *graph.Value, cin, cout, ks, stride int) *graph.Value {
		w := param([]int{cout, cin, ks, ks}, normal(cout*cin*ks*ks, math.Sqrt(2/float64(cin*ks*ks))))
		p := int64(ks / 2)
		y := node("Conv", []*graph.Value{x, w}, graph.AttrIntsOf("kernel_shape", int64(ks), int64(ks)),
			graph.AttrIntsOf("pads", p, p, p, p), graph.AttrIntsOf("strides", int64(stride), int64(stride)))
		return byAxis("Add", y, normal(cout, 0.1))
	}
	positive := func(n int, lo, hi float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*r.Float64())
		}
		return v
	}

	x := g.AddInput("data", graph.Float, []int64{1, 3, 32, 32})
	x = node("ImageScaler", []*graph.Value{x}, graph.AttrFloatOf("scale", 0.5), graph.AttrFloatsOf("bias", -0.2, 0.1, 0.3))
	x = relu(conv(x, 3, 16, 3, 1))
	x = conv(x, 16, 16, 3, 2) // 16x16
	x = node("BatchNormalization", []*graph.Value{x, param([]int{16}, positive(16, 0.5, 1.5)), param([]int{16}, normal(16, 0.1)),
		param([]int{16}, normal(16, 0.1)), param([]int{16}, positive(16, 0.5, 2))},
		graph.AttrIntOf("is_test", 1), graph.AttrIntOf("spatial", 1), graph.AttrFloatOf("epsilon", 1e-5),
		graph.AttrIntsOf("consumed_inputs", 0, 0, 0, 1, 1))
	x = node("PRelu", []*graph.Value{x, param([]int{16}, positive(16, 0.05, 0.3))}, graph.AttrIntsOf("consumed_inputs", 0, 0))
	a := conv(x, 16, 8, 1, 1)
	b := conv(x, 16, 8, 3, 1)
	cat := relu(node("Concat", []*graph.Value{a, b}))
	scaled := byAxis("Add", byAxis("Mul", cat, positive(16, 0.5, 1.5)), normal(16, 0.1))
	x = node("Sum", []*graph.Value{cat, scaled})
	x = node("Upsample", []*graph.Value{x}, graph.AttrFloatOf("height_scale", 2), graph.AttrFloatOf("width_scale", 2),
		graph.AttrStringOf("mode", "nearest"))
	x = node("MaxPool", []*graph.Value{x}, graph.AttrIntsOf("kernel_shape", 2, 2), graph.AttrIntsOf("strides", 2, 2))
	x = node("GlobalAveragePool", []*graph.Value{x})
	x = node("Reshape", []*graph.Value{x}, graph.AttrIntsOf("shape", 1, 16))
	x = node("Gemm", []*graph.Value{x, param([]int{10, 16}, normal(160, 0.5)), param([]int{10}, normal(10, 0.1))},
		graph.AttrIntOf("transB", 1), graph.AttrIntOf("broadcast", 1))
	x = node("Dropout", []*graph.Value{x}, graph.AttrIntOf("is_test", 1), graph.AttrFloatOf("ratio", 0.5))
	prob := g.AddNode("Softmax", "softmax", []*graph.Value{x}, []string{"prob"}).Output()
	g.AddOutput(prob)
	return m
}
