package diagnose

import (
	"fmt"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

// suffix is the part of a variant model that differs from a base model: the
// nodes whose computation changed or that read a changed value. Its inputs
// are values both models compute alike, taken from a run of the base model,
// so a variant costs only what follows its first change (prefix reuse).
type suffix struct {
	model *graph.Model
	// inputs are read from the base run, by name.
	inputs []string
	// outputs maps each variant graph output to where it comes from: the
	// suffix (true) or the base run (false).
	outputs []suffixOutput
	nodes   int // nodes in the suffix
}

type suffixOutput struct {
	name   string
	ownRun bool
}

// cutSuffix extracts from variant the nodes that differ from base. A node
// differs when base has no node of its name, another op, other input names,
// or it reads a value a differing node produces.
func cutSuffix(base, variant *graph.Model) (*suffix, error) {
	baseNodes := map[string]*graph.Node{}
	for _, n := range base.Graph.Nodes {
		baseNodes[n.Name] = n
	}
	order, err := variant.Graph.TopoOrder()
	if err != nil {
		return nil, err
	}
	dirty := map[*graph.Value]bool{}
	var nodes []*graph.Node
	for _, n := range order {
		b := baseNodes[n.Name]
		d := b == nil || b.OpType != n.OpType || b.Domain != n.Domain || !sameNames(b.Inputs, n.Inputs) || !sameNames(b.Outputs, n.Outputs)
		for _, in := range n.Inputs {
			d = d || (in != nil && dirty[in])
		}
		if d {
			nodes = append(nodes, n)
			for _, o := range n.Outputs {
				if o != nil {
					dirty[o] = true
				}
			}
		}
	}
	m := graph.NewModel(variant.Opsets()...)
	g := m.Graph
	made := map[string]*graph.Value{}
	s := &suffix{model: m, nodes: len(nodes)}
	value := func(v *graph.Value) (*graph.Value, error) {
		if v == nil {
			return nil, nil
		}
		if nv, ok := made[v.Name]; ok {
			return nv, nil
		}
		var nv *graph.Value
		switch {
		case v.Const != nil:
			nv = g.AddInitializer(v.Name, v.Const)
		case dirty[v]:
			return nil, fmt.Errorf("value %q is read before it is computed", v.Name)
		default:
			if base.Graph.Value(v.Name) == nil {
				return nil, fmt.Errorf("value %q of the variant is not computed by the base model", v.Name)
			}
			nv = g.AddInput(v.Name, v.ElemType(), nil)
			s.inputs = append(s.inputs, v.Name)
		}
		made[v.Name] = nv
		return nv, nil
	}
	for _, n := range nodes {
		ins := make([]*graph.Value, len(n.Inputs))
		for i, in := range n.Inputs {
			if ins[i], err = value(in); err != nil {
				return nil, err
			}
		}
		outs := make([]string, len(n.Outputs))
		for i, o := range n.Outputs {
			if o != nil {
				outs[i] = o.Name
			}
		}
		nn := g.AddNode(n.OpType, n.Name, ins, outs, n.Attrs...)
		nn.Domain = n.Domain
		for i, o := range nn.Outputs {
			if o != nil {
				if o.Name != outs[i] {
					return nil, fmt.Errorf("value %q is produced twice", outs[i])
				}
				made[o.Name] = o
			}
		}
	}
	for _, o := range variant.Graph.Outputs {
		if dirty[o] {
			g.AddOutput(made[o.Name])
			s.outputs = append(s.outputs, suffixOutput{o.Name, true})
		} else {
			s.outputs = append(s.outputs, suffixOutput{o.Name, false})
		}
	}
	return s, nil
}

func sameNames(a, b []*graph.Value) bool {
	return slices.EqualFunc(a, b, func(x, y *graph.Value) bool {
		if x == nil || y == nil {
			return x == y
		}
		return x.Name == y.Name
	})
}
