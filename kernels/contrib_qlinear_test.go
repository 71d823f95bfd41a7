package kernels

import (
	"reflect"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// qlRunMS compiles one com.microsoft node, feeds every input (nil for an
// omitted one) and runs it; the error is the compile's or the run's.
func qlRunMS(op string, attrs []*onnxpb.AttributeProto, in ...*graph.Tensor) (*graph.Tensor, error) {
	m := graph.NewModel(graph.Opset{Version: 21}, graph.Opset{Domain: "com.microsoft", Version: 1})
	g := m.Graph
	var vals []*graph.Value
	feed := map[string]*graph.Tensor{}
	for i, x := range in {
		if x == nil {
			vals = append(vals, nil)
			continue
		}
		name := string(rune('a' + i))
		vals = append(vals, g.AddInput(name, x.DType, nil))
		feed[name] = x
	}
	n := g.AddNode(op, "op", vals, []string{"y"}, attrs...)
	n.Domain = "com.microsoft"
	g.AddOutput(n.Output())
	s, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		return nil, err
	}
	out, err := s.Run(feed)
	if err != nil {
		return nil, err
	}
	return out["y"], nil
}

// qlMust runs qlRunMS and fails the test on an error.
func qlMust(t *testing.T, op string, attrs []*onnxpb.AttributeProto, in ...*graph.Tensor) *graph.Tensor {
	t.Helper()
	y, err := qlRunMS(op, attrs, in...)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return y
}

// qlT is a tensor of type dt holding v (ints for integer types, float32s
// for float).
func qlT(t *testing.T, dt graph.DataType, shape []int, v any) *graph.Tensor {
	t.Helper()
	x := graph.NewTensor(dt, shape)
	switch v := v.(type) {
	case []int64:
		if len(v) != x.Len() {
			t.Fatalf("%d values for shape %v", len(v), shape)
		}
		StoreInt64s(x, v)
	case []float32:
		copy(x.Float32s(), v)
	}
	return x
}

// qlS is a float32 scalar; qlZ a scalar code of type dt.
func qlS(v float32) *graph.Tensor { return graph.Float32Tensor(nil, []float32{v}) }

func qlZ(t *testing.T, dt graph.DataType, v int64) *graph.Tensor {
	return qlT(t, dt, nil, []int64{v})
}

// qlWant checks y's shape and its values (as int64s or float32s).
func qlWant(t *testing.T, what string, y *graph.Tensor, shape []int, want any) {
	t.Helper()
	var got any = readInt64s(y)
	if _, ok := want.([]float32); ok {
		got = y.Float32s()
	}
	if !reflect.DeepEqual(y.Shape, shape) && !(len(y.Shape) == 0 && len(shape) == 0) {
		t.Errorf("%s: shape %v, want %v", what, y.Shape, shape)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func ai64(v ...int64) []int64 { return v }

func TestQLContribQuantizeDequantize(t *testing.T) {
	// uint16 per tensor: x/0.5 + 10, halves to even, saturated.
	x := graph.Float32Tensor([]int{7}, []float32{0.5, 1.5, -1, 0.25, 0.75, -100, 40000})
	y := qlMust(t, "QuantizeLinear", nil, x, qlS(0.5), qlZ(t, graph.Uint16, 10))
	qlWant(t, "uint16", y, []int{7}, ai64(11, 13, 8, 10, 12, 0, 65535))
	// int4 per axis 0: rows scaled by 1 and 2, zero points 0 and 1.
	x = graph.Float32Tensor([]int{2, 2}, []float32{1, -1, 3, 100})
	y = qlMust(t, "QuantizeLinear", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 0)}, x,
		graph.Float32Tensor([]int{2}, []float32{1, 2}), qlT(t, graph.Int4, []int{2}, ai64(0, 1)))
	if y.DType != graph.Int4 {
		t.Errorf("int4: output %s", y.DType.Short())
	}
	qlWant(t, "int4", y, []int{2, 2}, ai64(1, -1, 3, 7))
	// int16 per axis 1.
	q := qlT(t, graph.Int16, []int{2, 2}, ai64(100, -100, 0, 32767))
	y = qlMust(t, "DequantizeLinear", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1)}, q,
		graph.Float32Tensor([]int{2}, []float32{0.5, 0.25}), qlT(t, graph.Int16, []int{2}, ai64(0, -1)))
	qlWant(t, "int16 dequantized", y, []int{2, 2}, []float32{50, -24.75, 0, 8192})
}

