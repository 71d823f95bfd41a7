package passes

import (
	"fmt"
	"math"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

// Data-free quantization (Nagel et al. 2019): cross-layer equalization,
// high-bias absorption and analytical bias correction, on pairs of layers
// L1 -> [activation] -> L2 where the activation is positively homogeneous.

func init() {
	registerSimple("cle", "cross-layer equalization: rescale channels between Conv/Gemm layers (through ReLU/LeakyRelu/PRelu, pooling and channel Concat; one producer to several consumers; incl. depthwise) so their weight ranges match", exact, cle)
	registerSimple("absorb-high-bias", "move bias a following ReLU would not clip into the next layer's bias (needs BatchNorm statistics from fold-bn)", -1, absorbHighBias)
	register("bias-correction", "correct each Conv/Gemm bias for the expected weight quantization error, -(Q(W)-W)·E[x] (E[x] from BatchNorm statistics)",
		func(o Options, _ string) (Pass, error) {
			bits := o.WeightBits
			if bits == 0 {
				bits = 8
			}
			if bits < 2 || bits > 16 {
				return nil, fmt.Errorf("weight bit width %d is not supported (2 to 16)", bits)
			}
			return &simple{name: "bias-correction", desc: Describe("bias-correction"), tol: -1, apply: func(m *graph.Model, st *State, c *Change) error {
				return CorrectBias(m, BNInputMeans{m.Graph, st}, PerChannelBits(bits), c)
			}}, nil
		})
	registerSimple("replace-relu6", "opt-in: Clip(0, 6) -> Relu, so CLE can pass through; changes outputs where activations exceed 6 (reported)", -1, replaceRelu6)
}

// layer is a Conv or Gemm with constant weights, seen as output and input channels.
type layer struct {
	node  *graph.Node
	w     []float32
	shape []int
	bias  []float32 // nil when the layer has none
	// for convolutions
	conv          bool
	group, mg, cg int
	per           int // weight elements per (output, input) channel pair
	transB        bool
}

func (l *layer) outChannels() int {
	switch {
	case l.conv:
		return l.shape[0]
	case l.transB:
		return l.shape[0]
	}
	return l.shape[1]
}

func (l *layer) inChannels() int {
	switch {
	case l.conv:
		return l.shape[1] * l.group
	case l.transB:
		return l.shape[1]
	}
	return l.shape[0]
}

// each calls f on the index of every weight connecting output channel o to input
// channel i (nothing when they are in different groups).
func (l *layer) each(o, i int, f func(k int)) {
	if l.conv {
		if o/l.mg != i/l.cg {
			return
		}
		base := (o*l.cg + i%l.cg) * l.per
		for k := base; k < base+l.per; k++ {
			f(k)
		}
		return
	}
	if l.transB {
		f(o*l.shape[1] + i)
	} else {
		f(i*l.shape[1] + o)
	}
}

// asLayer reads n as a layer with private (unshared) weight and bias tensors it
// may change in place, or returns nil.
func asLayer(g *graph.Graph, n *graph.Node) *layer {
	l, _ := readLayer(g, n)
	if l != nil {
		l.own(g)
	}
	return l
}

// readLayer reads n as a layer without changing the graph, or says why it
// cannot be one.
func readLayer(g *graph.Graph, n *graph.Node) (*layer, string) {
	if !graph.IsStandardDomain(n.Domain) || (n.OpType != "Conv" && n.OpType != "Gemm") {
		return nil, "not a Conv or Gemm"
	}
	wv := n.Input(1)
	if wv == nil || wv.Const == nil || wv.Const.DType != graph.Float {
		return nil, "weights are not a constant float tensor"
	}
	if g.IsInput(wv) {
		return nil, "weights are also a graph input (a runtime may replace them)"
	}
	l := &layer{node: n, conv: n.OpType == "Conv"}
	if l.conv {
		group, err := n.AttrInt("group", 1)
		if err != nil || wv.Const.Rank() < 3 || group < 1 || wv.Const.Shape[0]%int(group) != 0 {
			return nil, "weight shape does not match its groups"
		}
		l.group = int(group)
		l.mg, l.cg = wv.Const.Shape[0]/l.group, wv.Const.Shape[1]
		l.per = graph.Numel(wv.Const.Shape[2:])
	} else {
		transA, _ := n.AttrInt("transA", 0)
		transB, err := n.AttrInt("transB", 0)
		if err != nil || transA != 0 || wv.Const.Rank() != 2 {
			return nil, "Gemm with transA or weights that are not a matrix"
		}
		l.transB = transB != 0
	}
	l.w, l.shape = wv.Const.Float32s(), wv.Const.Shape
	if bv := n.Input(2); bv != nil {
		if bv.Const == nil || bv.Const.DType != graph.Float || bv.Const.Len() != l.outChannels() || g.IsInput(bv) ||
			(bv.Const.Rank() > 0 && bv.Const.Shape[bv.Const.Rank()-1] != l.outChannels()) {
			return nil, "bias is not one constant per output channel"
		}
		if !l.conv {
			if beta, _ := n.AttrFloat("beta", 1); beta != 1 {
				return nil, "Gemm with beta other than 1"
			}
		}
		l.bias = bv.Const.Float32s()
	}
	return l, ""
}

// own gives the layer weight and bias tensors no other node reads, so that
// it may change them in place.
func (l *layer) own(g *graph.Graph) {
	n := l.node
	if wv := n.Input(1); len(wv.Consumers) > 1 {
		wv = g.AddInitializer(g.UniqueName(wv.Name+"_own"), wv.Const.Clone())
		replaceInput(g, n, 1, wv)
		l.w = wv.Const.Float32s()
	}
	if bv := n.Input(2); bv != nil && len(bv.Consumers) > 1 {
		bv = g.AddInitializer(g.UniqueName(bv.Name+"_own"), bv.Const.Clone())
		replaceInput(g, n, 2, bv)
		l.bias = bv.Const.Float32s()
	}
}

// ensureBias gives the layer a zero bias if it has none.
func (l *layer) ensureBias(g *graph.Graph) {
	if l.bias != nil {
		return
	}
	v := newConst(g, l.node.Input(1).Name+"_bias", []int{l.outChannels()}, make([]float32, l.outChannels()))
	replaceInput(g, l.node, 2, v)
	if !l.conv {
		l.node.SetAttr(graph.AttrFloatOf("beta", 1))
	}
	l.bias = v.Const.Float32s()
}

// pair is L1 -> [act] -> L2 with every intermediate read only by the next step.
type pair struct {
	l1, l2 *layer
	act    *graph.Node // nil: none
}

// between names the tensors from l1's output to l2's input, whose values
// rescaling or shifting channels changes.
func (p pair) between() []string {
	out := []string{p.l1.node.Output().Name}
	if p.act != nil {
		out = append(out, p.act.Output().Name)
	}
	return out
}

// findPairs returns the layer pairs of the graph (chains show up as overlapping
// pairs). Layers are made private (unshared weights) as they are found.
func findPairs(g *graph.Graph, acts map[string]bool) []pair {
	layers := map[*graph.Node]*layer{}
	get := func(n *graph.Node) *layer {
		if l, ok := layers[n]; ok {
			return l
		}
		l := asLayer(g, n)
		layers[n] = l
		return l
	}
	var out []pair
	for _, n := range g.Nodes {
		if n.OpType != "Conv" && n.OpType != "Gemm" {
			continue
		}
		v := n.Output()
		if v == nil || len(v.Consumers) != 1 || g.IsOutput(v) {
			continue
		}
		next, act := v.Consumers[0], (*graph.Node)(nil)
		if acts[next.OpType] && graph.IsStandardDomain(next.Domain) && next.Input(0) == v {
			if next.OpType == "PRelu" && (next.Input(1) == nil || next.Input(1).Const == nil) {
				continue
			}
			act = next
			a := act.Output()
			if a == nil || len(a.Consumers) != 1 || g.IsOutput(a) {
				continue
			}
			next = a.Consumers[0]
		}
		in := v
		if act != nil {
			in = act.Output()
		}
		if next.Input(0) != in || slices.Contains(next.Inputs[1:], in) {
			continue
		}
		l1, l2 := get(n), get(next)
		if l1 == nil || l2 == nil || l1.outChannels() != l2.inChannels() {
			continue
		}
		out = append(out, pair{l1, l2, act})
	}
	return out
}

// absorbHighBias moves c = max(0, beta - 3 gamma) of each L1 output channel (the
// part of the bias a following ReLU does not clip for inputs within 3 standard
// deviations) into L2's bias: L1's bias loses c, L2's bias gains W2 · c.
func absorbHighBias(m *graph.Model, st *State, c *Change) error {
	g := m.Graph
	for _, p := range findPairs(g, map[string]bool{"Relu": true}) {
		stats := st.BNStats[p.l1.node.Output().Name]
		if stats == nil || p.l1.bias == nil || len(stats.Mean) != p.l1.outChannels() {
			continue
		}
		if p.act == nil {
			continue // without a ReLU the whole bias could move; DFQ targets the ReLU case
		}
		p.l2.ensureBias(g)
		alpha := float32(1)
		if !p.l2.conv {
			alpha, _ = p.l2.node.AttrFloat("alpha", 1)
		}
		moved := false
		for i, beta := range stats.Mean {
			ci := max(0, beta-3*stats.Std[i])
			if ci == 0 {
				continue
			}
			moved = true
			p.l1.bias[i] -= ci
			stats.Mean[i] -= ci
			for o := 0; o < p.l2.outChannels(); o++ {
				var s float32
				p.l2.each(o, i, func(k int) { s += p.l2.w[k] })
				p.l2.bias[o] += alpha * s * ci
			}
		}
		if moved {
			c.add(fmt.Sprintf("%s -> %s", p.l1.node, p.l2.node))
			st.changed(p.between()...)
		}
	}
	if c.Count > 0 {
		c.Notes = append(c.Notes, "exact while L1's outputs stay above beta - 3 gamma; at zero-padded borders of a following KxK convolution the absorbed bias is not added")
	}
	return nil
}

// InputMeans gives the expected value of each input channel of a layer: from
// BatchNorm statistics (analytical bias correction) or from calibration data
// (the empirical variant).
type InputMeans interface {
	InputMean(layer *graph.Node) ([]float32, bool)
}

// BNInputMeans derives a layer's input means from the BatchNorm statistics of the
// layer before it: E[x] = beta without an activation, and the mean of a ReLU'd
// normal, gamma*phi(beta/gamma) + beta*Phi(beta/gamma), after a ReLU.
type BNInputMeans struct {
	G     *graph.Graph
	State *State
}

// InputMean implements InputMeans.
func (b BNInputMeans) InputMean(n *graph.Node) ([]float32, bool) {
	x := n.Input(0)
	if x == nil || x.Producer == nil {
		return nil, false
	}
	relu := false
	if p := x.Producer; isStd(p, "Relu") {
		relu, x = true, p.Input(0)
	}
	stats := b.State.BNStats[x.Name]
	if stats == nil {
		return nil, false
	}
	out := make([]float32, len(stats.Mean))
	for i := range out {
		mu, sd := float64(stats.Mean[i]), float64(stats.Std[i])
		switch {
		case !relu:
			out[i] = float32(mu)
		case sd == 0:
			out[i] = float32(math.Max(0, mu))
		default:
			z := mu / sd
			pdf := math.Exp(-z*z/2) / math.Sqrt(2*math.Pi)
			cdf := 0.5 * math.Erfc(-z/math.Sqrt2)
			out[i] = float32(sd*pdf + mu*cdf)
		}
	}
	return out, true
}

// FakeQuant returns a layer's weights as a runtime will see them, quantized
// and dequantized, in the weight's layout; nil leaves the layer alone.
type FakeQuant func(n *graph.Node, w *graph.Tensor) ([]float32, error)

// PerChannelBits models symmetric per-output-channel quantization to bits
// (Conv: axis 0; Gemm: axis 0 with transB, else 1).
func PerChannelBits(bits int) FakeQuant {
	qmax := float64(int(1)<<(bits-1) - 1)
	return func(n *graph.Node, w *graph.Tensor) ([]float32, error) {
		axis := 0
		if tb, _ := n.AttrInt("transB", 0); n.OpType == "Gemm" && tb == 0 {
			axis = 1
		}
		if w.Rank() <= axis {
			return nil, nil
		}
		x := w.Float32s()
		inner, dim := graph.Numel(w.Shape[axis+1:]), w.Shape[axis]
		amax := make([]float64, dim)
		for i, v := range x {
			c := (i / inner) % dim
			amax[c] = math.Max(amax[c], math.Abs(float64(v)))
		}
		out := make([]float32, len(x))
		for i, v := range x {
			scale := amax[(i/inner)%dim] / qmax
			if scale == 0 {
				continue
			}
			out[i] = float32(math.Max(-qmax, math.Min(qmax, math.RoundToEven(float64(v)/scale))) * scale)
		}
		return out, nil
	}
}

// CorrectBias adds -(Q(W) - W) · E[x] to the bias of every Conv/Gemm whose input
// means are known, with Q(W) from fq (on float32 weights, also in a half model).
func CorrectBias(m *graph.Model, means InputMeans, fq FakeQuant, c *Change) error {
	return inFloat32(m, func() error { return correctBias(m, means, fq, c) })
}

func correctBias(m *graph.Model, means InputMeans, fq FakeQuant, c *Change) error {
	g := m.Graph
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		if n.OpType != "Conv" && n.OpType != "Gemm" {
			continue
		}
		mean, ok := means.InputMean(n)
		if !ok || n.Input(1) == nil || n.Input(1).Const == nil || n.Input(1).Const.DType != graph.Float {
			continue
		}
		qw, err := fq(n, n.Input(1).Const)
		if err != nil {
			return fmt.Errorf("bias correction of %s: %v", n, err)
		}
		if qw == nil {
			continue
		}
		l := asLayer(g, n)
		if l == nil || len(mean) != l.inChannels() || len(qw) != len(l.w) {
			continue
		}
		l.ensureBias(g)
		for o := 0; o < l.outChannels(); o++ {
			var delta float64
			for i := 0; i < l.inChannels(); i++ {
				e := float64(mean[i])
				l.each(o, i, func(k int) { delta += (float64(qw[k]) - float64(l.w[k])) * e })
			}
			l.bias[o] -= float32(delta)
		}
		c.add(n.String())
	}
	return nil
}

