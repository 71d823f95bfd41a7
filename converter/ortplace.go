package converter

import (
	"sort"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/passes"
)

// ONNX Runtime's CPU provider on x86 without AVX-VNNI (--runtime ort) runs
// some Convs slower in integers than in float: QLinearConv on a 3-channel
// stem (1.8x float on FastestDet), depthwise QLinearConv (1.1-3.6x), small
// Convs whose fixed costs dominate. Each Conv kept float costs Q/DQ (and a
// layout change) where it meets quantized neighbours, so whether it pays
// depends on the graph around it. ortPlace
// estimates the model's run time for a set of float Convs from their shapes
// and searches for the set that minimizes it.
//
// The constants are nanoseconds, from ONNX Runtime 1.30's per-node profile
// (examples/ort-profile) of FastestDet and the zoo MobileNetV2, one thread,
// on an AVX2 CPU without VNNI: they rank placements, they do not predict
// absolute times.
const (
	floatConvMAC    = 0.021  // dense float Conv (NCHWc), per multiply-add...
	floatConvOut    = 0.2    // ... per output element...
	floatConvFixed  = 8000   // ... and per node
	floatStemMAC    = 0.048  // float Conv with fewer than 8 input channels per group and 64 products per output
	floatDepthMAC   = 0.06   // depthwise float Conv, per multiply-add...
	floatDepthFixed = 4000   // ... plus per node
	intConvMAC      = 0.0114 // dense QLinearConv, per multiply-add...
	intConvOut      = 0.25   // ... per output element (requantization)...
	intConvFixed    = 12400  // ... and per node
	intStemMAC      = 0.07   // QLinearConv with fewer than 8 input channels per group and 64 products per output
	intDepthMAC     = 0.09   // depthwise QLinearConv, per multiply-add...
	intDepthFixed   = 10000  // ... plus per node
	boundaryElem    = 0.6    // a QuantizeLinear or DequantizeLinear with its layout change, per element (FastestDet: Q 0.46, DQ 0.3 ns, a reorder or uint8 transpose about 0.1-0.4)
	maxPoolU8Out    = 34.0   // ORT moves a Q above a MaxPool: uint8 MaxPool in NCHW, per output element
	avgPoolQLinOut  = 15.0   // DQ -> AveragePool -> Q becomes QLinearAveragePool in NCHW, per output element
	// growthPatience is how many Convs a float island may grow by without
	// lowering the estimate before the search gives up on it.
	growthPatience = 12
)

// ortPlace is the --runtime ort placement: the op rules of ortFloatReason
// plus the nodes that the latency model keeps in float.
func ortPlace(m *graph.Model) *plan {
	lm := newLatencyModel(m.Graph)
	if len(lm.convs) == 0 {
		return buildPlan(m, RuntimeORT, nil) // nothing the latency model knows
	}
	eval := func(set map[*graph.Node]bool) (*plan, float64) {
		p := buildPlan(m, RuntimeORT, set)
		return p, lm.cost(p, set)
	}
	bestPlan, best := eval(nil)
	bestSet := map[*graph.Node]bool{}
	with := func(set map[*graph.Node]bool, c *graph.Node, in bool) map[*graph.Node]bool {
		next := make(map[*graph.Node]bool, len(set)+1)
		for k := range set {
			next[k] = true
		}
		if in {
			next[c] = true
		} else {
			delete(next, c)
		}
		return next
	}
	// Seeds: Convs whose integer kernel alone is slower. From each, grow a
	// float island one neighbouring Conv at a time, the one that lowers the
	// estimate most (or raises it least: a stem alone pays a boundary that
	// the whole first stage does not), and keep the best island seen.
	for _, seed := range lm.seeds() {
		if bestSet[seed] {
			continue
		}
		cur := with(bestSet, seed, true)
		curPlan, curCost := eval(cur)
		islandPlan, islandCost, island := curPlan, curCost, cur
		for stale := 0; stale < growthPatience; stale++ {
			var next map[*graph.Node]bool
			var nextPlan *plan
			nextCost := 0.0
			for _, c := range lm.frontier(cur) {
				s := with(cur, c, true)
				p, v := eval(s)
				if next == nil || v < nextCost {
					next, nextPlan, nextCost = s, p, v
				}
			}
			if next == nil {
				break
			}
			cur = next
			if nextCost < islandCost {
				islandPlan, islandCost, island, stale = nextPlan, nextCost, next, -1
			}
		}
		if islandCost < best {
			bestPlan, best, bestSet = islandPlan, islandCost, island
		}
	}
	// Then single changes, until none lowers the estimate: a float Conv the
	// island does not need goes back to integers, and a Concat, Add or
	// Resize goes float where that saves more Q/DQ (or a pool form) than it
	// adds.
	units := append(append([]*graph.Node(nil), lm.convs...), lm.joins...)
	for changed := true; changed; {
		changed = false
		for _, c := range units {
			s := with(bestSet, c, !bestSet[c])
			if p, v := eval(s); v < best {
				bestPlan, best, bestSet, changed = p, v, s, true
			}
		}
	}
	if len(bestPlan.observe) == 0 && len(bestPlan.shared) == 0 {
		// Every Conv estimated faster in float: the model would not be
		// quantized at all, which is not what was asked for.
		p, _ := eval(nil)
		p.note = "--runtime ort: the latency model estimates this model faster in float in ONNX Runtime; quantized by the op rules only (small convolutions lose to QLinearConv's fixed costs)"
		return p
	}
	return bestPlan
}

