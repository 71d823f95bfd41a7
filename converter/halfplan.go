package converter

import (
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// floatHalfConcats keeps the output of every half-precision Concat in float.
// ONNX Runtime (1.2x) fuses DequantizeLinear -> Concat -> QuantizeLinear
// into its QLinearConcat whatever the scale type, and that op takes float32
// scales only, so a float16 model with that group fails to load. Without the
// Q after it, the Concat reads dequantized inputs and stays a float op.
func floatHalfConcats(m *graph.Model, p *plan) {
	half := kernels.HalfTypes(m)
	if len(half) == 0 {
		return
	}
	drop := map[string]bool{}
	for _, n := range m.Graph.Nodes {
		if o := n.Output(); n.OpType == "Concat" && o != nil && half[o.Name] != graph.Undefined {
			drop[o.Name] = true
			p.floatOps = append(p.floatOps, FloatNode{n.String(), n.OpType, "half-precision Concat: ONNX Runtime's QLinearConcat takes float32 scales only"})
		}
	}
	if len(drop) == 0 {
		return
	}
	kept := p.observe[:0]
	for _, name := range p.observe {
		if !drop[name] {
			kept = append(kept, name)
		}
	}
	p.observe = kept
	var unshare []string // roots first: deleting links would cut chains
	for name := range p.shared {
		if drop[rootOf(p.shared, name)] {
			unshare = append(unshare, name)
		}
	}
	for _, name := range unshare {
		delete(p.shared, name)
	}
}
