package kernels

import (
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestDynamicQuantizeLSTMErrors: malformed weights, scales and zero points
// are errors that say what is wrong, not panics.
func TestDynamicQuantizeLSTMErrors(t *testing.T) {
	const seq, batch, in, hidden = 3, 2, 4, 2
	x := graph.Float32Tensor([]int{seq, batch, in}, make([]float32, seq*batch*in))
	w := graph.NewTensor(graph.Int8, []int{1, in, 4 * hidden})
	r := graph.NewTensor(graph.Int8, []int{1, hidden, 4 * hidden})
	one := graph.Float32Tensor([]int{1}, []float32{0.1})
	zp := graph.NewTensor(graph.Int8, []int{1})
	cases := []struct {
		name string
		in   []*graph.Tensor
		want string
	}{
		{"no W_scale", []*graph.Tensor{x, w, r, nil, nil, nil, nil, nil, nil, zp, one, zp}, "W_scale is required"},
		{"R not 4*hidden wide", []*graph.Tensor{x, w, graph.NewTensor(graph.Int8, []int{1, hidden, 3 * hidden}), nil, nil, nil, nil, nil, one, zp, one, zp}, "must be [1, input, 4*hidden]"},
		{"W of another input size", []*graph.Tensor{x, graph.NewTensor(graph.Int8, []int{1, in + 1, 4 * hidden}), r, nil, nil, nil, nil, nil, one, zp, one, zp}, "does not fit X"},
		{"three scales", []*graph.Tensor{x, w, r, nil, nil, nil, nil, nil, graph.Float32Tensor([]int{3}, make([]float32, 3)), zp, one, zp}, "W_scale has 3 values"},
		{"two zero points", []*graph.Tensor{x, w, r, nil, nil, nil, nil, nil, one, graph.NewTensor(graph.Int8, []int{2}), one, zp}, "W_zero_point has 2 values"},
		{"float weights", []*graph.Tensor{x, graph.NewTensor(graph.Float, []int{1, in, 4 * hidden}), r, nil, nil, nil, nil, nil, one, zp, one, zp}, "W is float32, not int8 or uint8"},
	}
	for _, c := range cases {
		err := msNodeError("DynamicQuantizeLSTM", []*onnxpb.AttributeProto{graph.AttrIntOf("hidden_size", hidden)}, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
}

// msNodeError runs one com.microsoft node of type op on in (nil: an input
// left out), each fed, and returns the error of making or running it.
func msNodeError(op string, attrs []*onnxpb.AttributeProto, in []*graph.Tensor) error {
	m := graph.NewModel(graph.Opset{Version: 14}, graph.Opset{Domain: "com.microsoft", Version: 1})
	g := m.Graph
	ins := make([]*graph.Value, len(in))
	feeds := map[string]*graph.Tensor{}
	for i, tn := range in {
		if tn == nil {
			continue
		}
		name := "in" + string(rune('a'+i))
		ins[i] = g.AddInput(name, tn.DType, nil)
		feeds[name] = tn
	}
	n := g.AddNode(op, "node", ins, []string{"y"}, attrs...)
	n.Domain = "com.microsoft"
	g.AddOutput(n.Output())
	s, err := NewSession(m, Options{Threads: 1})
	if err == nil {
		_, err = s.Run(feeds)
	}
	return err
}