// latencyModel holds what ortPlace needs of the graph: the Convs it may keep
// in float, their estimated costs, and which Convs neighbour which.
type latencyModel struct {
	g          *graph.Graph
	convs      []*graph.Node // in graph order
	joins      []*graph.Node // weightless ops on feature maps that may run float: Concat, Add, Resize
	floatCost  map[*graph.Node]float64
	intCost    map[*graph.Node]float64
	neighbours map[*graph.Node][]*graph.Node
}

func newLatencyModel(g *graph.Graph) *latencyModel {
	lm := &latencyModel{g: g, floatCost: map[*graph.Node]float64{}, intCost: map[*graph.Node]float64{}, neighbours: map[*graph.Node][]*graph.Node{}}
	for _, n := range g.Nodes {
		if f, i, ok := convCosts(n); ok {
			lm.convs = append(lm.convs, n)
			lm.floatCost[n], lm.intCost[n] = f, i
		}
		if (n.OpType == "Concat" || n.OpType == "Add" || n.OpType == "Resize") && graph.IsStandardDomain(n.Domain) {
			if dims, ok := n.Output().StaticShape(); ok && len(dims) == 4 {
				lm.joins = append(lm.joins, n) // feature maps, where the Convs are
			}
		}
	}
	// Two Convs neighbour when values flow from one to the other through
	// nodes that are not Convs (activations, Concat, shuffles, pools).
	for _, c := range lm.convs {
		seen := map[*graph.Node]bool{c: true}
		stack := append([]*graph.Value(nil), c.Outputs...)
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if v == nil {
				continue
			}
			for _, u := range v.Consumers {
				if seen[u] {
					continue
				}
				seen[u] = true
				if _, ok := lm.floatCost[u]; ok {
					lm.neighbours[c] = append(lm.neighbours[c], u)
					lm.neighbours[u] = append(lm.neighbours[u], c)
					continue
				}
				if u.OpType != "Conv" {
					stack = append(stack, u.Outputs...)
				}
			}
		}
	}
	return lm
}

// seeds are the Convs whose integer kernel is slower than their float one,
// the largest loss first.
func (lm *latencyModel) seeds() []*graph.Node {
	var s []*graph.Node
	for _, c := range lm.convs {
		if lm.intCost[c] > lm.floatCost[c] {
			s = append(s, c)
		}
	}
	sort.SliceStable(s, func(i, j int) bool {
		return lm.intCost[s[i]]-lm.floatCost[s[i]] > lm.intCost[s[j]]-lm.floatCost[s[j]]
	})
	return s
}

// frontier lists the Convs outside set that neighbour one inside, in graph
// order.
func (lm *latencyModel) frontier(set map[*graph.Node]bool) []*graph.Node {
	var f []*graph.Node
	for _, c := range lm.convs {
		if set[c] {
			continue
		}
		for _, u := range lm.neighbours[c] {
			if set[u] {
				f = append(f, c)
				break
			}
		}
	}
	return f
}

