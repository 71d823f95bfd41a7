package graph_test

import (
	"bytes"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestCloneShared: on every real model (the backend tests' control flow
// and sequence graphs included) the clone encodes to the original's bytes
// and shares its initializer tensors, and edits to the clone's nodes,
// attributes, values and metadata leave the original's bytes as they were.
func TestCloneShared(t *testing.T) {
	files := realModels(t)
	edited := 0
	for _, f := range files {
		m, err := graph.Load(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want, err := graph.Marshal(m)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c, err := m.CloneShared()
		if err != nil {
			t.Fatalf("%s: clone: %v", f, err)
		}
		got, err := graph.Marshal(c)
		if err != nil {
			t.Fatalf("%s: encode clone: %v", f, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the clone encodes to other bytes (%d vs %d)", f, len(got), len(want))
		}
		if err := c.Graph.Validate(); err != nil {
			t.Fatalf("%s: clone: %v", f, err)
		}
		for i, v := range c.Graph.Initializers {
			o := m.Graph.Initializers[i]
			if v == o || v.Const != o.Const {
				t.Fatalf("%s: initializer %q: the clone must have its own value and the same tensor", f, v.Name)
			}
		}
		// Edit the clone everywhere the IR holds structure.
		g := c.Graph
		c.Proto.ProducerName = ptr("edited")
		g.Proto.Name = ptr("edited")
		for _, n := range g.Nodes {
			n.Name += "_edited"
			for _, a := range n.Attrs {
				a.Name = ptr(a.GetName() + "_edited")
			}
		}
		if len(g.Nodes) > 0 && len(g.Nodes[0].Outputs) > 0 && g.Nodes[0].Outputs[0] != nil {
			out := g.Nodes[0].Outputs[0]
			n := g.AddNode("Identity", "added", []*graph.Value{out}, []string{g.UniqueName("added")})
			if err := g.ReplaceUses(out, n.Output()); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			n.Inputs[0] = out // ReplaceUses redirected the new node too
			edited++
		}
		for _, v := range g.Initializers {
			if v.Info != nil {
				v.Info.DocString = ptr("edited")
			}
		}
		after, err := graph.Marshal(m)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(after, want) {
			t.Fatalf("%s: editing the clone changed the original", f)
		}
		if err := m.Graph.Validate(); err != nil {
			t.Fatalf("%s: original after editing the clone: %v", f, err)
		}
	}
	if edited < 1000 {
		t.Errorf("edited %d clones, want over 1000", edited)
	}
	t.Logf("%d models cloned, %d clones edited", len(files), edited)
}

func ptr(s string) *string { return &s }
