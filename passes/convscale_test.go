package passes

import (
	"math"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

// TestMigrateConvInputScale: a scale on the input of the second Conv folds
// through the Relu into the first Conv's output channels and bias; one on
// the graph input needs a Mul of shape [C, 1, 1]; a grouped reader is
// refused. Outputs stay within 1e-5 relative.
func TestMigrateConvInputScale(t *testing.T) {
	build := func() *graph.Model {
		b := testmodels.NewBuilder(2, 17)
		x := b.Input("x", 1, 3, 8, 8)
		h := b.Relu(b.Conv(x, 4, 3, testmodels.ConvOpts{Pad: 1}))
		b.Output(b.Conv(h, 5, 3, testmodels.ConvOpts{Stride: 2}))
		return b.Finish()
	}
	m := build()
	x := graph.NewTensor(graph.Float, []int{1, 3, 8, 8})
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = float32(math.Sin(float64(i) * 0.37))
	}
	want := runAll(t, build(), x)
	g := m.Graph
	var convs []*graph.Node
	for _, n := range g.Nodes {
		if n.OpType == "Conv" {
			convs = append(convs, n)
		}
	}
	h := convs[1].Input(0)
	mig, err := MigrateConvInputScale(g, h, convs[1:], []float32{0.25, 3, 1, 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mig.How, "the output channels of") || len(mig.Producers) != 1 || mig.Producers[0] != convs[0] || len(mig.Changed) != 2 || mig.Inserted != nil {
		t.Errorf("%+v: want the fold into the first Conv through the Relu", mig)
	}
	mig, err = MigrateConvInputScale(g, g.Value("x"), convs[:1], []float32{2, 0.5, 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mig.Inserted == nil || !strings.Contains(mig.How, "Mul") {
		t.Errorf("%+v: want a Mul before the first Conv", mig)
	}
	got := runAll(t, m, x)
	for name, w := range want {
		a, b := w.Float32s(), got[name].Float32s()
		for i := range a {
			if d := math.Abs(float64(a[i] - b[i])); d > 1e-5*(1+math.Abs(float64(a[i]))) {
				t.Fatalf("output %q[%d]: %v, was %v", name, i, b[i], a[i])
			}
		}
	}
	convs[1].Attrs = append(convs[1].Attrs, graph.AttrIntOf("group", 2))
	if _, err := MigrateConvInputScale(g, convs[1].Input(0), convs[1:], []float32{1, 1, 1, 1}, nil); err == nil || !strings.Contains(err.Error(), "grouped") {
		t.Errorf("grouped reader: %v, want an error", err)
	}
}