func TestQLinearAddMulValues(t *testing.T) {
	u8, i8 := graph.Uint8, graph.Int8
	// A (0.5, zp 10) = [0 5 10 15], B (0.25, zp 5) = [0 61.5] broadcast on
	// rows: sums 0 66.5 10 76.5 + 100, halves to even.
	a := qlT(t, u8, []int{2, 2}, ai64(10, 20, 30, 40))
	b := qlT(t, u8, []int{2}, ai64(5, 251))
	y := qlMust(t, "QLinearAdd", nil, a, qlS(0.5), qlZ(t, u8, 10), b, qlS(0.25), qlZ(t, u8, 5), qlS(1), qlZ(t, u8, 100))
	qlWant(t, "add uint8", y, []int{2, 2}, ai64(100, 166, 110, 176))
	// int8, [2,1] + [3], C scale 0.5: saturates both ways.
	a = qlT(t, i8, []int{2, 1}, ai64(127, -128))
	b = qlT(t, i8, []int{3}, ai64(127, -128, 1))
	y = qlMust(t, "QLinearAdd", nil, a, qlS(1), nil, b, qlS(1), nil, qlS(0.5), nil)
	qlWant(t, "add int8", y, []int{2, 3}, ai64(127, -2, 127, -2, -128, -128))
	// Mul: (a-0)*(4-2) * 0.5*0.25/0.5 + 1, rounded after the zero point
	// is added: -6*0.25 + 1 = -0.5 goes to 0, 63.5 + 1 to 64.
	a = qlT(t, i8, []int{5}, ai64(2, -3, 10, 127, -128))
	y = qlMust(t, "QLinearMul", nil, a, qlS(0.5), qlZ(t, i8, 0), qlZ(t, i8, 4), qlS(0.25), qlZ(t, i8, 2), qlS(0.5), qlZ(t, i8, 1))
	qlWant(t, "mul int8", y, []int{5}, ai64(2, 0, 6, 64, -63))
	// Saturated: 100*100 * 1/1 from 0.
	y = qlMust(t, "QLinearMul", nil, qlZ(t, i8, 100), qlS(1), nil, qlT(t, i8, []int{2}, ai64(100, -100)), qlS(1), nil, qlS(1), nil)
	qlWant(t, "mul saturated", y, []int{2}, ai64(127, -128))
}

func TestQLinearTableOpsValues(t *testing.T) {
	u8, i8 := graph.Uint8, graph.Int8
	// LeakyRelu: (x-128)*0.5 = -64 -14 0 36 63.5; alpha 0.1; /0.25 + 100.
	x := qlT(t, u8, []int{5}, ai64(0, 100, 128, 200, 255))
	y := qlMust(t, "QLinearLeakyRelu", []*onnxpb.AttributeProto{graph.AttrFloatOf("alpha", 0.1)}, x, qlS(0.5), qlZ(t, u8, 128), qlS(0.25), qlZ(t, u8, 100))
	qlWant(t, "leakyrelu", y, []int{5}, ai64(74, 94, 100, 244, 255))
	// Sigmoid of -12.8 0 0.1 12.7 in 1/256 steps from -128.
	x = qlT(t, i8, []int{4}, ai64(-128, 0, 1, 127))
	y = qlMust(t, "QLinearSigmoid", nil, x, qlS(0.1), qlZ(t, i8, 0), qlS(1.0/256), qlZ(t, i8, -128))
	qlWant(t, "sigmoid", y, []int{4}, ai64(-128, 0, 6, 127))
	// Concat on axis 1 into scale 0.5: copied, requantized (8-2)*0.25 = 2,
	// and saturated.
	y = qlMust(t, "QLinearConcat", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1)}, qlS(0.5), qlZ(t, i8, 0),
		qlT(t, i8, []int{1, 2}, ai64(1, 2)), qlS(0.5), qlZ(t, i8, 0),
		qlT(t, i8, []int{1, 1}, ai64(10)), qlS(0.25), qlZ(t, i8, 2),
		qlT(t, i8, []int{1, 2}, ai64(-128, 127)), qlS(1), qlZ(t, i8, 0))
	qlWant(t, "concat", y, []int{1, 5}, ai64(1, 2, 4, -128, 127))
}

