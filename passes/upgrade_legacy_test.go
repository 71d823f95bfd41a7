package passes

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/testmodels"
)

// legacyLeftovers lists what an upgraded model must not keep: attributes
// opset 7 dropped, and experimental ops.
func legacyLeftovers(m *graph.Model) []string {
	var out []string
	for _, n := range m.Graph.Nodes {
		for _, a := range []string{"consumed_inputs", "broadcast", "is_test", "paddings", "height_scale", "output_sequence"} {
			if n.HasAttr(a) {
				out = append(out, n.String()+" keeps "+a)
			}
		}
		if experimentalOps[n.OpType] {
			out = append(out, n.String())
		}
	}
	return out
}

// oldModels are the backend test models below opset 7 (PyTorch's opset-6
// exports of its modules and operators), and the opset-3 LegacyCNN.
func oldModels(t *testing.T) map[string]string {
	out := map[string]string{}
	for _, p := range testdata.BackendModels(t) {
		if !strings.Contains(p, "/pytorch-") {
			continue
		}
		m, err := graph.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if m.OpsetVersion("") < 7 {
			out[filepath.Base(filepath.Dir(p))] = p
		}
	}
	if len(out) < 100 {
		t.Fatalf("only %d backend models below opset 7", len(out))
	}
	return out
}

// backendCase reads a backend test's first data set: its inputs by the
// graph's input names, and its expected outputs by the graph's output names.
func backendCase(t *testing.T, m *graph.Model, dir string) (in, want map[string]*graph.Tensor) {
	in, want = map[string]*graph.Tensor{}, map[string]*graph.Tensor{}
	read := func(vs []*graph.Value, kind string, into map[string]*graph.Tensor) {
		k := 0
		for _, v := range vs {
			if v.Const != nil {
				continue
			}
			x, err := graph.ReadTensorFile(filepath.Join(dir, "test_data_set_0", fmt.Sprintf("%s_%d.pb", kind, k)))
			if err != nil {
				t.Fatal(err)
			}
			into[v.Name] = x
			k++
		}
	}
	read(m.Graph.Inputs, "input", in)
	read(m.Graph.Outputs, "output", want)
	return in, want
}

// TestUpgradeLegacyModels upgrades every model below opset 7 to opsets 13
// and 21 on its test data: verified against the model as it was (the
// kernels run both), the upgraded model's outputs are the expected ones,
// and nothing of the old forms is left.
func TestUpgradeLegacyModels(t *testing.T) {
	paths := oldModels(t)
	for name, path := range paths {
		for _, to := range []int64{13, 21} {
			m, err := graph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Run(fmt.Sprintf("%s@%d", name, to), func(t *testing.T) {
				in, want := backendCase(t, m, filepath.Dir(path))
				runPipeline(t, m, fmt.Sprintf("upgrade-opset:%d", to), nil)
				if v := m.OpsetVersion(""); v != to {
					t.Errorf("opset %d after upgrade-opset:%d", v, to)
				}
				if l := legacyLeftovers(m); len(l) > 0 {
					t.Errorf("left: %v", l)
				}
				got, err := runModel(m, in)
				if err != nil {
					t.Fatal(err)
				}
				// The backend's tolerance (rtol 1e-3, atol 1e-7): some of
				// PyTorch's old test data hold uninitialized memory (1e198
				// next to 7e-310, which runs flush to 0).
				for name, w := range want {
					wf, err1 := w.AsFloat64()
					gf, err2 := got[name].AsFloat64()
					if err1 != nil || err2 != nil || len(wf) != len(gf) {
						t.Fatalf("output %q: %v %v, %d values against %d", name, err1, err2, len(gf), len(wf))
					}
					for i := range wf {
						if math.Abs(gf[i]-wf[i]) > 1e-7+1e-3*math.Abs(wf[i]) && !(math.IsNaN(gf[i]) && math.IsNaN(wf[i])) {
							t.Fatalf("output %q[%d] = %g, the test data %g", name, i, gf[i], wf[i])
						}
					}
				}
			})
		}
	}
	m := testmodels.LegacyCNN(1)
	rep := runPipeline(t, m, "upgrade-opset:13", nil)
	if l := legacyLeftovers(m); len(l) > 0 {
		t.Errorf("LegacyCNN left: %v", l)
	}
	ops := countOps(m)
	if ops["ImageScaler"] != 0 || ops["Upsample"] != 0 || ops["Resize"] != 1 || ops["Unsqueeze"] != 0 {
		t.Errorf("LegacyCNN upgraded to ops %v", ops)
	}
	// The per-channel operands became [C, 1, 1] constants, not Unsqueezes.
	for _, n := range m.Graph.Nodes {
		if (n.OpType == "Add" || n.OpType == "Mul") && n.Input(1).Const != nil && n.Input(1).Const.Rank() == 1 && n.Input(1).Const.Len() > 1 {
			t.Errorf("%s still reads a 1-D operand %v", n, n.Input(1).Const.Shape)
		}
	}
	if rep.Changes[0].Count < 20 {
		t.Errorf("LegacyCNN: %d changes: %v", rep.Changes[0].Count, rep.Changes[0].Nodes)
	}
}

