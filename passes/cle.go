package passes

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// Cross-layer equalization (Nagel et al. 2019, DFQ) on channel sets. A set is
// the part of the graph whose channels one rescaling moves together: the
// output channels of its producers (Conv/Gemm), carried through ops that
// commute with a positive per-channel scale (ReLU, LeakyReLU, PReLU, pooling),
// through channel Concats and through residual Adds, to the input channels
// of its consumers (Conv/Gemm reading them as data). A plain chain is one
// producer and one consumer; a SqueezeNet squeeze conv feeding two expands is
// one producer and two consumers; the two expands concatenated into the next
// squeeze are two producers, each owning a block of the consumer's input
// channels. An Add of equal shapes joins channels instead: channel i of the
// sum is channel i of every addend, so their producers share its scale, and
// a residual stream (a ResNet stage, a MobileNetV2 stage) is one set whose
// producers are the convolutions writing into it and whose consumers are
// those reading it (a block's conv can be both).
//
// Channel i gets one scale s, shared by every producer output channel and
// every consumer input channel it joins: s = sqrt(r1/r2), r1 the largest
// range over those producer rows and r2 over those consumer columns. The
// rows and biases are divided by s and the columns multiplied by s, which
// leaves the model's outputs unchanged; a plain pair ends with both ranges
// at sqrt(r1 r2).

// chanSet is one channel set.
type chanSet struct {
	producers, consumers []*layer
	// values are the tensors from the producers' outputs to the consumers'
	// inputs: their channels change scale.
	values []*graph.Value
	// out maps each producer's output channel, and in each consumer's input
	// channel, to a set channel.
	out, in  [][]int
	channels int
	concat   bool
	sum      bool // joined through an Add
}

// setFinder grows channel sets from producers.
type setFinder struct {
	g      *graph.Graph
	layers map[*graph.Node]*layer
	whyNot map[*graph.Node]string
	order  map[*graph.Node]int
	// seen holds every value visited: sets do not overlap.
	seen map[*graph.Value]bool
}

// growing is a set under discovery.
type growing struct {
	producers, consumers []*graph.Node
	values               []*graph.Value
	why                  string // the first reason the set cannot be equalized
	at                   *graph.Node
}

func (s *growing) reject(why string, at *graph.Node) {
	if s.why == "" {
		s.why, s.at = why, at
	}
}

func (f *setFinder) layer(n *graph.Node) (*layer, string) {
	if l, ok := f.layers[n]; ok {
		return l, f.whyNot[n]
	}
	l, why := readLayer(f.g, n)
	f.layers[n], f.whyNot[n] = l, why
	return l, why
}

// add puts v, reached from node from, into s with the values its channels
// come from and go to.
func (f *setFinder) add(s *growing, v *graph.Value, from *graph.Node) {
	if f.seen[v] {
		return
	}
	f.seen[v] = true
	s.values = append(s.values, v)
	// Where the channels come from.
	switch p := v.Producer; {
	case p == nil:
		s.reject(fmt.Sprintf("%s joins it with %s, not a layer's output", joiner(from), kindOf(f.g, v)), from)
	case isLayerOp(p):
		if p.Output() != v {
			break
		}
		s.producers = append(s.producers, p)
		if _, why := f.layer(p); why != "" {
			s.reject(p.OpType+" producer: "+why, p)
		}
	case isStd(p, "Concat") || isSum(p):
		// An addend that is not a layer's output (a bias constant) is
		// rejected where it is reached; addends whose channels do not
		// line up (broadcasting), when the channel maps are built.
		for _, x := range p.Inputs {
			if x != nil {
				f.add(s, x, p)
			}
		}
	default:
		if ok, _ := channelwise(f.g, p, p.Input(0)); ok {
			f.add(s, p.Input(0), p)
		} else {
			s.reject(joiner(from)+" joins it with the output of "+p.OpType+", not of a Conv/Gemm", p)
		}
	}
	// Where they go.
	if f.g.IsOutput(v) {
		s.reject("feeds a graph output", v.Producer)
	}
	for _, c := range v.Consumers {
		switch {
		case isLayerOp(c):
			if c.Input(0) != v || slices.Contains(c.Inputs[1:], v) {
				s.reject("read as the weight or bias of a "+c.OpType, c)
				continue
			}
			if !slices.Contains(s.consumers, c) {
				s.consumers = append(s.consumers, c)
			}
			if _, why := f.layer(c); why != "" {
				s.reject(c.OpType+" consumer: "+why, c)
			}
		case isStd(c, "Concat"):
			f.add(s, c.Output(), c)
		case isSum(c):
			f.add(s, c.Output(), c)
		default:
			if ok, why := channelwise(f.g, c, v); ok {
				f.add(s, c.Output(), c)
			} else {
				s.reject("read by "+why, c)
			}
		}
	}
}