func TestQLinearSoftmaxValues(t *testing.T) {
	u8 := graph.Uint8
	op13 := []*onnxpb.AttributeProto{graph.AttrIntOf("opset", 13)}
	// Rows of equal codes: 256/2 and 256/3; a peaked row saturates at 255.
	x := qlT(t, u8, []int{3, 3}, ai64(7, 7, 0, 10, 10, 10, 255, 0, 0))
	y := qlMust(t, "QLinearSoftmax", op13, x, qlS(1), qlZ(t, u8, 0), qlS(1.0/256), qlZ(t, u8, 0))
	qlWant(t, "softmax", y, []int{3, 3}, ai64(128, 128, 0, 85, 85, 85, 255, 0, 0))
	// ORT scales by floor(1/y_scale): a row of one gives floor(100.9), not
	// round(1/y_scale) = 101.
	x = qlT(t, u8, []int{2, 1}, ai64(3, 250))
	y = qlMust(t, "QLinearSoftmax", op13, x, qlS(0.1), nil, qlS(1/100.9), qlZ(t, u8, 0))
	qlWant(t, "softmax floor(1/y_scale)", y, []int{2, 1}, ai64(100, 100))
	// Opset 12: axis 1 and everything after it are one row of 4.
	x = qlT(t, u8, []int{1, 2, 2}, ai64(9, 9, 9, 9))
	y = qlMust(t, "QLinearSoftmax", []*onnxpb.AttributeProto{graph.AttrIntOf("opset", 12)}, x, qlS(1), nil, qlS(1.0/256), qlZ(t, u8, 0))
	qlWant(t, "softmax opset 12", y, []int{1, 2, 2}, ai64(64, 64, 64, 64))
	// Opset 13 on axis 1 of [1, 2, 2]: columns of 2.
	x = qlT(t, u8, []int{1, 2, 2}, ai64(9, 0, 9, 0))
	y = qlMust(t, "QLinearSoftmax", []*onnxpb.AttributeProto{graph.AttrIntOf("opset", 13), graph.AttrIntOf("axis", 1)}, x, qlS(1), nil, qlS(1.0/256), qlZ(t, u8, 0))
	qlWant(t, "softmax axis 1", y, []int{1, 2, 2}, ai64(128, 128, 128, 128))
}

