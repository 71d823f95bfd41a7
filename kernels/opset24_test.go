package kernels

import (
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestTensorScatterRefusals: a linear write past the cache's end, a write
// index of the wrong type, the batch axis and an update longer than the
// cache are errors that say so.
func TestTensorScatterRefusals(t *testing.T) {
	past := graph.NewTensor(graph.Float, []int{2, 4, 3})
	upd := graph.NewTensor(graph.Float, []int{2, 2, 3})
	for _, c := range []struct {
		name  string
		in    []*graph.Tensor
		attrs []*onnxpb.AttributeProto
		want  string
	}{
		{"past the end", []*graph.Tensor{past, upd, graph.Int64Tensor([]int{2}, []int64{0, 3})}, nil, "does not fit 2 updates in a cache of 4"},
		{"int32 indices", []*graph.Tensor{past, upd, graph.NewTensor(graph.Int32, []int{2})}, nil, "want int64 [2]"},
		{"batch axis", []*graph.Tensor{past, upd}, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 0)}, "batch axis"},
		{"longer update", []*graph.Tensor{upd, past}, nil, "does not fit past_cache"},
		{"negative index", []*graph.Tensor{past, upd, graph.Int64Tensor([]int{2}, []int64{-1, 0})}, []*onnxpb.AttributeProto{graph.AttrStringOf("mode", "circular")}, "write index -1"},
	} {
		k, err := newTensorScatter(&NodeInfo{Node: &graph.Node{OpType: "TensorScatter", Attrs: c.attrs}, Opset: 24})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Run(&Context{}, c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
		}
	}
}
