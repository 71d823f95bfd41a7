package passes

import (
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/testmodels"
)

func countOps(m *graph.Model) map[string]int {
	c := map[string]int{}
	for _, n := range m.Graph.Nodes {
		c[n.OpType]++
	}
	return c
}

func runPipeline(t *testing.T, m *graph.Model, list string, v *Verifier) *Report {
	t.Helper()
	ps, err := Parse(list, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v == nil {
		v = &Verifier{Seed: 3}
	}
	rep, err := (&Pipeline{Passes: ps, Verify: v}).Run(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Changes {
		if c.MaxRelDiff > 1e-4 {
			t.Errorf("%s moved the outputs by %g", c.Pass, c.MaxRelDiff)
		}
	}
	return rep
}

func TestDefaultPipelineOnTestModels(t *testing.T) {
	cases := []struct {
		name        string
		model       *graph.Model
		nodesBefore int
		nodesAfter  int
	}{
		// 3 Conv+BN+ReLU (one with a residual Add), pooling, Gemm head, output Identity.
		{"convbnrelu", testmodels.ConvBNReLU(1), 15, 11},
		{"mobilenetv2-block", testmodels.MobileNetV2Block(1), 13, 9},
		{"gemm-bn", testmodels.GemmBN(1), 6, 3},
		{"convtranspose-bn", testmodels.ConvTransposeBN(1), 8, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if n := len(c.model.Graph.Nodes); n != c.nodesBefore {
				t.Fatalf("%d nodes before, want %d", n, c.nodesBefore)
			}
			runPipeline(t, c.model, "default", nil)
			ops := countOps(c.model)
			if ops["BatchNormalization"] != 0 || ops["Identity"] != 0 {
				t.Errorf("left %v", ops)
			}
			if n := len(c.model.Graph.Nodes); n != c.nodesAfter {
				t.Errorf("%d nodes after, want %d (%v)", n, c.nodesAfter, ops)
			}
			if err := c.model.Graph.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestStandaloneBN(t *testing.T) {
	// BN right after the input has no producer to fold into.
	b := testmodels.NewBuilder(2, 13)
	x := b.Input("input", 1, 4, 6, 6)
	y := b.Relu(b.BatchNorm(x))
	y.SetTensorType(graph.Float, nil)
	b.G.AddOutput(y)
	m := b.M
	rep := runPipeline(t, m, "fold-bn", nil)
	if ops := countOps(m); ops["BatchNormalization"] != 0 || ops["Mul"] != 1 || ops["Add"] != 1 {
		t.Errorf("ops %v", ops)
	}
	if len(rep.Changes[0].Notes) != 1 || !strings.Contains(rep.Changes[0].Notes[0], "Mul+Add") {
		t.Errorf("notes %v", rep.Changes[0].Notes)
	}
	// With keep, it stays; a skipped node stays too.
	m2 := testmodels.ConvBNReLU(1)
	ps, _ := Parse("fold-bn", Options{FoldBNSkip: []string{"BatchNormalization_2"}})
	if _, err := (&Pipeline{Passes: ps}).Run(m2); err != nil {
		t.Fatal(err)
	}
	if countOps(m2)["BatchNormalization"] != 1 {
		t.Errorf("skip list ignored: %v", countOps(m2))
	}
}

func TestPaddleOCRDefaultAndUpgrade(t *testing.T) {
	for kind, shape := range map[string][]int{"det": {1, 3, 320, 320}, "rec": {1, 3, 48, 320}, "cls": {1, 3, 48, 192}} {
		t.Run(kind, func(t *testing.T) {
			m, err := graph.Load(testdata.OCRModel(t, kind))
			if err != nil {
				t.Fatal(err)
			}
			h, w := shape[2], shape[3]
			v := &Verifier{Inputs: map[string]*graph.Tensor{"x": testdata.ImageNetNormalized(testdata.TextImage(h, w, 2), h, w)}}
			runPipeline(t, m, "default,upgrade-opset", v)
			if got := m.OpsetVersion(""); got != 21 {
				t.Errorf("opset %d", got)
			}
			for _, n := range m.Graph.Nodes {
				if n.OpType == "BatchNormalization" {
					if p := n.Input(0).Producer; p != nil && (p.OpType == "Conv" || p.OpType == "ConvTranspose" || p.OpType == "Gemm") && len(n.Input(0).Consumers) == 1 {
						t.Errorf("BatchNormalization %s after %s was not folded", n, p)
					}
				}
				if n.OpType == "Constant" {
					t.Errorf("Constant node %s left", n)
				}
			}
		})
	}
}

func TestUpgradeRewrites(t *testing.T) {
	// Opset 9 ops whose signature changes: Clip (11), Unsqueeze/Squeeze (13),
	// ReduceMean (18), Softmax pre-13 on a 3-D input (axis 1: flattens two dims).
	b := testmodels.NewBuilder(4, 9)
	x := b.Input("input", 2, 3, 5)
	c := b.G.AddNode("Clip", "clip", []*graph.Value{x}, []string{"c"}, graph.AttrFloatOf("min", -0.5), graph.AttrFloatOf("max", 0.5)).Output()
	u := b.G.AddNode("Unsqueeze", "unsq", []*graph.Value{c}, []string{"u"}, graph.AttrIntsOf("axes", 0)).Output()
	s := b.G.AddNode("Squeeze", "sq", []*graph.Value{u}, []string{"s"}, graph.AttrIntsOf("axes", 0)).Output()
	r := b.G.AddNode("ReduceMean", "rm", []*graph.Value{s}, []string{"r"}, graph.AttrIntsOf("axes", 2)).Output()
	sm := b.G.AddNode("Softmax", "sm", []*graph.Value{x}, []string{"sm"}).Output()
	r.SetTensorType(graph.Float, nil)
	sm.SetTensorType(graph.Float, nil)
	b.G.AddOutput(r)
	b.G.AddOutput(sm)
	rep := runPipeline(t, b.M, "upgrade-opset:18", nil)
	if rep.Changes[0].Count != 6 { // 5 nodes + the version
		t.Errorf("changed %d: %v", rep.Changes[0].Count, rep.Changes[0].Nodes)
	}
	for _, n := range b.M.Graph.Nodes {
		if n.HasAttr("axes") || n.HasAttr("min") {
			t.Errorf("node %s still has attribute inputs", n)
		}
	}
	if ops := countOps(b.M); ops["Flatten"] != 1 || ops["Reshape"] != 1 {
		t.Errorf("softmax not made explicit: %v", ops)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Parse("default,frobnicate", Options{}); err == nil || !strings.Contains(err.Error(), `unknown pass "frobnicate"`) {
		t.Errorf("unknown pass: %v", err)
	}
	if _, err := Parse("upgrade-opset:25", Options{}); err == nil || !strings.Contains(err.Error(), "opset 25 cannot be reached") {
		t.Errorf("opset 25: %v", err)
	}
	m := testmodels.ConvBNReLU(1) // opset 13
	ps, _ := Parse("upgrade-opset:11", Options{})
	if _, err := (&Pipeline{Passes: ps}).Run(m); err == nil || !strings.Contains(err.Error(), "downgrading to 11 is not supported") {
		t.Errorf("downgrade: %v", err)
	}
	// An op with no upgrade rule is refused by name, and nothing changes.
	m2 := graph.NewModel(graph.Opset{Domain: "", Version: 11})
	x := m2.Graph.AddInput("x", graph.Float, []int64{2, 2})
	n := m2.Graph.AddNode("Det", "det1", []*graph.Value{x}, []string{"y"})
	m2.Graph.AddOutput(n.Output())
	ps, _ = Parse("upgrade-opset", Options{})
	if _, err := (&Pipeline{Passes: ps}).Run(m2); err == nil || !strings.Contains(err.Error(), `cannot upgrade node "det1" (Det) from opset 11 to 21`) {
		t.Errorf("no rule: %v", err)
	}
	if m2.OpsetVersion("") != 11 {
		t.Error("a refused upgrade changed the opset")
	}
}
