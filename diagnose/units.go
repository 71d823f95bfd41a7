package diagnose

import (
	"fmt"
	"maps"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/passes"
)

// Unit is what sensitivity analysis and tuning switch on and off together:
// a node (with the activation grouped after it, as convert places Q/DQ) and
// the tensors it owns: its weight and bias, and the activations it produces
// (with the outputs of movement ops that share their encoding).
type Unit struct {
	Node   string `json:"node"`
	OpType string `json:"op_type"`
	// Index is the node's position in the float model's topological order.
	Index       int      `json:"index"`
	Weights     []string `json:"weights,omitempty"` // weight and bias initializers
	Activations []string `json:"activations,omitempty"`
}

// Tensors lists the unit's weights and activations.
func (u *Unit) Tensors() []string { return append(slices.Clone(u.Weights), u.Activations...) }

// Units groups the encodings of a QDQ plan of f (the float model the plan was
// made for) by the node that owns them, in f's topological order. Graph
// inputs with an encoding are units of their own (op type "Input").
func Units(f *graph.Model, qp *passes.QDQPlan) ([]Unit, error) {
	g := f.Graph
	order, err := g.TopoOrder()
	if err != nil {
		return nil, err
	}
	index := map[*graph.Node]int{}
	for i, n := range order {
		index[n] = i
	}
	byNode := map[*graph.Node]*Unit{}
	inputs := map[string]*Unit{}
	unitOf := func(n *graph.Node) *Unit {
		u := byNode[n]
		if u == nil {
			u = &Unit{Node: n.Name, OpType: n.OpType, Index: index[n]}
			byNode[n] = u
		}
		return u
	}
	// owner walks from a tensor to the node convert placed its encoding for.
	var owner func(v *graph.Value) (*graph.Node, *graph.Value)
	owner = func(v *graph.Value) (*graph.Node, *graph.Value) {
		p := v.Producer
		switch {
		case p == nil:
			return nil, v
		case passes.PassThroughOps[p.OpType] && p.Input(0) != nil && qp.Activations[p.Input(0).Name] == qp.Activations[v.Name]:
			return owner(p.Input(0))
		case passes.GroupedActivations[p.OpType] && p.Input(0) != nil && p.Input(0).Producer != nil && len(p.Input(0).Consumers) == 1 && qp.Activations[p.Input(0).Name] == nil:
			return p.Input(0).Producer, v
		}
		return p, v
	}
	for _, name := range slices.Sorted(maps.Keys(qp.Activations)) {
		v := g.Value(name)
		if v == nil {
			return nil, fmt.Errorf("activation %q of the plan is not in the model", name)
		}
		n, root := owner(v)
		if n == nil {
			u := inputs[root.Name]
			if u == nil {
				u = &Unit{Node: "input " + root.Name, OpType: "Input", Index: -1}
				inputs[root.Name] = u
			}
			u.Activations = append(u.Activations, name)
			continue
		}
		unitOf(n).Activations = append(unitOf(n).Activations, name)
	}
	weights := append(slices.Sorted(maps.Keys(qp.Weights)), slices.Sorted(maps.Keys(qp.Biases))...)
	for _, name := range weights {
		v := g.Value(name)
		if v == nil || len(v.Consumers) == 0 {
			return nil, fmt.Errorf("weight %q of the plan is not read in the model", name)
		}
		u := unitOf(v.Consumers[0])
		if !slices.Contains(u.Weights, name) {
			u.Weights = append(u.Weights, name)
		}
	}
	var out []Unit
	for _, name := range slices.Sorted(maps.Keys(inputs)) {
		out = append(out, *inputs[name])
	}
	var nodes []*Unit
	for _, u := range byNode {
		nodes = append(nodes, u)
	}
	slices.SortFunc(nodes, func(a, b *Unit) int { return a.Index - b.Index })
	for _, u := range nodes {
		out = append(out, *u)
	}
	return out, nil
}

// SubPlan is the part of qp that holds (keep true) or leaves out (keep
// false) the named tensors; biases go with the set their name is in.
func SubPlan(qp *passes.QDQPlan, names map[string]bool, keep bool) *passes.QDQPlan {
	out := &passes.QDQPlan{Activations: map[string]*passes.Encoding{}, Weights: map[string]*passes.Encoding{}, Biases: map[string]passes.BiasPlan{}}
	for k, v := range qp.Activations {
		if names[k] == keep {
			out.Activations[k] = v
		}
	}
	for k, v := range qp.Weights {
		if names[k] == keep {
			out.Weights[k] = v
		}
	}
	for k, v := range qp.Biases {
		if names[k] == keep {
			out.Biases[k] = v
		}
	}
	return out
}
