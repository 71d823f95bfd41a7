//go:build ort

package kernels

import (
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestConv3DMatchesORT checks the N-D Conv and ConvTranspose forms against
// ONNX Runtime on 3-D (video, volumetric) shapes: pads, strides,
// dilations, groups, auto_pad, output_padding and output_shape, weights as
// initializers (packed at compile time) and as run-time inputs.
func TestConv3DMatchesORT(t *testing.T) {
	ints := graph.AttrIntsOf
	x := rnd(1, 2, 4, 6, 7, 5)
	var cases []opCase
	for _, c := range []struct {
		name  string
		w     *graph.Tensor
		attrs []*onnxpb.AttributeProto
	}{
		{"plain", rnd(2, 6, 4, 3, 3, 3), nil},
		{"pads strides", rnd(3, 8, 4, 3, 2, 3), []*onnxpb.AttributeProto{ints("pads", 1, 0, 2, 1, 1, 0), ints("strides", 2, 1, 2)}},
		{"dilations groups", rnd(4, 6, 2, 2, 3, 2), []*onnxpb.AttributeProto{ints("dilations", 2, 1, 2), ai("group", 2), ints("pads", 1, 1, 1, 1, 1, 1)}},
		{"same upper", rnd(5, 4, 4, 3, 3, 3), []*onnxpb.AttributeProto{graph.AttrStringOf("auto_pad", "SAME_UPPER"), ints("strides", 2, 2, 1)}},
		{"depthwise", rnd(6, 4, 1, 3, 3, 3), []*onnxpb.AttributeProto{ai("group", 4), ints("pads", 1, 1, 1, 1, 1, 1)}},
	} {
		m := c.w.Shape[0]
		cases = append(cases,
			opCase{name: "Conv " + c.name, op: "Conv", attrs: c.attrs, inputs: []opInput{fin(x), kin(c.w), kin(rnd(7, m))}, outputs: []string{"y"}},
			opCase{name: "Conv " + c.name + " run-time weights", op: "Conv", attrs: c.attrs, inputs: []opInput{fin(x), fin(c.w)}, outputs: []string{"y"}})
	}
	xt := rnd(8, 1, 4, 3, 4, 3)
	for _, c := range []struct {
		name  string
		w     *graph.Tensor
		attrs []*onnxpb.AttributeProto
	}{
		{"plain", rnd(9, 4, 3, 2, 3, 2), nil},
		{"strides pads output_padding", rnd(10, 4, 2, 3, 3, 3), []*onnxpb.AttributeProto{ints("strides", 2, 2, 3), ints("pads", 1, 0, 1, 0, 1, 1), ints("output_padding", 1, 0, 2)}},
		{"groups dilations", rnd(11, 4, 3, 2, 2, 2), []*onnxpb.AttributeProto{ai("group", 2), ints("dilations", 2, 1, 2)}},
		{"output_shape", rnd(12, 4, 2, 3, 3, 3), []*onnxpb.AttributeProto{ints("strides", 2, 2, 2), ints("output_shape", 7, 9, 6)}},
	} {
		m := c.w.Shape[1] * int(attrInt(c.attrs, "group", 1))
		cases = append(cases,
			opCase{name: "ConvTranspose " + c.name, op: "ConvTranspose", attrs: c.attrs, inputs: []opInput{fin(xt), kin(c.w), kin(rnd(13, m))}, outputs: []string{"y"}},
			opCase{name: "ConvTranspose " + c.name + " run-time weights", op: "ConvTranspose", attrs: c.attrs, inputs: []opInput{fin(xt), fin(c.w)}, outputs: []string{"y"}})
	}
	checkOps(t, cases, 2e-5)
}

func attrInt(attrs []*onnxpb.AttributeProto, name string, def int64) int64 {
	for _, a := range attrs {
		if a.GetName() == name {
			return a.GetI()
		}
	}
	return def
}
