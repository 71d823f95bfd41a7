package graph

import (
	"errors"
	"fmt"
	"strings"
)

// TopoSort puts the nodes in topological order (see TopoOrder).
func (g *Graph) TopoSort() error {
	order, err := g.TopoOrder()
	if err != nil {
		return err
	}
	g.Nodes = order
	return nil
}

// TopoOrder returns the nodes in an order where every node comes after the
// producers of its inputs, without changing the graph. It is stable: a graph
// already in order keeps its order, and otherwise nodes move only as far as
// needed. A cycle is an error naming its nodes.
func (g *Graph) TopoOrder() ([]*Node, error) {
	const (
		unseen = iota
		active
		done
	)
	state := make(map[*Node]int, len(g.Nodes))
	inGraph := make(map[*Node]bool, len(g.Nodes))
	for _, n := range g.Nodes {
		inGraph[n] = true
	}
	order := make([]*Node, 0, len(g.Nodes))
	var stack []*Node
	var visit func(n *Node) error
	visit = func(n *Node) error {
		switch state[n] {
		case done:
			return nil
		case active:
			// The stack from n on walks producers backwards; report it in data-flow order.
			i := len(stack) - 1
			for stack[i] != n {
				i--
			}
			names := []string{n.String()}
			for j := len(stack) - 1; j > i; j-- {
				names = append(names, stack[j].String())
			}
			return fmt.Errorf("graph has a cycle: %s -> %s", strings.Join(names, " -> "), n)
		}
		state[n] = active
		stack = append(stack, n)
		for _, v := range append(append([]*Value(nil), n.Inputs...), n.Implicit...) {
			if v != nil && v.Producer != nil && inGraph[v.Producer] {
				if err := visit(v.Producer); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		order = append(order, n)
		return nil
	}
	for _, n := range g.Nodes {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Validate checks the graph's structure and returns every problem found, each
// naming the node or value: inputs that nothing defines, values defined twice,
// outputs nothing produces, cycles, and node domains without an opset import.
func (g *Graph) Validate() error {
	var errs []error
	defined := func(v *Value) bool {
		return v.Producer != nil || v.Const != nil || v.Sparse || g.IsInput(v)
	}
	inputs := map[*Value]bool{}
	for _, v := range g.Inputs {
		if inputs[v] {
			errs = append(errs, fmt.Errorf("graph input %q is listed twice", v.Name))
		}
		inputs[v] = true
	}
	for _, n := range g.Nodes {
		if n.OpType == "" {
			errs = append(errs, fmt.Errorf("node %s has no op_type", n))
		}
		for _, v := range n.Inputs {
			if v != nil && !defined(v) {
				errs = append(errs, fmt.Errorf("node %s reads %q, which no node, graph input or initializer defines", n, v.Name))
			}
		}
		for _, v := range n.Implicit {
			if !defined(v) {
				errs = append(errs, fmt.Errorf("a subgraph of node %s reads %q, which the enclosing graph does not define", n, v.Name))
			}
		}
		for _, v := range n.Outputs {
			switch {
			case v == nil:
			case v.Producer != n:
				errs = append(errs, fmt.Errorf("value %q is produced by both node %s and node %s", v.Name, v.Producer, n))
			case v.Const != nil:
				errs = append(errs, fmt.Errorf("node %s outputs %q, which is also an initializer", n, v.Name))
			case inputs[v]:
				errs = append(errs, fmt.Errorf("node %s outputs %q, which is also a graph input", n, v.Name))
			}
		}
		seen := map[*Value]bool{}
		for _, v := range n.Outputs {
			if v != nil && seen[v] {
				errs = append(errs, fmt.Errorf("node %s lists output %q twice", n, v.Name))
			}
			seen[v] = true
		}
		if g.model != nil && !IsStandardDomain(n.Domain) && g.model.OpsetVersion(n.Domain) == 0 {
			errs = append(errs, fmt.Errorf("node %s uses domain %q, which the model does not import", n, n.Domain))
		}
	}
	for _, v := range g.Outputs {
		if !defined(v) {
			errs = append(errs, fmt.Errorf("graph output %q is not produced by any node, input or initializer", v.Name))
		}
	}
	if g.model != nil && g.model.OpsetVersion("") == 0 {
		for _, n := range g.Nodes {
			if IsStandardDomain(n.Domain) {
				errs = append(errs, errors.New("the model has nodes of the default domain but no opset import for it"))
				break
			}
		}
	}
	if _, err := g.TopoOrder(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