func TestQLinearPoolsValues(t *testing.T) {
	u8 := graph.Uint8
	cl := func(v int64) *onnxpb.AttributeProto { return graph.AttrIntOf("channels_last", v) }
	// Global: sums 10 and 41 over 4, times 1/4 rounded (2.5 to 2, 10.25 to
	// 10), then the zero point 1.
	x := qlT(t, u8, []int{1, 2, 2, 2}, ai64(1, 2, 3, 4, 10, 10, 10, 11))
	y := qlMust(t, "QLinearGlobalAveragePool", nil, x, qlS(1), qlZ(t, u8, 0), qlS(1), qlZ(t, u8, 1))
	qlWant(t, "global", y, []int{1, 2, 1, 1}, ai64(3, 11))
	x = qlT(t, u8, []int{1, 2, 2, 2}, ai64(1, 10, 2, 10, 3, 10, 4, 11)) // NHWC
	y = qlMust(t, "QLinearGlobalAveragePool", []*onnxpb.AttributeProto{cl(1)}, x, qlS(1), qlZ(t, u8, 0), qlS(1), qlZ(t, u8, 1))
	qlWant(t, "global channels_last", y, []int{1, 1, 1, 2}, ai64(3, 11))

	ks := func(v ...int64) *onnxpb.AttributeProto { return graph.AttrIntsOf("kernel_shape", v...) }
	st := func(v ...int64) *onnxpb.AttributeProto { return graph.AttrIntsOf("strides", v...) }
	// 2x2 windows: means 1.5 and 4, rounded with the zero point added
	// first (2.5 to 2).
	x = qlT(t, u8, []int{1, 1, 2, 4}, ai64(1, 2, 3, 5, 1, 2, 4, 4))
	y = qlMust(t, "QLinearAveragePool", []*onnxpb.AttributeProto{ks(2, 2), st(2, 2)}, x, qlS(1), nil, qlS(1), qlZ(t, u8, 1))
	qlWant(t, "avgpool", y, []int{1, 1, 1, 2}, ai64(2, 5))
	x = qlT(t, u8, []int{1, 2, 4, 1}, ai64(1, 2, 3, 5, 1, 2, 4, 4)) // NHWC
	y = qlMust(t, "QLinearAveragePool", []*onnxpb.AttributeProto{ks(2, 2), st(2, 2), cl(1)}, x, qlS(1), nil, qlS(1), qlZ(t, u8, 1))
	qlWant(t, "avgpool channels_last", y, []int{1, 1, 2, 1}, ai64(2, 5))
	// 1-D, kernel 2, stride 2, pads 1: the first window holds one value
	// and a pad, counted with count_include_pad.
	x = qlT(t, u8, []int{1, 1, 3}, ai64(2, 4, 6))
	pool1 := []*onnxpb.AttributeProto{ks(2), st(2), graph.AttrIntsOf("pads", 1, 1)}
	y = qlMust(t, "QLinearAveragePool", pool1, x, qlS(1), nil, qlS(1), nil)
	qlWant(t, "avgpool pads", y, []int{1, 1, 2}, ai64(2, 5))
	y = qlMust(t, "QLinearAveragePool", append(pool1, graph.AttrIntOf("count_include_pad", 1)), x, qlS(1), nil, qlS(1), nil)
	qlWant(t, "avgpool count_include_pad", y, []int{1, 1, 2}, ai64(1, 5))
	// A window over the whole plane takes the integer path: 1.5 rounds to
	// 2 before the zero point (the float path would give round(2.5) = 2).
	x = qlT(t, u8, []int{1, 1, 1, 2}, ai64(1, 2))
	y = qlMust(t, "QLinearAveragePool", []*onnxpb.AttributeProto{ks(1, 2)}, x, qlS(1), nil, qlS(1), qlZ(t, u8, 1))
	qlWant(t, "avgpool whole plane", y, []int{1, 1, 1, 1}, ai64(3))
}

func TestQGemmValues(t *testing.T) {
	u8, i8 := graph.Uint8, graph.Int8
	// Centered A [[0 1 2] [3 4 5]], B per column [[1 -1] [0 0] [1 0]]:
	// A x B = [[2 0] [8 -3]], plus C [10 20]; column scales 0.5 and 1.
	a := qlT(t, u8, []int{2, 3}, ai64(1, 2, 3, 4, 5, 6))
	b := qlT(t, i8, []int{3, 2}, ai64(1, 0, 0, 1, 1, 1))
	bs := graph.Float32Tensor([]int{2}, []float32{1, 2})
	bz := qlT(t, i8, []int{2}, ai64(0, 1))
	c := qlI32([]int{2}, []int32{10, 20})
	y := qlMust(t, "QGemm", nil, a, qlS(0.5), qlZ(t, u8, 1), b, bs, bz, c)
	qlWant(t, "float", y, []int{2, 2}, []float32{6, 20, 9, 17})
	// Quantized by y_scale 2 from 100: 4.5 and 8.5 go to even.
	y = qlMust(t, "QGemm", nil, a, qlS(0.5), qlZ(t, u8, 1), b, bs, bz, c, qlS(2), qlZ(t, u8, 100))
	qlWant(t, "quantized", y, []int{2, 2}, ai64(103, 110, 104, 108))
	// The same with A and B given transposed, alpha 2 and C per row [M, 1].
	at := qlT(t, u8, []int{3, 2}, ai64(1, 4, 2, 5, 3, 6))
	bt := qlT(t, i8, []int{2, 3}, ai64(1, 0, 1, 0, 1, 1))
	attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("transA", 1), graph.AttrIntOf("transB", 1), graph.AttrFloatOf("alpha", 2)}
	y = qlMust(t, "QGemm", attrs, at, qlS(0.5), qlZ(t, u8, 1), bt, bs, bz, qlI32([]int{2, 1}, []int32{1, -1}))
	qlWant(t, "transposed", y, []int{2, 2}, []float32{3, 2, 7, -8})
}

