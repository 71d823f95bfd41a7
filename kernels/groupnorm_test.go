package kernels

import (
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestGroupNormRejectsBadShapes: channels that do not split into the groups
// and scales of the wrong length are one-line errors, not panics.
func TestGroupNormRejectsBadShapes(t *testing.T) {
	for _, c := range []struct {
		groups, sb int
		want       string
	}{{4, 4, "do not split"}, {3, 6, "must have 3 values"}} {
		m := graph.NewModel(graph.Opset{Domain: "", Version: 18})
		g := m.Graph
		nd := g.AddNode("GroupNormalization", "gn", []*graph.Value{g.AddInput("x", graph.Float, nil), g.AddInput("s", graph.Float, nil), g.AddInput("b", graph.Float, nil)},
			[]string{"y"}, graph.AttrIntOf("num_groups", int64(c.groups)))
		g.AddOutput(nd.Output())
		s, err := NewSession(m, Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		sb := graph.Float32Tensor([]int{c.sb}, make([]float32, c.sb))
		_, err = s.Run(map[string]*graph.Tensor{"x": graph.Float32Tensor([]int{1, 6, 2}, make([]float32, 12)), "s": sb, "b": sb})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("groups %d, %d scales: error %v, want %q", c.groups, c.sb, err, c.want)
		}
	}
}