func isLayerOp(n *graph.Node) bool { return isStd(n, "Conv") || isStd(n, "Gemm") }

// isSum is an elementwise Add or Sum: it joins the channels of its inputs.
func isSum(n *graph.Node) bool { return isStd(n, "Add") || isStd(n, "Sum") }

// joiner names what brought a value into a set, for the reasons.
func joiner(from *graph.Node) string {
	if from != nil && isSum(from) {
		return "an " + from.OpType
	}
	return "a Concat"
}

func kindOf(g *graph.Graph, v *graph.Value) string {
	switch {
	case g.IsInput(v):
		return "a graph input"
	case v.Const != nil:
		return "a constant"
	}
	return "an undefined value"
}

// notHomogeneous are activations f with f(s x) != s f(x) for some s > 0.
var notHomogeneous = map[string]bool{"Sigmoid": true, "Tanh": true, "HardSigmoid": true, "HardSwish": true, "Elu": true, "Selu": true,
	"Celu": true, "Gelu": true, "Softplus": true, "Softsign": true, "Mish": true, "ThresholdedRelu": true, "Exp": true, "Log": true, "Sqrt": true,
	"Erf": true, "Swish": true, "Softmax": true, "LogSoftmax": true, "LayerNormalization": true, "InstanceNormalization": true, "LRN": true}

// channelwise reports whether n, reading x as data, commutes with a positive
// per-channel scaling of x and keeps channels on axis 1; if not, why says what
// n is (the reason is one of a few phrases, so that reports can count them).
func channelwise(g *graph.Graph, n *graph.Node, x *graph.Value) (ok bool, why string) {
	op := n.OpType
	if !graph.IsStandardDomain(n.Domain) {
		return false, fmt.Sprintf("%s (domain %s), an op CLE does not know", op, n.Domain)
	}
	if op == "Sigmoid" {
		// SiLU is written as Sigmoid and Mul: name it once.
		for _, c := range x.Consumers {
			if isStd(c, "Mul") && slices.Contains(c.Inputs, n.Output()) {
				return false, "SiLU (x * Sigmoid(x)), not positively homogeneous"
			}
		}
	}
	switch {
	case notHomogeneous[op]:
		return false, op + ", not positively homogeneous"
	case op == "Add" || op == "Sub" || op == "Sum" || op == "Max" || op == "Min":
		return false, op + " with another tensor"
	}
	if n.Input(0) != x || slices.Contains(n.Inputs[1:], x) || len(n.Outputs) == 0 {
		return false, op + " as a non-data input"
	}
	switch op {
	case "Relu", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Identity":
		return true, ""
	case "PRelu":
		if s := n.Input(1); s != nil && s.Const != nil {
			return true, ""
		}
		return false, "PRelu with a non-constant slope"
	case "Clip":
		lo, hi, ok := ClipBounds(n)
		switch {
		case ok && (lo == 0 || math.IsInf(float64(lo), -1)) && math.IsInf(float64(hi), 1):
			return true, "" // a ReLU, or no clipping at all
		case ok && lo == 0:
			return false, "Clip(0, max), not positively homogeneous (replace-relu6 turns ReLU6 into ReLU)"
		}
		return false, "Clip with bounds other than (0, none), not positively homogeneous"
	case "Flatten":
		if axis, _ := n.AttrInt("axis", 1); axis != 1 {
			return false, "Flatten on an axis other than 1"
		}
		if p := x.Producer; p != nil && (isStd(p, "GlobalAveragePool") || isStd(p, "GlobalMaxPool")) {
			return true, ""
		}
		if s, ok := x.StaticShape(); ok && len(s) >= 2 && graph.Numel(s[2:]) == 1 {
			return true, ""
		}
		return false, "Flatten of a map larger than 1x1 (channels and positions mixed)"
	case "Mul", "Div":
		// By a constant: a per-channel (or scalar) factor commutes with scaling.
		if o := n.Input(1); o != nil && o.Const != nil {
			return true, ""
		}
		if op == "Mul" {
			if o := n.Input(1); o != nil && o.Producer != nil && isStd(o.Producer, "Sigmoid") && o.Producer.Input(0) == x {
				return false, "SiLU (x * Sigmoid(x)), not positively homogeneous"
			}
		}
	}
	if op == "Mul" || op == "Div" {
		return false, op + " by another tensor"
	}
	return false, op + ", an op that mixes or reshapes channels"
}

