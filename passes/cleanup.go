package passes

import (
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

func init() {
	registerSimple("constants-to-initializers", "turn Constant nodes into initializers (exporters such as paddle2onnx keep weights in Constant nodes)", exact, constantsToInitializers)
	registerSimple("eliminate-identity", "remove Identity and inference Dropout nodes", exact, eliminateIdentity)
	registerSimple("fold-constants", "compute nodes whose inputs are all constant (and Shape of static shapes) once, as initializers", exact, foldConstants)
	registerSimple("eliminate-dead", "remove nodes, initializers and value_info that no graph output depends on", exact, eliminateDead)
	registerSimple("infer-shapes", "record static shapes and element types of every value (symbolic input dims carried through)", exact, inferShapes)
}

func isStd(n *graph.Node, op string) bool { return n.OpType == op && graph.IsStandardDomain(n.Domain) }

func constantsToInitializers(m *graph.Model, _ *State, c *Change) error {
	g := m.Graph
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		if !isStd(n, "Constant") || len(n.Outputs) != 1 || n.Outputs[0] == nil {
			continue
		}
		outs, err := kernels.EvalNode(m, n, nil)
		if err != nil {
			return err
		}
		v := n.Outputs[0]
		if g.IsOutput(v) {
			continue // a graph output must stay a node output for some runtimes
		}
		g.RemoveNode(n)
		g.AddInitializer(v.Name, outs[0])
		c.add(n.String())
	}
	return nil
}

// bypass removes a node that passes its first input through unchanged.
func bypass(g *graph.Graph, n *graph.Node) bool {
	in, out := n.Input(0), n.Output()
	if in == nil || out == nil {
		return false
	}
	if !g.IsOutput(out) {
		if err := g.ReplaceUses(out, in); err != nil {
			return false
		}
		g.RemoveNode(n)
		return true
	}
	// The output name is part of the model's interface: let the input's producer
	// write it directly, when nothing else reads the input.
	p := in.Producer
	if p == nil || len(in.Consumers) != 1 || g.IsOutput(in) || g.IsInput(in) {
		return false
	}
	g.RemoveNode(n)
	for i, o := range p.Outputs {
		if o == in {
			p.Outputs[i] = out
		}
	}
	out.Producer = p
	g.Forget(in)
	return true
}

func eliminateIdentity(m *graph.Model, _ *State, c *Change) error {
	g := m.Graph
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		switch {
		case isStd(n, "Identity"):
		case isStd(n, "Dropout"):
			if len(n.Outputs) > 1 && n.Outputs[1] != nil && (len(n.Outputs[1].Consumers) > 0 || g.IsOutput(n.Outputs[1])) {
				continue // the mask is used
			}
			if t := n.Input(2); t != nil && (t.Const == nil || t.Const.DType != graph.Bool || t.Const.Data().([]bool)[0]) {
				continue // training mode, or not known to be off
			}
		default:
			continue
		}
		name := n.String()
		if len(n.Outputs) > 1 {
			if mask := n.Outputs[1]; mask != nil {
				n.Outputs = n.Outputs[:1]
				mask.Producer = nil
				g.Forget(mask)
			}
		}
		if bypass(g, n) {
			c.add(name)
		}
	}
	return nil
}

// foldable reports whether folding n is safe and worthwhile.
func foldable(g *graph.Graph, n *graph.Node) bool {
	if !graph.IsStandardDomain(n.Domain) || len(n.Subgraphs()) > 0 {
		return false
	}
	switch n.OpType {
	case "QuantizeLinear", "DequantizeLinear", "Constant":
		return false // keep quantized weights quantized; Constant has its own pass
	case "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial":
		return false // one draw folded into the model would stop it being random
	}
	for _, o := range n.Outputs {
		if o != nil && g.IsOutput(o) {
			return false
		}
	}
	return true
}

func foldConstants(m *graph.Model, _ *State, c *Change) error {
	g := m.Graph
	order, err := g.TopoOrder()
	if err != nil {
		return err
	}
	for _, n := range order {
		if !foldable(g, n) {
			continue
		}
		var in []*graph.Tensor
		inBytes := int64(0)
		ok := true
		for _, v := range n.Inputs {
			if v == nil {
				in = append(in, nil)
				continue
			}
			if v.Const == nil || g.IsInput(v) {
				ok = false
				break
			}
			in = append(in, v.Const)
			inBytes += v.Const.ByteSize()
		}
		var outs []*graph.Tensor
		if isStd(n, "Shape") && !ok {
			// Shape of a value whose shape is fully known.
			shape, static := n.Input(0).StaticShape()
			if !static {
				continue
			}
			ok, in = true, []*graph.Tensor{graph.NewTensor(graph.Float, shape)}
			inBytes = 0
		}
		if !ok || !kernels.Supported(n.Domain, n.OpType, m.OpsetVersion(n.Domain)) {
			continue
		}
		if outs, err = kernels.EvalNode(m, n, in); err != nil {
			continue // leave nodes that fail for the runtime to report
		}
		if !allTensors(outs) {
			continue // a sequence or optional cannot be an initializer
		}
		var outBytes int64
		for _, t := range outs {
			if t != nil {
				outBytes += t.ByteSize()
			}
		}
		// Do not inflate the model (Expand, Tile, ConstantOfShape of large shapes).
		if outBytes > max(2*inBytes, 64<<10) {
			continue
		}
		name := n.String()
		outVals := append([]*graph.Value(nil), n.Outputs...)
		g.RemoveNode(n)
		for i, v := range outVals {
			if v != nil && i < len(outs) && outs[i] != nil {
				g.AddInitializer(v.Name, outs[i].Clone())
			}
		}
		c.add(name)
	}
	return nil
}

func eliminateDead(m *graph.Model, _ *State, c *Change) error {
	g := m.Graph
	live := map[*graph.Node]bool{}
	var mark func(v *graph.Value)
	mark = func(v *graph.Value) {
		if v == nil || v.Producer == nil || live[v.Producer] {
			return
		}
		p := v.Producer
		live[p] = true
		for _, in := range p.Inputs {
			mark(in)
		}
		for _, in := range p.Implicit {
			mark(in)
		}
	}
	for _, o := range g.Outputs {
		mark(o)
	}
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		if !live[n] {
			g.RemoveNode(n)
			c.add(n.String())
		}
	}
	dropUnusedInitializers(g, c)
	return nil
}

// allTensors reports whether every value is a tensor (not a sequence or an
// optional, which executors carry in a Tensor too).
func allTensors(vs []*graph.Tensor) bool {
	for _, t := range vs {
		if t != nil && (t.DType == graph.SequenceOf || t.DType == graph.OptionalOf) {
			return false
		}
	}
	return true
}
