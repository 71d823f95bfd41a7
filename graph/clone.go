package graph

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/onnxq/onnxq/graph/onnxpb"
)

// CloneShared returns a copy of m whose structure is its own (nodes,
// values, attributes, metadata: edit it freely) and whose initializer
// tensors are m's, not copied. Analyses that build many variants of one
// model (a Q/DQ plan each, sensitivity analysis hundreds) decoded an
// encoded copy each time: every weight copied again, 14% of a ResNet-50
// sensitivity run's CPU. Neither model may change a shared tensor in place
// afterwards (passes make new tensors); lazily loaded tensors are read
// into memory first, so the copies can be used from several goroutines.
func (m *Model) CloneShared() (*Model, error) {
	for _, v := range m.Graph.Initializers {
		if err := v.Const.Materialize(); err != nil {
			return nil, fmt.Errorf("initializer %q: %w", v.Name, err)
		}
	}
	c := &Model{Proto: proto.Clone(m.Proto).(*onnxpb.ModelProto), Dir: m.Dir}
	c.Graph = m.Graph.cloneShared(c)
	return c, nil
}

// cloneShared copies g's structure into a graph of model c; constants are
// shared.
func (g *Graph) cloneShared(c *Model) *Graph {
	ng := newGraph(c, proto.Clone(g.Proto).(*onnxpb.GraphProto))
	vals := make(map[*Value]*Value, len(g.values))
	for name, v := range g.values {
		nv := &Value{Name: v.Name, Const: v.Const, Sparse: v.Sparse}
		if v.Info != nil {
			nv.Info = proto.Clone(v.Info).(*onnxpb.ValueInfoProto)
		}
		ng.values[name] = nv
		vals[v] = nv
	}
	// A value outside g (none in a model's main graph) stays the same one.
	val := func(v *Value) *Value {
		if nv, ok := vals[v]; ok {
			return nv
		}
		return v
	}
	vs := func(in []*Value) []*Value {
		if in == nil {
			return nil
		}
		out := make([]*Value, len(in))
		for i, v := range in {
			if v != nil {
				out[i] = val(v)
			}
		}
		return out
	}
	nodes := make(map[*Node]*Node, len(g.Nodes))
	ng.Nodes = make([]*Node, len(g.Nodes))
	for i, n := range g.Nodes {
		nn := &Node{Name: n.Name, OpType: n.OpType, Domain: n.Domain, Inputs: vs(n.Inputs), Outputs: vs(n.Outputs), Implicit: vs(n.Implicit)}
		if n.Attrs != nil {
			nn.Attrs = make([]*onnxpb.AttributeProto, len(n.Attrs))
			for j, a := range n.Attrs {
				nn.Attrs[j] = proto.Clone(a).(*onnxpb.AttributeProto)
			}
		}
		if n.Proto != nil {
			nn.Proto = proto.Clone(n.Proto).(*onnxpb.NodeProto)
		}
		ng.Nodes[i] = nn
		nodes[n] = nn
	}
	for v, nv := range vals {
		if v.Producer != nil {
			nv.Producer = nodes[v.Producer]
		}
		for _, r := range v.Consumers {
			if nr, ok := nodes[r]; ok {
				nv.Consumers = append(nv.Consumers, nr)
			}
		}
	}
	ng.Inputs, ng.Outputs = vs(g.Inputs), vs(g.Outputs)
	ng.Initializers, ng.ValueInfo = vs(g.Initializers), vs(g.ValueInfo)
	return ng
}