func replaceRelu6(m *graph.Model, _ *State, c *Change) error {
	g := m.Graph
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		if !isStd(n, "Clip") {
			continue
		}
		lo, hi, ok := ClipBounds(n)
		if !ok || lo != 0 || hi != 6 {
			continue
		}
		name := n.String()
		for len(n.Inputs) > 1 {
			g.SetInput(n, len(n.Inputs)-1, nil)
			n.Inputs = n.Inputs[:len(n.Inputs)-1]
		}
		n.DelAttr("min")
		n.DelAttr("max")
		n.OpType = "Relu"
		c.add(name)
	}
	return nil
}

// ClipBounds reads a Clip's constant bounds (attributes or inputs).
func ClipBounds(n *graph.Node) (lo, hi float32, ok bool) {
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if n.HasAttr("min") || n.HasAttr("max") {
		l, e1 := n.AttrFloat("min", lo)
		h, e2 := n.AttrFloat("max", hi)
		return l, h, e1 == nil && e2 == nil
	}
	for i, b := range []*float32{&lo, &hi} {
		v := n.Input(i + 1)
		if v == nil {
			continue
		}
		if v.Const == nil || v.Const.DType != graph.Float || v.Const.Len() != 1 {
			return 0, 0, false
		}
		*b = v.Const.Float32s()[0]
	}
	return lo, hi, true
}
