package passes

import (
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

// TestInitializersNotInputs: on an IR 3 model (every weight also a graph
// input) the default pipeline drops those inputs, names them, lifts the IR
// version so the file stays valid, and then folds BatchNorm as on the modern
// model; with KeepInitializerInputs the inputs stay and nothing is folded into
// them.
func TestInitializersNotInputs(t *testing.T) {
	m := testmodels.IR3Style(testmodels.ConvBNReLU(1))
	weights := len(m.Graph.Inputs) - 1
	if weights < 10 || m.IRVersion() != 3 {
		t.Fatalf("IR3Style: %d weight inputs, ir %d", weights, m.IRVersion())
	}
	rep := runPipeline(t, m, "default", nil)
	c := rep.Changes[0]
	if c.Pass != "initializers-not-inputs" || c.Count != weights {
		t.Fatalf("first change %s count %d, want initializers-not-inputs %d", c.Pass, c.Count, weights)
	}
	if len(m.Graph.Inputs) != 1 || m.Graph.Inputs[0].Name != "input" {
		t.Errorf("inputs left: %v", names(m.Graph.Inputs))
	}
	if m.IRVersion() != 7 || !strings.Contains(strings.Join(c.Notes, "\n"), "ir_version -> 7") {
		t.Errorf("ir_version %d, notes %v", m.IRVersion(), c.Notes)
	}
	if !strings.Contains(c.Notes[0], "input \"") {
		t.Errorf("notes do not name the inputs: %v", c.Notes)
	}
	if ops := countOps(m); ops["BatchNormalization"] != 0 {
		t.Errorf("BatchNorm not folded once its parameters are constants: %v", ops)
	}
	// Nothing unused is left: every initializer has a reader.
	for _, v := range m.Graph.Initializers {
		if len(v.Consumers) == 0 {
			t.Errorf("unused initializer %q", v.Name)
		}
	}

	k := testmodels.IR3Style(testmodels.ConvBNReLU(1))
	ps, err := Parse("default", Options{KeepInitializerInputs: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Name() == "initializers-not-inputs" {
			t.Fatal("KeepInitializerInputs still runs initializers-not-inputs")
		}
	}
	if _, err := (&Pipeline{Passes: ps, Verify: &Verifier{Seed: 3}}).Run(k); err != nil {
		t.Fatal(err)
	}
	if len(k.Graph.Inputs) != weights+1 || k.IRVersion() != 3 {
		t.Errorf("with KeepInitializerInputs: %d inputs (want %d), ir %d", len(k.Graph.Inputs), weights+1, k.IRVersion())
	}
}

// TestDropUnusedInitializers: an initializer nothing reads goes, one that is
// a graph input or output stays.
func TestDropUnusedInitializers(t *testing.T) {
	m := testmodels.ConvBNReLU(1)
	g := m.Graph
	g.AddInitializer("orphan", graph.Float32Tensor([]int{2}, []float32{1, 2}))
	in := g.AddInitializer("overridable", graph.Float32Tensor([]int{1}, []float32{3}))
	in.SetTensorType(graph.Float, []int64{1})
	g.Inputs = append(g.Inputs, in)
	c := DropUnusedInitializers(m)
	if c.Count != 1 || c.Notes[0] != `initializer "orphan"` || g.Value("orphan") != nil {
		t.Errorf("change %+v", c)
	}
	if g.Value("overridable") == nil || g.Value("overridable").Const == nil {
		t.Error("an initializer that is a graph input was dropped")
	}
}

func names(vs []*graph.Value) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}
