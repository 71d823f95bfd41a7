package passes

import (
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

// In a float16 model, the bounds and pad values an upgrade moves into inputs
// are float16 (the spec types them like the data), and infer-shapes records
// the model's types, not the float32 the executor computes in.
func TestHalfUpgradeAndShapes(t *testing.T) {
	b := testmodels.NewBuilder(4, 9)
	x := b.Input("input", 1, 2, 4, 6)
	g := b.G
	c := g.AddNode("Clip", "clip", []*graph.Value{x}, []string{"c"}, graph.AttrFloatOf("min", -0.5), graph.AttrFloatOf("max", 0.25)).Output()
	p := g.AddNode("Pad", "pad", []*graph.Value{c}, []string{"p"}, graph.AttrIntsOf("pads", 0, 0, 1, 2, 0, 0, 1, 0), graph.AttrFloatOf("value", 0.5)).Output()
	y := g.AddNode("Relu", "relu", []*graph.Value{p}, []string{"y"}).Output()
	y.SetTensorType(graph.Float, nil)
	g.AddOutput(y)
	if err := testmodels.ToHalf(b.M, graph.Float16, false); err != nil {
		t.Fatal(err)
	}
	runPipeline(t, b.M, "infer-shapes,upgrade-opset:19", nil)
	for _, n := range g.Nodes {
		for i, v := range n.Inputs {
			if i > 0 && v != nil && v.Const != nil && (n.OpType == "Clip" || (n.OpType == "Pad" && i == 2)) && v.Const.DType != graph.Float16 {
				t.Errorf("%s input %d is %s, the data float16", n, i, v.Const.DType.Short())
			}
		}
		if o := n.Output(); o.ElemType() != graph.Float16 {
			t.Errorf("%s output %q declared %s", n, o.Name, o.ElemType().Short())
		}
	}
	if n := g.Value("c").Producer; n.Input(1) == nil || n.Input(2) == nil {
		t.Fatal("Clip bounds not moved into inputs")
	} else if lo, hi := n.Input(1).Const.Data().([]graph.Float16Bits)[0].Float32(), n.Input(2).Const.Data().([]graph.Float16Bits)[0].Float32(); lo != -0.5 || hi != 0.25 {
		t.Errorf("Clip bounds %v, %v", lo, hi)
	}
}

// Weight rewrites work on half models: BatchNorm folds into float16 weights,
// CLE rescales them, no float32 weight is left behind, and the outputs move
// only by the rounding of the rewritten weights.
func TestHalfWeightRewrites(t *testing.T) {
	for _, dt := range []graph.DataType{graph.Float16, graph.BFloat16} {
		for _, c := range []struct {
			name, list, pass string
			build            func(uint64) *graph.Model
		}{{"convbnrelu", "default", "fold-bn", testmodels.ConvBNReLU}, {"resnetlite", "cle", "cle", testmodels.ResNetLite}} {
			m := c.build(1)
			if err := testmodels.ToHalf(m, dt, false); err != nil {
				t.Fatal(err)
			}
			ps, err := Parse(c.list, Options{})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := (&Pipeline{Passes: ps, Verify: &Verifier{Seed: 3}}).Run(m)
			if err != nil {
				t.Fatal(err)
			}
			if ops := countOps(m); ops["BatchNormalization"] != 0 {
				t.Errorf("%s %s: BatchNormalization left: %v", dt.Short(), c.name, ops)
			}
			limit := map[graph.DataType]float64{graph.Float16: 2e-3, graph.BFloat16: 2e-2}[dt]
			for _, ch := range rep.Changes {
				if ch.Pass == c.pass && ch.Count == 0 {
					t.Errorf("%s %s: %s changed nothing", dt.Short(), c.name, c.pass)
				}
				if ch.MaxRelDiff > limit {
					t.Errorf("%s %s: %s moved the output by %.3g > %g", dt.Short(), c.name, ch.Pass, ch.MaxRelDiff, limit)
				}
				if ch.Pass == c.pass {
					t.Logf("%s %s: %s moved the output by %.2e", dt.Short(), c.name, ch.Pass, ch.MaxRelDiff)
				}
			}
			for _, v := range m.Graph.Initializers {
				if v.Const.DType == graph.Float {
					t.Errorf("%s %s: initializer %q is float32", dt.Short(), c.name, v.Name)
				}
			}
		}
	}
}
