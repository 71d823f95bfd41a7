package kernels

import (
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestGatherBlockQuantizedRefusals: an index outside the table, a block size
// that is not a power of 2 of at least 16, and scales of the wrong shape are
// errors that say so.
func TestGatherBlockQuantizedRefusals(t *testing.T) {
	data := graph.NewTensor(graph.Uint8, []int{4, 16}) // 4 rows of 32 4-bit codes
	scales := graph.NewTensor(graph.Float, []int{4, 2})
	for _, c := range []struct {
		name  string
		in    []*graph.Tensor
		block int64
		want  string
	}{
		{"index", []*graph.Tensor{data, graph.Int64Tensor([]int{1}, []int64{4}), scales}, 16, "index 4 is outside [-4, 3]"},
		{"scales", []*graph.Tensor{data, graph.Int64Tensor([]int{1}, []int64{0}), graph.NewTensor(graph.Float, []int{4, 3})}, 16, "do not fit"},
		{"block", nil, 24, "not a power of 2"},
	} {
		k, err := newGatherBlockQuantized(&NodeInfo{Node: &graph.Node{OpType: "GatherBlockQuantized", Attrs: []*onnxpb.AttributeProto{graph.AttrIntOf("block_size", c.block)}}})
		if err == nil {
			_, err = k.Run(&Context{}, c.in)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
		}
	}
}