// channelMap numbers the channels of every value of a set: producers own
// consecutive blocks, Concat joins its inputs' channels along axis 1.
type channelMap struct {
	base map[*graph.Node]int
	m    map[*graph.Value][]int
	rank map[*graph.Value]int
	// parent joins the channels an Add adds (union-find).
	parent map[int]int
}

func (cm *channelMap) find(c int) int {
	for {
		p, ok := cm.parent[c]
		if !ok || p == c {
			return c
		}
		if gp, ok := cm.parent[p]; ok {
			cm.parent[c] = gp // path halving
		}
		c = p
	}
}

func (cm *channelMap) union(a, b int) {
	a, b = cm.find(a), cm.find(b)
	if a != b {
		cm.parent[max(a, b)] = min(a, b)
	}
}

func (cm *channelMap) of(l map[*graph.Node]*layer, v *graph.Value) ([]int, int, string) {
	if m, ok := cm.m[v]; ok {
		return m, cm.rank[v], ""
	}
	p := v.Producer
	var m []int
	rank := 0
	switch {
	case isLayerOp(p):
		ly := l[p]
		for i := 0; i < ly.outChannels(); i++ {
			m = append(m, cm.base[p]+i)
		}
		rank = 2
		if ly.conv {
			rank = len(ly.shape)
		}
	case isStd(p, "Concat"):
		axis, _ := p.AttrInt("axis", 0)
		for _, x := range p.Inputs {
			if x == nil {
				continue
			}
			xm, r, why := cm.of(l, x)
			if why != "" {
				return nil, 0, why
			}
			rank = r
			m = append(m, xm...)
		}
		if axis < 0 {
			axis += int64(rank)
		}
		if axis != 1 {
			return nil, 0, "Concat along an axis other than channels"
		}
	case isSum(p):
		for _, x := range p.Inputs {
			if x == nil {
				continue
			}
			xm, r, why := cm.of(l, x)
			if why != "" {
				return nil, 0, why
			}
			if m == nil {
				m, rank = xm, r
				continue
			}
			if len(xm) != len(m) || r != rank {
				return nil, 0, p.OpType + " of inputs whose channels differ"
			}
			for i, c := range xm {
				cm.union(m[i], c)
			}
		}
	default:
		xm, r, why := cm.of(l, p.Input(0))
		if why != "" {
			return nil, 0, why
		}
		m, rank = xm, r
		if isStd(p, "Flatten") {
			rank = 2
		}
		// A constant factor of higher rank would move the channel axis.
		if f := p.Input(1); (isStd(p, "Mul") || isStd(p, "Div")) && f.Const.Rank() > rank {
			return nil, 0, p.OpType + " by a constant of higher rank (channels move)"
		}
	}
	cm.m[v], cm.rank[v] = m, rank
	return m, rank, ""
}

