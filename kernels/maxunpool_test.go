package kernels

import (
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

func unpoolAttrs(kernel, strides, pads []int64) []*onnxpb.AttributeProto {
	a := []*onnxpb.AttributeProto{graph.AttrIntsOf("kernel_shape", kernel...)}
	if strides != nil {
		a = append(a, graph.AttrIntsOf("strides", strides...))
	}
	if pads != nil {
		a = append(a, graph.AttrIntsOf("pads", pads...))
	}
	return a
}

// TestMaxUnpoolShapes: the output size is (in-1)*stride - pads + kernel, the
// indices count over the whole N x C x ... tensor, and a repeated index keeps
// the last value.
func TestMaxUnpoolShapes(t *testing.T) {
	// 1-D, stride 2, one pad each side: (3-1)*2 - 2 + 2 = 4.
	out, err := runDet(t, "MaxUnpool", 11, unpoolAttrs([]int64{2}, []int64{2}, []int64{1, 1}),
		detF32([]int{1, 1, 3}, 5, 6, 7), detI64([]int{1, 1, 3}, 0, 2, 3))
	detWant(t, "1-D with pads", out, err, []int{1, 1, 4}, []float32{5, 0, 6, 7})
	// Default stride 1: (2-1) + 2 = 3.
	out, err = runDet(t, "MaxUnpool", 9, unpoolAttrs([]int64{2}, nil, nil),
		detF32([]int{1, 1, 2}, 3, 4), detI64([]int{1, 1, 2}, 1, 2))
	detWant(t, "default strides", out, err, []int{1, 1, 3}, []float32{0, 3, 4})
	// 2-D, two channels, 3x3 kernel, stride 2, pads 1: (2-1)*2 - 2 + 3 = 3.
	// Channel 1's indices start at 9; 13 comes twice.
	out, err = runDet(t, "MaxUnpool", 11, unpoolAttrs([]int64{3, 3}, []int64{2, 2}, []int64{1, 1, 1, 1}),
		detF32([]int{1, 2, 2, 2}, 1, 2, 3, 4, 5, 6, 7, 8), detI64([]int{1, 2, 2, 2}, 0, 2, 6, 8, 13, 13, 9, 17))
	detWant(t, "2-D, two channels", out, err, []int{1, 2, 3, 3}, []float32{
		1, 0, 2, 0, 0, 0, 3, 0, 4,
		7, 0, 0, 0, 6, 0, 0, 0, 8})
}

// TestMaxUnpoolOutputShape: with output_shape the indices still address the
// unpooled shape (pads included, as in the ONNX reference implementation),
// whose values land at the start of each axis of the larger output.
func TestMaxUnpoolOutputShape(t *testing.T) {
	// Kernel 2, stride 2, an end pad: (2-1)*2 - 1 + 2 = 3, so indices are 3x3:
	// 0, 2, 4, 8 are (0,0), (0,2), (1,1), (2,2).
	attrs := unpoolAttrs([]int64{2, 2}, []int64{2, 2}, []int64{0, 0, 1, 1})
	x, idx := detF32([]int{1, 1, 2, 2}, 1, 2, 3, 4), detI64([]int{1, 1, 2, 2}, 0, 2, 4, 8)
	out, err := runDet(t, "MaxUnpool", 11, attrs, x, idx, detI64([]int{4}, 1, 1, 4, 5))
	detWant(t, "4x5", out, err, []int{1, 1, 4, 5}, []float32{
		1, 0, 2, 0, 0,
		0, 3, 0, 0, 0,
		0, 0, 4, 0, 0,
		0, 0, 0, 0, 0})
	// More channels than X: the extra one is zero.
	out, err = runDet(t, "MaxUnpool", 11, attrs, x, idx, detI64([]int{4}, 1, 2, 3, 3))
	detWant(t, "extra channel", out, err, []int{1, 2, 3, 3}, []float32{
		1, 0, 2, 0, 3, 0, 0, 0, 4,
		0, 0, 0, 0, 0, 0, 0, 0, 0})
	// The unpooled shape itself.
	out, err = runDet(t, "MaxUnpool", 9, attrs, x, idx, detI64([]int{4}, 1, 1, 3, 3))
	detWant(t, "same shape", out, err, []int{1, 1, 3, 3}, []float32{1, 0, 2, 0, 3, 0, 0, 0, 4})
}

func TestMaxUnpoolBadInputs(t *testing.T) {
	for name, c := range map[string]struct {
		attrs []*onnxpb.AttributeProto
		word  string
	}{
		"no kernel":    {nil, "kernel_shape"},
		"kernel 0":     {unpoolAttrs([]int64{0, 2}, nil, nil), "positive"},
		"stride 0":     {unpoolAttrs([]int64{2, 2}, []int64{0, 1}, nil), "positive"},
		"negative pad": {unpoolAttrs([]int64{2, 2}, nil, []int64{0, -1, 0, 0}), "pads"},
		"one stride":   {unpoolAttrs([]int64{2, 2}, []int64{2}, nil), "strides"},
		"two pads":     {unpoolAttrs([]int64{2, 2}, nil, []int64{1, 1}), "pads"},
		"float kernel": {[]*onnxpb.AttributeProto{graph.AttrFloatOf("kernel_shape", 2)}, "kernel_shape"},
	} {
		_, err := runDet(t, "MaxUnpool", 11, c.attrs, detF32([]int{1, 1, 1, 1}, 1), detI64([]int{1, 1, 1, 1}, 0))
		detErr(t, name, err, c.word)
	}
	attrs := unpoolAttrs([]int64{2, 2}, []int64{2, 2}, nil)
	x, idx := detF32([]int{1, 1, 2, 2}, 1, 2, 3, 4), detI64([]int{1, 1, 2, 2}, 0, 2, 8, 10)
	for _, c := range []struct {
		name  string
		in    []*graph.Tensor
		words []string
	}{
		{"no indices", []*graph.Tensor{x}, []string{"2 inputs"}},
		{"3-D X", []*graph.Tensor{detF32([]int{1, 2, 2}, 1, 2, 3, 4), detI64([]int{1, 2, 2}, 0, 1, 2, 3)}, []string{"4 dims"}},
		{"int X", []*graph.Tensor{detI64([]int{1, 1, 2, 2}, 1, 2, 3, 4), idx}, []string{"X", "float32"}},
		{"indices shape", []*graph.Tensor{x, detI64([]int{1, 1, 4}, 0, 2, 8, 10)}, []string{"indices", "[1 1 4]"}},
		{"float indices", []*graph.Tensor{x, detF32([]int{1, 1, 2, 2}, 0, 2, 8, 10)}, []string{"indices"}},
		{"index past the end", []*graph.Tensor{x, detI64([]int{1, 1, 2, 2}, 0, 2, 8, 16)}, []string{"index 16", "[0, 16)"}},
		{"negative index", []*graph.Tensor{x, detI64([]int{1, 1, 2, 2}, 0, -1, 8, 10)}, []string{"index -1"}},
		{"smaller output_shape", []*graph.Tensor{x, idx, detI64([]int{4}, 1, 1, 3, 4)}, []string{"smaller", "[1 1 4 4]"}},
		{"negative output_shape", []*graph.Tensor{x, idx, detI64([]int{4}, 1, -1, 4, 4)}, []string{"output_shape"}},
		{"short output_shape", []*graph.Tensor{x, idx, detI64([]int{2}, 4, 4)}, []string{"output_shape", "4 dims"}},
		{"float output_shape", []*graph.Tensor{x, idx, detF32([]int{4}, 1, 1, 4, 4)}, []string{"output_shape"}},
	} {
		_, err := runDet(t, "MaxUnpool", 11, attrs, c.in...)
		detErr(t, c.name, err, c.words...)
	}
	// (1-1)*1 - 2 + 1 < 0.
	_, err := runDet(t, "MaxUnpool", 11, unpoolAttrs([]int64{1}, nil, []int64{1, 1}), detF32([]int{1, 1, 1}, 1), detI64([]int{1, 1, 1}, 0))
	detErr(t, "negative size", err, "negative size")
}