// TestUpgradeExperimentalOps: the experimental ops of an opset-8 model become
// standard ops (ImageScaler Mul and Add, ScaledTanh Mul, Tanh, Mul, Crop
// Slice, ...), verified against the kernels' experimental ops.
func TestUpgradeExperimentalOps(t *testing.T) {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 8})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{1, 3, 8, 10})
	v := g.AddNode("ImageScaler", "is", []*graph.Value{x}, []string{"is"}, graph.AttrFloatOf("scale", 0.25), graph.AttrFloatsOf("bias", 1, -2, 0.5)).Output()
	v = g.AddNode("Affine", "af", []*graph.Value{v}, []string{"af"}, graph.AttrFloatOf("alpha", 1.5), graph.AttrFloatOf("beta", 0.25)).Output()
	v = g.AddNode("ScaledTanh", "st", []*graph.Value{v}, []string{"st"}, graph.AttrFloatOf("alpha", 2), graph.AttrFloatOf("beta", 0.5)).Output()
	v = g.AddNode("Crop", "crop", []*graph.Value{v}, []string{"crop"}, graph.AttrIntsOf("border", 1, 2, 3, 1)).Output()
	v = g.AddNode("ParametricSoftplus", "ps", []*graph.Value{v}, []string{"ps"}, graph.AttrFloatOf("alpha", 0.5), graph.AttrFloatOf("beta", 2)).Output()
	v = g.AddNode("Scale", "sc", []*graph.Value{v}, []string{"sc"}, graph.AttrFloatOf("scale", -1)).Output()
	v = g.AddNode("Crop", "crop2", []*graph.Value{v}, []string{"crop2"}, graph.AttrIntsOf("border", 1, 1, 0, 0), graph.AttrIntsOf("scale", 3, 4)).Output()
	v = g.AddNode("ThresholdedRelu", "tr", []*graph.Value{v}, []string{"y"}, graph.AttrFloatOf("alpha", -0.5)).Output()
	g.AddOutput(v)
	runPipeline(t, m, "upgrade-opset:13", nil)
	if l := legacyLeftovers(m); len(l) > 0 {
		t.Errorf("left: %v", l)
	}
	ops := countOps(m)
	want := map[string]int{"Mul": 7, "Add": 2, "Tanh": 1, "Softplus": 1, "Slice": 2, "ThresholdedRelu": 1}
	for op, n := range want {
		if ops[op] != n {
			t.Errorf("%d %s, want %d (ops %v)", ops[op], op, n, ops)
		}
	}
}

// TestUpgradeLegacyRefusal: a legacy broadcast by axis whose first input has
// no known shape (an input without one, so the model cannot be run to find
// it) is refused by name, and the model stays as it was.
func TestUpgradeLegacyRefusal(t *testing.T) {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 6})
	g := m.Graph
	x := g.AddInput("x", graph.Float, nil)
	b := g.AddInitializer("b", graph.Float32Tensor([]int{3}, []float32{1, 2, 3}))
	r := g.AddNode("Relu", "r", []*graph.Value{x}, []string{"r"}).Output()
	g.AddOutput(g.AddNode("Add", "add", []*graph.Value{r, b}, []string{"y"}, graph.AttrIntOf("broadcast", 1), graph.AttrIntOf("axis", 1)).Output())
	before, err := graph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := Parse("upgrade-opset:13", Options{})
	_, err = (&Pipeline{Passes: ps}).Run(m)
	if err == nil || !strings.Contains(err.Error(), `cannot upgrade node "add" (Add) from opset 6`) || !strings.Contains(err.Error(), `shape of "r"`) {
		t.Fatalf("got %v", err)
	}
	after, err := graph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a refused upgrade changed the model")
	}
}

