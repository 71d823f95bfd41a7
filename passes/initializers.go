package passes

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
)

func init() {
	registerSimple("initializers-not-inputs", "treat initializers as constants: drop graph inputs that only repeat an initializer (IR < 4 exporters list every weight as an input, which blocks folding and keeps float weights beside quantized ones)", exact, initializersNotInputs)
	registerSimple("drop-unused-initializers", "remove initializers nothing reads (graph inputs stay)", exact, func(m *graph.Model, _ *State, c *Change) error {
		dropUnusedInitializers(m.Graph, c)
		return nil
	})
}

// initializersNotInputs removes every graph input that has an initializer of
// the same name: the runtime may no longer replace it, so passes may fold it
// and the QDQ rewrite may drop the float copy of a quantized weight.
func initializersNotInputs(m *graph.Model, _ *State, c *Change) error {
	g := m.Graph
	kept := g.Inputs[:0]
	for _, in := range g.Inputs {
		if in.Const != nil {
			c.Count++
			c.Notes = append(c.Notes, fmt.Sprintf("input %q (an initializer)", in.Name))
			continue
		}
		kept = append(kept, in)
	}
	g.Inputs = kept
	// IR 3 requires every initializer to be a graph input; the version that
	// lifts it is 4, and the opset may need a later one still.
	if c.Count > 0 {
		if ir := max(4, irFor(m.OpsetVersion(""))); m.IRVersion() < ir {
			m.Proto.IrVersion = &ir
			c.Notes = append(c.Notes, fmt.Sprintf("ir_version -> %d (initializers need not be inputs from IR 4)", ir))
		}
	}
	return nil
}

// DropUnusedInitializers removes initializers that no node reads and that are
// neither graph inputs nor outputs, e.g. a float weight left after its
// quantized copy replaced it. The change names each one.
func DropUnusedInitializers(m *graph.Model) *Change {
	c := &Change{Pass: "drop-unused-initializers", MaxRelDiff: -1}
	dropUnusedInitializers(m.Graph, c)
	return c
}

func dropUnusedInitializers(g *graph.Graph, c *Change) {
	for _, v := range append([]*graph.Value(nil), g.Initializers...) {
		if len(v.Consumers) == 0 && !g.IsOutput(v) && !g.IsInput(v) {
			g.RemoveInitializer(v)
			c.Count++
			c.Notes = append(c.Notes, fmt.Sprintf("initializer %q", v.Name))
		}
	}
}
