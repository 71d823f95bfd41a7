package converter

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
)

// Additive attention masks push masked positions to a sentinel: -1e4 (BERT's
// (1-m)*-10000), -1e9, finfo.min (-3.4e38) or -inf, and the scores they are
// added to carry it into the Softmax, which needs it to give those positions
// zero weight. A calibrated range over such a tensor spans the sentinel, and
// its uint8 step (1.3e36 for finfo.min, 4e6 for -1e9, 39 for -1e4) erases the
// scores themselves. So the plan keeps the mask and the masked scores float up
// to and including the Softmax input; the Softmax output is a normal [0, 1]
// activation and is quantized. The other way, clipping the ranges to the
// unmasked values as runtimes with fused attention do, still quantizes the
// scores just before the exponential (where half a step of the score range,
// 0.3 on stories260K, scales a probability by up to e^0.3) and lets masked
// positions keep a small weight instead of none. Measured on stories260K (W8A8,
// minmax, held-out perplexity in ONNX Runtime, float 3.962): 4.214 with the
// mask path float, 4.239 with the mask and scores quantized on the ranges of
// the unmasked values (the score MatMul's output quantized in both), 4.195
// when that output, which only meets the mask, stays float too. Keeping it
// float costs a runtime little: scores and mask are added and normalized in
// float either way.

// sentinelMagnitude is the smallest |value| taken for a mask sentinel.
const sentinelMagnitude = 1e4

// maskSourceOps make a mask from a sentinel operand: Where(cond, 0, -inf),
// Mul((1-m), -1e4), Max(scores, finfo.min) clamps.
// Pad(x, pads, -inf) pads with one for max pooling over padded positions.
var maskSourceOps = map[string]bool{"Where": true, "Mul": true, "Max": true, "Min": true, "Add": true, "Sub": true, "Pad": true}

// maskCarryOps pass a mask's values on (through arithmetic with other
// tensors, broadcasts, reshapes and casts), so their output holds the
// sentinel wherever their masked input does. Softmax is not among them: it
// turns the sentinel into an exact 0.
var maskCarryOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Where": true, "Max": true, "Min": true,
	"Expand": true, "Reshape": true, "Unsqueeze": true, "Squeeze": true, "Transpose": true,
	"Flatten": true, "Slice": true, "Identity": true, "Cast": true, "CastLike": true, "Tile": true,
	"Gather": true, "Concat": true, "Split": true, "Pad": true,
}

// dataInputs are the inputs of op whose values reach its output (Where's
// condition, Reshape's shape, Gather's indices do not).
func dataInputs(n *graph.Node) []*graph.Value {
	switch n.OpType {
	case "Where":
		return []*graph.Value{n.Input(1), n.Input(2)}
	case "Add", "Sub", "Mul", "Max", "Min", "Concat":
		return n.Inputs
	case "Pad":
		return []*graph.Value{n.Input(0), n.Input(2)} // the padding value
	case "Div":
		return []*graph.Value{n.Input(0)} // dividing by a mask does not keep it
	}
	return []*graph.Value{n.Input(0)}
}

// findMasks returns the float tensors that hold a mask sentinel, each with
// where it came from, following order (topological).
func findMasks(order []*graph.Node) map[string]string {
	masks := map[string]string{}
	constSentinel := map[*graph.Tensor]float64{} // 0: none
	sentinelIn := func(v *graph.Value) (float64, bool) {
		if v == nil || v.Const == nil {
			return 0, false
		}
		s, seen := constSentinel[v.Const]
		if !seen {
			s = sentinelOf(v.Const)
			constSentinel[v.Const] = s
		}
		return s, s != 0
	}
	for _, n := range order {
		if !graph.IsStandardDomain(n.Domain) {
			continue
		}
		origin := ""
		if n.OpType == "ConstantOfShape" {
			if t, err := n.AttrTensor("value", ""); err == nil && t != nil {
				if s := sentinelOf(t); s != 0 {
					origin = fmt.Sprintf("sentinel %.3g from %s", s, n)
				}
			}
		}
		if maskCarryOps[n.OpType] {
			for _, in := range dataInputs(n) {
				if in == nil {
					continue
				}
				if o, ok := masks[in.Name]; ok {
					origin = o
					break
				}
				if s, ok := sentinelIn(in); ok && maskSourceOps[n.OpType] {
					origin = fmt.Sprintf("sentinel %.3g in %q, into %s", s, in.Name, n)
					break
				}
			}
		}
		if origin == "" {
			continue
		}
		for _, o := range n.Outputs {
			if o != nil && isFloatTensor(o) {
				masks[o.Name] = origin
			}
		}
	}
	return masks
}

// scoresIntoMasks returns the tensors whose every reader is on the mask
// path, directly or through a scaling by a constant: the attention scores
// before the mask is added. They are added to the mask in float, so a Q/DQ on
// them only rounds them (and their calibrated range spans the scores of the
// positions the mask then removes). Each comes with its mask's origin.
func scoresIntoMasks(g *graph.Graph, order []*graph.Node, masks map[string]string) map[string]string {
	into := map[string]string{}
	for i := len(order) - 1; i >= 0; i-- {
		for _, o := range order[i].Outputs {
			if o == nil || masks[o.Name] != "" || !isFloatTensor(o) || g.IsOutput(o) || len(o.Consumers) == 0 {
				continue
			}
			origin := ""
			for _, c := range o.Consumers {
				co := c.Output()
				if co == nil {
					origin = ""
					break
				}
				if m := masks[co.Name]; m != "" && (c.OpType == "Add" || c.OpType == "Sub" || c.OpType == "Where") {
					origin = m
					continue
				}
				if m := into[co.Name]; m != "" && constScaling(c) {
					origin = m
					continue
				}
				origin = ""
				break
			}
			if origin != "" {
				into[o.Name] = origin
			}
		}
	}
	return into
}

// constScaling is a Mul or Div by a constant (the 1/sqrt(d) of attention).
func constScaling(n *graph.Node) bool {
	if n.OpType != "Mul" && n.OpType != "Div" {
		return false
	}
	b := n.Input(1)
	if n.OpType == "Mul" && b != nil && b.Const == nil {
		b = n.Input(0)
	}
	return b != nil && b.Const != nil
}

// sentinelOf returns the sentinel in a float constant (the one of largest
// magnitude), or 0 when it holds none.
func sentinelOf(t *graph.Tensor) float64 {
	switch t.DType {
	case graph.Float, graph.Float16, graph.BFloat16, graph.Double:
	default:
		return 0
	}
	if !t.Loaded() {
		return 0
	}
	vals, err := t.AsFloat32()
	if err != nil {
		return 0
	}
	var s float64
	for _, v := range vals {
		if f := float64(v); math.Abs(f) >= sentinelMagnitude && math.Abs(f) > math.Abs(s) {
			s = f
		}
	}
	return s
}