// cost estimates the run time of the placement p (floatNodes kept float):
// every Conv at its float or integer cost, a Q where a quantized tensor is
// made by a float node or is a model input, a DQ per float node that reads a
// quantized tensor, and the pool forms ONNX Runtime falls into.
func (lm *latencyModel) cost(p *plan, floatNodes map[*graph.Node]bool) float64 {
	total := 0.0
	for _, c := range lm.convs {
		if floatNodes[c] || p.ortFloat[c] {
			total += lm.floatCost[c]
		} else {
			total += lm.intCost[c]
		}
	}
	observed := make(map[string]bool, len(p.observe))
	for _, name := range p.observe {
		observed[name] = true
	}
	quantized := func(v *graph.Value) bool {
		if v == nil {
			return false
		}
		_, shared := p.shared[v.Name]
		return shared || observed[v.Name]
	}
	runsFloat := func(n *graph.Node) bool {
		switch {
		case p.ortFloat[n] || !graph.IsStandardDomain(n.Domain):
			return true
		case passes.PassThroughOps[n.OpType] || movesActivation(n):
			return !quantized(n.Output())
		case n.OpType == "Sigmoid": // QLinearSigmoid between DQ and Q
			return false
		}
		return !quantizedOps[n.OpType]
	}
	for _, n := range lm.g.Nodes {
		for _, v := range n.Outputs {
			if !quantized(v) {
				continue
			}
			e := elems(v)
			if runsFloat(n) {
				total += boundaryElem * e
			}
			for _, u := range v.Consumers {
				if runsFloat(u) {
					total += boundaryElem * e
				}
			}
		}
		switch n.OpType {
		case "MaxPool":
			if !quantized(n.Input(0)) && quantized(n.Output()) {
				total += maxPoolU8Out * elems(n.Output())
			}
		case "AveragePool":
			in := n.Input(0)
			if in != nil && in.Producer != nil && in.Producer.OpType == "Pad" {
				in = in.Producer.Input(0) // ONNX Runtime folds a constant Pad into the pool
			}
			if p.ortFloat[n] && quantized(in) && quantized(n.Output()) {
				total += avgPoolQLinOut * elems(n.Output())
			}
		}
	}
	for _, v := range lm.g.Inputs {
		if quantized(v) {
			total += boundaryElem * elems(v)
		}
	}
	return total
}

// elems is a tensor's element count, 0 when its shape is not static.
func elems(v *graph.Value) float64 {
	dims, ok := v.StaticShape()
	if !ok {
		return 0
	}
	n := 1.0
	for _, d := range dims {
		n *= float64(d)
	}
	return n
}

// convCosts estimates a Conv's float and integer times (ns); ok is false
// when the Conv has no constant float weight or no static output shape, and
// the latency model then leaves it to the op rules.
func convCosts(n *graph.Node) (floatNs, intNs float64, ok bool) {
	if n.OpType != "Conv" || !graph.IsStandardDomain(n.Domain) || len(n.Outputs) == 0 {
		return 0, 0, false
	}
	w := n.Input(1)
	if w == nil || w.Const == nil || !quantizable(w.Const.DType) || w.Const.Rank() < 3 || !isFloatTensor(n.Input(0)) {
		return 0, 0, false
	}
	out := elems(n.Output())
	if out == 0 {
		return 0, 0, false
	}
	group, _ := n.AttrInt("group", 1)
	k := 1.0 // multiply-adds per output element: input channels per group x kernel
	for _, d := range w.Const.Shape[1:] {
		k *= float64(d)
	}
	macs := out * k
	cout := w.Const.Shape[0]
	inPerGroup := w.Const.Shape[1]
	switch {
	case group > 1 && int64(cout) == group && inPerGroup == 1:
		return floatDepthMAC*macs + floatDepthFixed, intDepthMAC*macs + intDepthFixed, true
	case inPerGroup < 8 && k < 64:
		// A 3x3 stem on 3 channels (27 products per output); a 7x7 one
		// (147) runs faster in integers, like a dense Conv.
		return floatStemMAC * macs, intStemMAC * macs, true
	}
	return floatConvMAC*macs + floatConvOut*out + floatConvFixed, intConvMAC*macs + intConvOut*out + intConvFixed, true
}