// findSets returns the channel sets of the graph that CLE can equalize, and
// for those it cannot, the number of producers per reason (with an example).
func findSets(g *graph.Graph) ([]*chanSet, map[string]int, map[string]string) {
	f := &setFinder{g: g, layers: map[*graph.Node]*layer{}, whyNot: map[*graph.Node]string{}, order: map[*graph.Node]int{}, seen: map[*graph.Value]bool{}}
	for i, n := range g.Nodes {
		f.order[n] = i
	}
	var sets []*chanSet
	why, example := map[string]int{}, map[string]string{}
	refuse := func(s *growing, reason string, at *graph.Node) {
		why[reason] += len(s.producers)
		if _, ok := example[reason]; !ok {
			example[reason] = s.producers[0].String()
			if at != nil && at != s.producers[0] {
				example[reason] += " at " + at.String()
			}
		}
	}
	for _, n := range g.Nodes {
		if !isLayerOp(n) || n.Output() == nil || f.seen[n.Output()] {
			continue
		}
		s := &growing{}
		f.add(s, n.Output(), n)
		if s.why != "" {
			refuse(s, s.why, s.at)
			continue
		}
		if len(s.consumers) == 0 {
			refuse(s, "no Conv/Gemm reads its output", nil)
			continue
		}
		byOrder := func(a, b *graph.Node) int { return f.order[a] - f.order[b] }
		slices.SortFunc(s.producers, byOrder)
		slices.SortFunc(s.consumers, byOrder)
		cs := &chanSet{values: s.values}
		cm := &channelMap{base: map[*graph.Node]int{}, m: map[*graph.Value][]int{}, rank: map[*graph.Value]int{}, parent: map[int]int{}}
		for _, p := range s.producers {
			l := f.layers[p]
			cm.base[p] = cs.channels
			cs.producers = append(cs.producers, l)
			cs.channels += l.outChannels()
		}
		bad := ""
		for _, c := range s.consumers {
			l := f.layers[c]
			m, rank, reason := cm.of(f.layers, c.Input(0))
			switch {
			case reason != "":
			case len(m) != l.inChannels():
				reason = "channel count does not match the consumer's input channels"
			case l.conv != (rank > 2):
				reason = "channel axis does not match the consumer's"
			}
			if reason != "" {
				bad = reason
				break
			}
			cs.consumers = append(cs.consumers, l)
			cs.in = append(cs.in, m)
		}
		// Every Add of the set joins its channels, also one whose sum no
		// consumer reads directly.
		for _, v := range s.values {
			if _, _, reason := cm.of(f.layers, v); reason != "" && bad == "" {
				bad = reason
			}
		}
		if bad != "" {
			refuse(s, bad, nil)
			continue
		}
		for _, p := range s.producers {
			out := make([]int, f.layers[p].outChannels())
			for o := range out {
				out[o] = cm.find(cm.base[p] + o)
			}
			cs.out = append(cs.out, out)
		}
		for _, m := range cs.in {
			for i, c := range m {
				m[i] = cm.find(c)
			}
		}
		for _, v := range s.values {
			if p := v.Producer; p != nil && isStd(p, "Concat") {
				cs.concat = true
			}
			if p := v.Producer; p != nil && isSum(p) {
				cs.sum = true
			}
		}
		sets = append(sets, cs)
	}
	return sets, why, example
}

// ranges returns max |w| per output channel and per input channel.
func (l *layer) ranges() (out, in []float64) {
	o32, i32 := make([]float32, l.outChannels()), make([]float32, l.inChannels())
	switch {
	case l.conv, l.transB:
		// Output channel o's weights are one contiguous row: cols input
		// channels from i0, per weights each.
		per, cols := l.per, l.cg
		if !l.conv {
			per, cols = 1, l.shape[1]
		}
		for o := range o32 {
			i0 := 0
			if l.conv {
				i0 = (o / l.mg) * l.cg
			}
			row := l.w[o*cols*per : (o+1)*cols*per]
			var ro float32
			for j := 0; j < cols; j++ {
				var m float32
				for _, v := range row[j*per : (j+1)*per] {
					m = max(m, v, -v)
				}
				i32[i0+j] = max(i32[i0+j], m)
				ro = max(ro, m)
			}
			o32[o] = ro
		}
	default: // Gemm weights [K, N]: row i holds input i's weights to every output
		n := l.shape[1]
		for i := range i32 {
			var m float32
			for o, v := range l.w[i*n : (i+1)*n] {
				a := max(v, -v)
				o32[o] = max(o32[o], a)
				m = max(m, a)
			}
			i32[i] = m
		}
	}
	out, in = make([]float64, len(o32)), make([]float64, len(i32))
	for i, v := range o32 {
		out[i] = float64(v)
	}
	for i, v := range i32 {
		in[i] = float64(v)
	}
	return out, in
}

