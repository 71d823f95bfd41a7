package passes

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// Per-input-channel scale migration: the float rewrite behind SmoothQuant
// (and AWQ's scale search, msModelSlim's anti-outlier, AMCT's DMQ balancer).
// For a tensor X [..., K] read by layers Y = X·W (W [K, N]),
//
//	Y = (X · diag(1/s)) · (diag(s) · W)
//
// for any positive s [K]: row j of every reading layer's weight is multiplied
// by s_j and channel j of X divided by s_j. The division goes where it costs
// nothing when it can (the scale of the norm that produces X), else into a
// Mul inserted before the layers.

// WeightReaders returns the nodes that read input as the data operand of a
// MatMul or Gemm (transA 0) with a private-able 2-D float constant weight:
// the layers MigrateInputScale rescales. Other readers are not returned.
func WeightReaders(g *graph.Graph, input *graph.Value) []*graph.Node {
	var out []*graph.Node
	for _, n := range input.Consumers {
		if _, ok := weightRows(g, n, input); ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// weightRows says whether n reads input as X of X·W with a float constant
// 2-D weight, and returns K, the input channels.
func weightRows(g *graph.Graph, n *graph.Node, input *graph.Value) (int, bool) {
	if !graph.IsStandardDomain(n.Domain) || (n.OpType != "MatMul" && n.OpType != "Gemm") || n.Input(0) != input || slices.Contains(n.Inputs[1:], input) {
		return 0, false
	}
	w := n.Input(1)
	if w == nil || w.Const == nil || w.Const.DType != graph.Float || w.Const.Rank() != 2 || g.IsInput(w) {
		return 0, false
	}
	if n.OpType == "Gemm" {
		if ta, _ := n.AttrInt("transA", 0); ta != 0 {
			return 0, false
		}
		if tb, _ := n.AttrInt("transB", 0); tb != 0 {
			return w.Const.Shape[1], true
		}
	}
	return w.Const.Shape[0], true
}

// InputChannelMax is, for every input channel j of the layers in readers
// (see WeightReaders), max over the layers and output channels of |W[j, :]|:
// SmoothQuant's max|W_j| when several layers share one scale.
func InputChannelMax(g *graph.Graph, input *graph.Value, readers []*graph.Node) ([]float32, error) {
	var out []float32
	for _, n := range readers {
		k, ok := weightRows(g, n, input)
		if !ok {
			return nil, fmt.Errorf("%s does not read %q through a constant float weight", n, input.Name)
		}
		if out == nil {
			out = make([]float32, k)
		} else if len(out) != k {
			return nil, fmt.Errorf("%s has %d input channels, another reader of %q %d", n, k, input.Name, len(out))
		}
		w := n.Input(1).Const
		vals, cols := w.Float32s(), w.Shape[1]
		trans := GemmTransB(n)
		for r := 0; r < w.Shape[0]; r++ {
			for c := 0; c < cols; c++ {
				j := r
				if trans {
					j = c
				}
				out[j] = max(out[j], float32(math.Abs(float64(vals[r*cols+c]))))
			}
		}
	}
	return out, nil
}

// GemmTransB reports a Gemm with transB set (its weight is [N, K]).
func GemmTransB(n *graph.Node) bool {
	if n.OpType != "Gemm" {
		return false
	}
	tb, _ := n.AttrInt("transB", 0)
	return tb != 0
}

// SmoothScales is SmoothQuant's s_j = xMax_j^alpha / wMax_j^(1-alpha) for
// activation and weight channel maxima of the same length. A channel with a
// zero or non-finite maximum on either side keeps s_j = 1 (nothing to
// balance), and s is clamped to [1e-5, 1e5] so no weight or norm scale
// under- or overflows.
func SmoothScales(xMax, wMax []float32, alpha float64) ([]float32, error) {
	if len(xMax) != len(wMax) {
		return nil, fmt.Errorf("%d activation channels against %d weight channels", len(xMax), len(wMax))
	}
	if !(alpha >= 0 && alpha <= 1) {
		return nil, fmt.Errorf("alpha %v is not in [0, 1]", alpha)
	}
	s := make([]float32, len(xMax))
	for j := range s {
		x, w := float64(xMax[j]), float64(wMax[j])
		v := math.Pow(x, alpha) / math.Pow(w, 1-alpha)
		if !(x > 0) || !(w > 0) || math.IsInf(x, 0) || math.IsInf(w, 0) || math.IsNaN(v) || math.IsInf(v, 0) {
			v = 1
		}
		s[j] = float32(min(max(v, 1e-5), 1e5))
	}
	return s, nil
}

// MigrateInputScale moves a per-input-channel scale s [K] from the tensor
// input into the layers that read it: row j of the weight of every MatMul /
// Gemm that reads input (WeightReaders) is multiplied by s_j, and channel j
// (the last axis) of what those layers see is divided by s_j, so the model
// computes the same function in exact arithmetic (float rounding aside).
//
// The division is folded upstream when every reader of input is such a
// layer and input is not a graph output, following the producers that are
// linear per channel of the last axis, each of whose intermediate tensors
// has no other reader:
//
//   - LayerNormalization, SimplifiedLayerNormalization, RMSNormalization over
//     the last axis: scale (and bias) divided;
//   - Mul by a constant (a decomposed RMSNorm's gamma: x / sqrt(mean(x^2) +
//     eps) * gamma): the constant divided;
//   - Add of a constant (a bias, a LayerNorm's beta): the constant divided,
//     and the other operand followed on;
//   - Mul of two activations (SwiGLU's silu(gate) * up): one operand followed
//     on (the second first);
//   - MatMul / Gemm with a constant weight whose output channels are
//     input's: the weight's output columns (and Gemm's bias) divided.
//
// Otherwise a Mul by 1/s is inserted and the weight readers read its output
// (other readers keep the original tensor). how says which, for the report.
//
// Weights and constants shared with other nodes are copied first, so only
// this path changes. AWQ and SmoothQuant use it alike: compute s from their
// own statistics, then call MigrateInputScale once per tensor (all readers of
// a tensor share one s). s must be positive and finite. Callers that record
// which tensors change values on purpose (passes.State.Changed, for a
// layerwise compare against the original model) use MigrateInputScaleOf.
func MigrateInputScale(g *graph.Graph, input *graph.Value, s []float32) (how string, err error) {
	m, err := MigrateInputScaleOf(g, input, WeightReaders(g, input), s)
	return m.How, err
}

// FoldsUpstream reports whether MigrateInputScaleOf would fold the division
// into input's producers (no Mul inserted) for these readers.
func FoldsUpstream(g *graph.Graph, input *graph.Value, readers []*graph.Node) bool {
	if len(readers) == 0 || !readersAlone(g, input, readers) {
		return false
	}
	k := -1
	for _, c := range readers {
		rows, ok := weightRows(g, c, input)
		if !ok || (k >= 0 && rows != k) {
			return false
		}
		k = rows
	}
	return planFold(g, input, k, nil) != nil
}

// Migration is what MigrateInputScaleOf did.
type Migration struct {
	// How says where 1/s went, for the report.
	How string
	// Changed names the tensors whose values are now divided by s (input
	// and the intermediates of a fold); empty when a Mul was inserted.
	Changed []string
	// Producers are the MatMul/Gemm nodes whose weight's output channels
	// (and Gemm's bias) a fold divided by s: a caller that already chose
	// those weights' quantization grids must divide them too.
	Producers []*graph.Node
	// Inserted is the Mul's output the readers now read, when one was
	// inserted.
	Inserted *graph.Value
}

// MigrateInputScaleOf is MigrateInputScale for a chosen subset of input's
// weight readers (the others keep reading input unchanged, so the division
// goes into an inserted Mul unless readers are all of input's readers).
func MigrateInputScaleOf(g *graph.Graph, input *graph.Value, readers []*graph.Node, s []float32) (Migration, error) {
	return MigrateInputScaleWith(g, input, readers, s, nil)
}

// MigrateInputScaleWith is MigrateInputScaleOf where canFold, when not nil,
// is asked before a fold divides the output channels of a MatMul/Gemm
// producer: false sends the division into an inserted Mul instead (AWQ's
// engine says no where that producer's weight grid is per tensor and cannot
// follow a per-channel division).
func MigrateInputScaleWith(g *graph.Graph, input *graph.Value, readers []*graph.Node, s []float32, canFold func(*graph.Node) bool) (Migration, error) {
	var mig Migration
	if len(readers) == 0 {
		return mig, fmt.Errorf("tensor %q has no MatMul/Gemm reader with a constant weight", input.Name)
	}
	if err := checkScale(input, s); err != nil {
		return mig, err
	}
	for _, n := range readers {
		k, ok := weightRows(g, n, input)
		if !ok {
			return mig, fmt.Errorf("%s does not read %q through a constant float weight", n, input.Name)
		}
		if k != len(s) {
			return mig, fmt.Errorf("%s has %d input channels, the scale %d", n, k, len(s))
		}
	}
	var f *fold
	if readersAlone(g, input, readers) {
		f = planFold(g, input, len(s), canFold)
	}
	divideUpstream(g, input, readers, s, f, []int{len(s)}, &mig)
	for _, n := range readers {
		wv := privateConst(g, n, 1)
		scaleWeight(wv.Const, GemmTransB(n), true, s, false)
	}
	return mig, g.TopoSort()
}

// checkScale rejects a migration scale that is not positive and finite.
func checkScale(input *graph.Value, s []float32) error {
	for j, v := range s {
		if !(v > 0) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("tensor %q: scale of channel %d is %v, not positive and finite", input.Name, j, v)
		}
	}
	return nil
}

// readersAlone reports whether readers are every consumer of input and
// input is no graph output: only then may its division fold upstream.
func readersAlone(g *graph.Graph, input *graph.Value, readers []*graph.Node) bool {
	if len(readers) != len(input.Consumers) || g.IsOutput(input) {
		return false
	}
	for _, c := range input.Consumers {
		if !slices.Contains(readers, c) {
			return false
		}
	}
	return true
}

// divideUpstream divides input by s for its readers: through fold f when
// there is one, else by a Mul by 1/s (of shape) inserted before them; mig
// records which.
func divideUpstream(g *graph.Graph, input *graph.Value, readers []*graph.Node, s []float32, f *fold, shape []int, mig *Migration) {
	if f != nil {
		for _, apply := range f.apply {
			apply(s)
		}
		mig.How = "folded into " + strings.Join(f.into, ", ")
		mig.Changed, mig.Producers = f.changed, f.layers
		return
	}
	mig.Inserted = insertDivide(g, input, readers, s, shape)
	mig.How = fmt.Sprintf("Mul by 1/s inserted before %d layer(s)", len(readers))
}

// insertDivide inserts x * (1/s) (1/s of the given shape, broadcasting over
// x's channels) and makes readers read it instead of x.
func insertDivide(g *graph.Graph, x *graph.Value, readers []*graph.Node, s []float32, shape []int) *graph.Value {
	inv := make([]float32, len(s))
	for j, v := range s {
		inv[j] = 1 / v
	}
	c := newConst(g, x.Name+"_smooth_inv_scale", shape, inv)
	mul := g.AddNode("Mul", g.UniqueName(x.Name+"_smooth"), []*graph.Value{x, c}, []string{g.UniqueName(x.Name + "_smoothed")})
	if dt := x.ElemType(); dt != graph.Undefined {
		mul.Output().SetTensorType(dt, nil)
	}
	for _, n := range readers {
		g.SetInput(n, 0, mul.Output())
	}
	return mul.Output()
}

// scaleWeight multiplies (or divides) the input channels (rows of [K, N];
// columns when transposed) or the output channels of a 2-D weight by s.
func scaleWeight(w *graph.Tensor, trans, input bool, s []float32, divide bool) {
	vals, cols := w.Float32s(), w.Shape[1]
	byCol := trans == input // [K, N]: rows are inputs; transposed [N, K]: columns
	for r := 0; r < w.Shape[0]; r++ {
		for c := 0; c < cols; c++ {
			j := r
			if byCol {
				j = c
			}
			if divide {
				vals[r*cols+c] /= s[j]
			} else {
				vals[r*cols+c] *= s[j]
			}
		}
	}
}

// fold is a planned division of a tensor's channels inside its producers:
// nothing changes until apply runs.
type fold struct {
	apply   []func(s []float32)
	into    []string
	changed []string
	layers  []*graph.Node // MatMul/Gemm producers whose output channels are divided
}

// planFold plans dividing channel j of v (K channels on its last axis) by
// s_j upstream of v, or returns nil. canFold (when not nil) may refuse a
// MatMul/Gemm producer.
func planFold(g *graph.Graph, v *graph.Value, k int, canFold func(*graph.Node) bool) *fold {
	p := v.Producer
	if p == nil || len(p.Outputs) != 1 || !graph.IsStandardDomain(p.Domain) && p.Domain != "com.microsoft" {
		return nil
	}
	private := func(u *graph.Value) bool {
		return u != nil && u.Const == nil && len(u.Consumers) == 1 && !g.IsOutput(u)
	}
	done := func(f *fold, into string) *fold {
		f.into = append(f.into, into)
		f.changed = append(f.changed, v.Name)
		return f
	}
	switch p.OpType {
	case "LayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization":
		if ax, _ := p.AttrInt("axis", -1); ax != -1 {
			if r, ok := v.StaticShape(); !ok || int(ax) != len(r)-1 {
				return nil
			}
		}
		ins := []int{1}
		if p.OpType == "LayerNormalization" && p.Input(2) != nil {
			ins = append(ins, 2)
		}
		f := &fold{}
		for _, i := range ins {
			if !perChannelConst(p.Input(i), k) {
				return nil
			}
			f.apply = append(f.apply, func(s []float32) { divideConst(g, p, i, s) })
		}
		return done(f, fmt.Sprintf("the scale of %s", p))
	case "Mul", "Add":
		ci := constOperand(p)
		if ci < 0 {
			if p.OpType == "Add" {
				return nil // x + y: both would need dividing
			}
			for _, i := range []int{1, 0} { // silu(gate) * up: follow up
				if u := p.Input(i); private(u) && lastDim(u, k) {
					if f := planFold(g, u, k, canFold); f != nil {
						return done(f, fmt.Sprintf("one operand of %s", p))
					}
				}
			}
			return nil
		}
		if !perChannelConst(p.Input(ci), k) || !keepsShape(p, ci) {
			return nil
		}
		f := &fold{}
		if p.OpType == "Add" { // (x + b) / s = x / s + b / s
			u := p.Input(1 - ci)
			if !private(u) || !lastDim(u, k) {
				return nil
			}
			if f = planFold(g, u, k, canFold); f == nil {
				return nil
			}
		}
		f.apply = append(f.apply, func(s []float32) { divideConst(g, p, ci, s) })
		return done(f, fmt.Sprintf("the constant of %s", p))
	case "MatMul", "Gemm":
		w := p.Input(1)
		if w == nil || w.Const == nil || w.Const.DType != graph.Float || w.Const.Rank() != 2 || g.IsInput(w) || p.Input(0) == w {
			return nil
		}
		if canFold != nil && !canFold(p) {
			return nil
		}
		if p.OpType == "Gemm" {
			if c := p.Input(2); c != nil && !perChannelConst(c, k) {
				return nil
			}
		}
		trans := GemmTransB(p)
		if n := w.Const.Shape[1]; trans && w.Const.Shape[0] != k || !trans && n != k {
			return nil
		}
		f := &fold{layers: []*graph.Node{p}, apply: []func(s []float32){func(s []float32) {
			wv := p.Input(1)
			if len(wv.Consumers) > 1 {
				wv = g.AddInitializer(g.UniqueName(wv.Name+"_own"), wv.Const.Clone())
				replaceInput(g, p, 1, wv)
			}
			scaleWeight(wv.Const, trans, false, s, true)
			if p.OpType == "Gemm" && p.Input(2) != nil {
				divideConst(g, p, 2, s)
			}
		}}}
		return done(f, fmt.Sprintf("the output channels of %s", p))
	}
	return nil
}

// lastDim: v's last axis is known to have k channels, from shape inference
// or from the weight of the MatMul/Gemm that makes it (through elementwise
// ops, whose output has the broadcast shape of their inputs).
func lastDim(v *graph.Value, k int) bool {
	return lastDimDepth(v, k, 8)
}

func lastDimDepth(v *graph.Value, k, depth int) bool {
	if r, ok := v.StaticShape(); ok && len(r) > 0 {
		return r[len(r)-1] == k
	}
	p := v.Producer
	if p == nil || depth == 0 {
		return false
	}
	switch p.OpType {
	case "MatMul", "Gemm":
		if w := p.Input(1); w != nil && w.Const != nil && w.Const.Rank() == 2 {
			if GemmTransB(p) {
				return w.Const.Shape[0] == k
			}
			return w.Const.Shape[1] == k
		}
	case "Add", "Mul", "Sub", "Div", "Sigmoid", "Relu", "Tanh", "Erf", "Neg":
		for _, in := range p.Inputs {
			if in != nil && in.Const == nil && lastDimDepth(in, k, depth-1) {
				return true
			}
		}
	}
	return false
}

// constOperand is the index of the one constant operand of a binary node, or -1.
func constOperand(n *graph.Node) int {
	a, b := n.Input(0), n.Input(1)
	if len(n.Inputs) != 2 || a == nil || b == nil {
		return -1
	}
	switch {
	case a.Const == nil && b.Const != nil:
		return 1
	case a.Const != nil && b.Const == nil:
		return 0
	}
	return -1
}

// perChannelConst: a float constant of K values along the last axis (shape
// [K], [1, K], [1, 1, K], ...) or a single value.
func perChannelConst(v *graph.Value, k int) bool {
	if v == nil || v.Const == nil || v.Const.DType != graph.Float {
		return false
	}
	sh := v.Const.Shape
	if v.Const.Len() == 1 {
		return true
	}
	return len(sh) > 0 && sh[len(sh)-1] == k && v.Const.Len() == k
}

// keepsShape: the data operand of a binary node has at least the constant's
// rank, so dividing by a [K] constant changes no output shape.
func keepsShape(n *graph.Node, ci int) bool {
	x, c := n.Input(1-ci), n.Input(ci)
	if c.Const.Len() != 1 && c.Const.Rank() <= 1 {
		return true
	}
	r, ok := x.StaticShape()
	return ok && len(r) >= max(c.Const.Rank(), 1)
}

// divideConst replaces input i of n, a per-channel or single-value constant,
// by a private [K] (or its own shape when per channel) copy divided by s.
func divideConst(g *graph.Graph, n *graph.Node, i int, s []float32) {
	old := n.Input(i).Const
	vals := old.Float32s()
	out := make([]float32, len(s))
	for j := range out {
		v := vals[0]
		if len(vals) > 1 {
			v = vals[j]
		}
		out[j] = v / s[j]
	}
	shape := []int{len(s)}
	if old.Len() == len(s) && old.Rank() > 0 {
		shape = append([]int(nil), old.Shape...)
	}
	replaceInput(g, n, i, newConst(g, n.Input(i).Name+"_smooth", shape, out))
}
