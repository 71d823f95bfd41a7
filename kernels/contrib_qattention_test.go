package kernels

import (
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestQAttentionErrors: malformed inputs are errors that say what is
// wrong, not panics.
func TestQAttentionErrors(t *testing.T) {
	const d, cols = 4, 12
	x := graph.NewTensor(graph.Uint8, []int{1, 2, d})
	w := graph.NewTensor(graph.Int8, []int{d, cols})
	bias := graph.Float32Tensor([]int{cols}, make([]float32, cols))
	sc := graph.Float32Tensor(nil, []float32{0.1})
	cases := []struct {
		name string
		in   []*graph.Tensor
		want string
	}{
		{"no bias", []*graph.Tensor{x, w, nil, sc, sc}, "are required"},
		{"float input", []*graph.Tensor{graph.NewTensor(graph.Float, []int{1, 2, d}), w, bias, sc, sc}, "want 8-bit"},
		{"weights of another width", []*graph.Tensor{x, graph.NewTensor(graph.Int8, []int{d + 1, cols}), bias, sc, sc}, "want 8-bit [4, 3 x hidden]"},
		{"two weight scales", []*graph.Tensor{x, w, bias, sc, graph.Float32Tensor([]int{2}, []float32{1, 1})}, "weight_scale has 2 values"},
		{"zero input scale", []*graph.Tensor{x, w, bias, graph.Float32Tensor(nil, []float32{0}), sc}, "input_scale is 0"},
		{"int8 input zero point for uint8 input", []*graph.Tensor{x, w, bias, sc, sc, nil, graph.NewTensor(graph.Int8, nil)}, "input_zero_point must be one uint8"},
	}
	for _, c := range cases {
		err := msNodeError("QAttention", []*onnxpb.AttributeProto{graph.AttrIntOf("num_heads", 2)}, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
}