// TestPipelineUpgradesLegacyFirst: passes on a model below opset 7 (here the
// default list, whose BatchNormalization and bias folds read Adds by numpy's
// rules) run after an upgrade to opset 7, which the report lists first.
func TestPipelineUpgradesLegacyFirst(t *testing.T) {
	m := testmodels.LegacyCNN(2)
	rep := runPipeline(t, m, "default", nil)
	if rep.Changes[0].Pass != "upgrade-opset" || m.OpsetVersion("") != 7 {
		t.Errorf("first change %s, opset %d", rep.Changes[0].Pass, m.OpsetVersion(""))
	}
	if ops := countOps(m); ops["BatchNormalization"] != 0 {
		t.Errorf("default passes left %v", ops)
	}
}

// TestUpgradeLpPoolOrder: LpPool-1's float p becomes LpPool-2's integer
// (verified); a p that is not a whole number is refused.
func TestUpgradeLpPoolOrder(t *testing.T) {
	build := func(p float32) *graph.Model {
		m := graph.NewModel(graph.Opset{Domain: "", Version: 1})
		x := m.Graph.AddInput("x", graph.Float, []int64{1, 2, 6, 6})
		y := m.Graph.AddNode("LpPool", "lp", []*graph.Value{x}, []string{"y"}, graph.AttrIntsOf("kernel_shape", 2, 2), graph.AttrFloatOf("p", p)).Output()
		m.Graph.AddOutput(m.Graph.AddNode("GlobalLpPool", "glp", []*graph.Value{y}, []string{"z"}, graph.AttrFloatOf("p", p)).Output())
		return m
	}
	m := build(3)
	runPipeline(t, m, "upgrade-opset:18", nil)
	for _, n := range m.Graph.Nodes {
		if a := n.Attr("p"); a == nil || a.GetI() != 3 || a.GetType() != onnxpb.AttributeProto_INT {
			t.Errorf("%s: p %v", n, a)
		}
	}
	ps, _ := Parse("upgrade-opset:18", Options{})
	if _, err := (&Pipeline{Passes: ps}).Run(build(2.5)); err == nil || !strings.Contains(err.Error(), "p = 2.5") {
		t.Errorf("p 2.5: %v", err)
	}
}

// TestNoPassesKeepLegacyModel: an empty pass list leaves a model below opset
// 7 as it is (optimize --passes none is a round trip).
func TestNoPassesKeepLegacyModel(t *testing.T) {
	m := testmodels.LegacyCNN(4)
	before, err := graph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Parse("none", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Pipeline{Passes: ps}).Run(m); err != nil {
		t.Fatal(err)
	}
	after, _ := graph.Marshal(m)
	if !bytes.Equal(before, after) || m.OpsetVersion("") != 3 {
		t.Error("no passes changed the model")
	}
}

// TestUpgradeConstantFill: ConstantFill's three forms become ConstantOfShape
// from opset 9 on (verified); to opset 8 it stays, as it still exists there.
func TestUpgradeConstantFill(t *testing.T) {
	build := func() *graph.Model {
		m := graph.NewModel(graph.Opset{Domain: "", Version: 6})
		g := m.Graph
		x := g.AddInput("x", graph.Float, []int64{2, 3})
		dims := g.AddInput("dims", graph.Int32, []int64{2})
		g.AddOutput(g.AddNode("ConstantFill", "like", []*graph.Value{x}, []string{"a"}, graph.AttrIntsOf("extra_shape", 4), graph.AttrFloatOf("value", 2)).Output())
		g.AddOutput(g.AddNode("ConstantFill", "fixed", nil, []string{"b"}, graph.AttrIntsOf("shape", 3, 1), graph.AttrIntOf("dtype", int64(graph.Int64)), graph.AttrFloatOf("value", 5)).Output())
		g.AddOutput(g.AddNode("ConstantFill", "asshape", []*graph.Value{dims}, []string{"c"}, graph.AttrIntOf("input_as_shape", 1), graph.AttrFloatOf("value", -1)).Output())
		return m
	}
	m := build()
	runPipeline(t, m, "upgrade-opset:13", nil)
	if ops := countOps(m); ops["ConstantOfShape"] != 3 || ops["ConstantFill"] != 0 {
		t.Errorf("to 13: %v", ops)
	}
	m = build()
	runPipeline(t, m, "upgrade-opset:8", nil)
	if ops := countOps(m); ops["ConstantFill"] != 3 {
		t.Errorf("to 8: %v", ops)
	}
}