// scaleOut multiplies output channel o's weights and bias by f[o].
func (l *layer) scaleOut(f []float64) {
	switch {
	case l.conv, l.transB:
		per := len(l.w) / len(f)
		for o, fo := range f {
			row := l.w[o*per : (o+1)*per]
			for k, v := range row {
				row[k] = float32(float64(v) * fo)
			}
		}
	default:
		n := l.shape[1]
		for k, v := range l.w {
			l.w[k] = float32(float64(v) * f[k%n])
		}
	}
	for o := range l.bias {
		l.bias[o] = float32(float64(l.bias[o]) * f[o])
	}
}

// scaleIn multiplies the weights reading input channel i by f[i].
func (l *layer) scaleIn(f []float64) {
	switch {
	case l.conv:
		for o := 0; o < l.shape[0]; o++ {
			i0 := (o / l.mg) * l.cg
			for j := 0; j < l.cg; j++ {
				fi := f[i0+j]
				k := (o*l.cg + j) * l.per
				for p, v := range l.w[k : k+l.per] {
					l.w[k+p] = float32(float64(v) * fi)
				}
			}
		}
	case l.transB:
		k := l.shape[1]
		for j, v := range l.w {
			l.w[j] = float32(float64(v) * f[j%k])
		}
	default:
		n := l.shape[1]
		for j, v := range l.w {
			l.w[j] = float32(float64(v) * f[j/n])
		}
	}
}

// equalize balances one set's channels once and returns the largest |log s|.
// omega > 1 over-relaxes (s^omega): each set's balance upsets its neighbours'
// a little, and overshooting converges in fewer sweeps (SqueezeNet 1.1: 43
// sweeps at 1.6, 103 at 1).
func (cs *chanSet) equalize(st *State, omega float64) float64 {
	r1, r2 := make([]float64, cs.channels), make([]float64, cs.channels)
	for j, p := range cs.producers {
		out, _ := p.ranges()
		for o, r := range out {
			ch := cs.out[j][o]
			r1[ch] = math.Max(r1[ch], r)
		}
	}
	for j, c := range cs.consumers {
		_, in := c.ranges()
		for i, r := range in {
			ch := cs.in[j][i]
			r2[ch] = math.Max(r2[ch], r)
		}
	}
	s := make([]float64, cs.channels)
	worst := 0.0
	for i := range s {
		s[i] = 1
		if r1[i] > 0 && r2[i] > 0 && !math.IsInf(r1[i]+r2[i], 0) {
			s[i] = math.Pow(r1[i]/r2[i], 0.5*omega)
			worst = math.Max(worst, math.Abs(math.Log(s[i])))
		}
	}
	if worst == 0 {
		return 0
	}
	for j, p := range cs.producers {
		inv := make([]float64, p.outChannels())
		for o, ch := range cs.out[j] {
			inv[o] = 1 / s[ch]
		}
		p.scaleOut(inv)
		// BN statistics of the producer's output scale with its channels.
		if stats := st.BNStats[p.node.Output().Name]; stats != nil && len(stats.Mean) == len(inv) {
			for o, f := range inv {
				stats.Mean[o] = float32(float64(stats.Mean[o]) * f)
				stats.Std[o] = float32(float64(stats.Std[o]) * f)
			}
		}
	}
	for j, c := range cs.consumers {
		si := make([]float64, c.inChannels())
		for i, ch := range cs.in[j] {
			si[i] = s[ch]
		}
		c.scaleIn(si)
	}
	return worst
}