func TestQLinearBadInputs(t *testing.T) {
	u8, i8 := graph.Uint8, graph.Int8
	a := qlT(t, u8, []int{2, 3}, ai64(1, 2, 3, 4, 5, 6))
	s, z := qlS(0.5), qlZ(t, u8, 1)
	f := graph.Float32Tensor([]int{2, 3}, make([]float32, 6))
	two := graph.Float32Tensor([]int{2}, []float32{1, 2})
	attr := func(n string, v int64) []*onnxpb.AttributeProto {
		return []*onnxpb.AttributeProto{graph.AttrIntOf(n, v)}
	}
	ks := []*onnxpb.AttributeProto{graph.AttrIntsOf("kernel_shape", 2, 2)}
	for _, c := range []struct {
		name, op string
		attrs    []*onnxpb.AttributeProto
		in       []*graph.Tensor
		want     string
	}{
		{"float A", "QLinearAdd", nil, []*graph.Tensor{f, s, z, a, s, z, s, z}, "A must be uint8 or int8"},
		{"B type", "QLinearAdd", nil, []*graph.Tensor{a, s, z, qlT(t, i8, []int{1}, ai64(1)), s, z, s, z}, "B must be uint8 like A"},
		{"A_scale of 2", "QLinearAdd", nil, []*graph.Tensor{a, two, z, a, s, z, s, z}, "A_scale must be one float32"},
		{"zero scale", "QLinearMul", nil, []*graph.Tensor{a, s, z, a, qlS(0), z, s, z}, "B_scale is 0"},
		{"zero point type", "QLinearMul", nil, []*graph.Tensor{a, s, qlZ(t, i8, 1), a, s, z, s, z}, "A_zero_point must be one uint8"},
		{"zero point of 2", "QLinearMul", nil, []*graph.Tensor{a, s, qlT(t, u8, []int{2}, ai64(1, 2)), a, s, z, s, z}, "A_zero_point must be one uint8"},
		{"no C_scale", "QLinearAdd", nil, []*graph.Tensor{a, s, z, a, s, z}, "input C_scale is required"},
		{"shapes", "QLinearAdd", nil, []*graph.Tensor{a, s, z, qlT(t, u8, []int{2}, ai64(1, 2)), s, z, s, z}, "cannot be broadcast"},
		{"int16 X", "QLinearSigmoid", nil, []*graph.Tensor{qlT(t, graph.Int16, []int{1}, ai64(1)), s, nil, s, nil}, "X must be uint8 or int8"},
		{"no Y_scale", "QLinearLeakyRelu", nil, []*graph.Tensor{a, s, z}, "input Y_scale is required"},
		{"concat no axis", "QLinearConcat", nil, []*graph.Tensor{s, z, a, s, z}, "axis attribute is required"},
		{"concat inputs", "QLinearConcat", attr("axis", 0), []*graph.Tensor{s, z, a, s}, "triples, got 4 inputs"},
		{"concat dims", "QLinearConcat", attr("axis", 0), []*graph.Tensor{s, z, a, s, z, qlT(t, u8, []int{1, 2}, ai64(1, 2)), s, z}, "may differ only on axis 0"},
		{"concat type", "QLinearConcat", attr("axis", 0), []*graph.Tensor{s, z, a, s, z, qlT(t, i8, []int{1, 3}, ai64(1, 2, 3)), s, z}, "must be uint8 like Y_zero_point"},
		{"concat axis", "QLinearConcat", attr("axis", 2), []*graph.Tensor{s, z, a, s, z}, "axis 2 is out of range"},
		{"softmax opset", "QLinearSoftmax", nil, []*graph.Tensor{a, s, z, s, z}, "opset attribute is required"},
		{"softmax axis", "QLinearSoftmax", []*onnxpb.AttributeProto{graph.AttrIntOf("opset", 13), graph.AttrIntOf("axis", 3)}, []*graph.Tensor{a, s, z, s, z}, "out of range"},
		{"global rank", "QLinearGlobalAveragePool", nil, []*graph.Tensor{a, s, z, s, z}, "want rank 3 or more"},
		{"pool no kernel", "QLinearAveragePool", nil, []*graph.Tensor{a, s, z, s, z}, "kernel_shape attribute is required"},
		{"pool rank", "QLinearAveragePool", ks, []*graph.Tensor{qlT(t, u8, []int{1, 1, 4}, ai64(1, 2, 3, 4)), s, z, s, z}, "want rank 4"},
		{"pool dilations", "QLinearAveragePool", append(ks, graph.AttrIntsOf("dilations", 2, 2)), []*graph.Tensor{a, s, z, s, z}, "dilations [2 2] are not supported"},
		{"pool too small", "QLinearAveragePool", []*onnxpb.AttributeProto{graph.AttrIntsOf("kernel_shape", 3, 3)}, []*graph.Tensor{qlT(t, u8, []int{1, 1, 2, 2}, ai64(1, 2, 3, 4)), s, z, s, z}, "too small"},
		{"gemm K", "QGemm", nil, []*graph.Tensor{a, s, z, a, s, z}, "do not multiply"},
		{"gemm rank", "QGemm", nil, []*graph.Tensor{qlT(t, u8, []int{1, 2, 3}, ai64(1, 2, 3, 4, 5, 6)), s, z, a, s, z}, "must be matrices"},
		{"gemm b_scale", "QGemm", attr("transB", 1), []*graph.Tensor{a, s, z, a, graph.Float32Tensor([]int{3}, []float32{1, 2, 3}), z}, "b_scale must be float32 with 1 or 2 (columns) values"},
		{"gemm b_zero_point", "QGemm", attr("transB", 1), []*graph.Tensor{a, s, z, a, s, qlT(t, u8, []int{3}, ai64(1, 2, 3))}, "b_zero_point must be uint8 like B with 1 or 2"},
		{"gemm C shape", "QGemm", attr("transB", 1), []*graph.Tensor{a, s, z, a, s, z, qlI32([]int{3}, []int32{1, 2, 3})}, "C has shape [3]"},
		{"gemm C type", "QGemm", attr("transB", 1), []*graph.Tensor{a, s, z, a, s, z, graph.Float32Tensor([]int{2}, []float32{1, 2})}, "C must be int32"},
		{"gemm y_zero_point alone", "QGemm", attr("transB", 1), []*graph.Tensor{a, s, z, a, s, z, nil, nil, z}, "y_zero_point needs y_scale"},
		{"quantize axis", "QuantizeLinear", attr("axis", 0), []*graph.Tensor{f, graph.Float32Tensor([]int{3}, []float32{1, 2, 3}), qlT(t, u8, []int{3}, ai64(1, 2, 3))}, "per-axis scale has shape [3], want [2]"},
		{"dequantize zero point", "DequantizeLinear", nil, []*graph.Tensor{a, s, qlZ(t, i8, 0)}, "differs from input type"},
	} {
		_, err := qlRunMS(c.op, c.attrs, c.in...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans lines: %q", c.name, err)
		}
	}
}

// qlI32 is an int32 tensor.
func qlI32(shape []int, v []int32) *graph.Tensor {
	t := graph.NewTensor(graph.Int32, shape)
	copy(t.Data().([]int32), v)
	return t
}