func cle(m *graph.Model, st *State, c *Change) error {
	g := m.Graph
	sets, why, example := findSets(g)
	multi, concat, sums := 0, 0, 0
	owned := map[*layer]bool{}
	var layers []*layer
	for _, cs := range sets {
		for _, l := range slices.Concat(cs.producers, cs.consumers) {
			if !owned[l] {
				owned[l] = true
				l.own(g)
				layers = append(layers, l)
			}
		}
		via := ""
		if cs.concat {
			via = " (through Concat)"
			concat++
		}
		if len(cs.consumers) > 1 {
			multi++
		}
		if cs.sum {
			via = " (through Add)"
			if cs.concat {
				via = " (through Concat and Add)"
			}
			sums++
		}
		for _, p := range cs.producers {
			for _, q := range cs.consumers {
				if p != q {
					c.add(fmt.Sprintf("%s -> %s%s", p.node, q.node, via))
				}
			}
		}
		for _, v := range cs.values {
			st.changed(v.Name)
		}
	}
	// A set that shares no layer with another settles in one step; only
	// coupled sets are over-relaxed.
	in := map[*layer]int{}
	for _, cs := range sets {
		for _, l := range slices.Concat(cs.producers, cs.consumers) {
			in[l]++
		}
	}
	coupled := make([]bool, len(sets))
	for k, cs := range sets {
		for _, l := range slices.Concat(cs.producers, cs.consumers) {
			coupled[k] = coupled[k] || in[l] > 1
		}
	}
	if len(sets) > 0 {
		before := channelSpread(layers)
		// Equalize set after set until no scale moves by more than 0.01% (a
		// hundredth of an int8 step): chains converge geometrically.
		converged, omega, last := false, 1.6, math.Inf(1)
		for iter := 0; iter < 200 && !converged; iter++ {
			worst := 0.0
			// Forward then backward (the ends once): balance reaches both ends
			// of a chain in one sweep.
			step := func(k int) {
				w := 1.0
				if coupled[k] {
					w = omega
				}
				worst = math.Max(worst, sets[k].equalize(st, w))
			}
			for k := range sets {
				step(k)
			}
			for k := len(sets) - 2; k > 0; k-- {
				step(k)
			}
			if worst > last {
				omega = 1 // overshooting grew the steps: back to plain sweeps
			}
			last = worst
			if worst < 1e-4 {
				c.Notes = append(c.Notes, fmt.Sprintf("%d channel sets (%d with several consumers, %d through Concat, %d through Add), converged after %d sweeps", len(sets), multi, concat, sums, iter+1))
				converged = true
			}
		}
		if !converged {
			c.Notes = append(c.Notes, fmt.Sprintf("%d channel sets (%d with several consumers, %d through Concat, %d through Add), stopped after 200 sweeps", len(sets), multi, concat, sums))
		}
		c.Notes = append(c.Notes, fmt.Sprintf("per-channel weight range spread (max/min, largest over layers): %.3g before, %.3g after", before, channelSpread(layers)))
	}
	c.Notes = append(c.Notes, notEqualized(why, example)...)
	return nil
}

// notEqualized is one line per reason, most frequent first.
func notEqualized(why map[string]int, example map[string]string) []string {
	reasons := make([]string, 0, len(why))
	for r := range why {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if why[reasons[i]] != why[reasons[j]] {
			return why[reasons[i]] > why[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	var out []string
	for _, r := range reasons {
		n := why[r]
		layers := "layers"
		if n == 1 {
			layers = "layer"
		}
		out = append(out, fmt.Sprintf("not equalized, %d %s: %s (e.g. %s)", n, layers, r, strings.TrimSpace(example[r])))
	}
	return out
}

// channelSpread is the largest ratio of per-output-channel weight ranges within
// one layer.
func channelSpread(layers []*layer) float64 {
	worst := 1.0
	for _, l := range layers {
		out, _ := l.ranges()
		lo, hi := math.Inf(1), 0.0
		for _, r := range out {
			lo, hi = math.Min(lo, r), math.Max(hi, r)
		}
		if lo > 0 {
			worst = math.Max(worst, hi/lo)
		}
	}
	return worst
}
