package converter

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/passes"
	"github.com/onnxq/onnxq/wround"
)

// The weight rounding engine: for every MatMul, Gemm and Conv weight whose
// rule asks for an algorithm other than nearest rounding (or whose codes are
// narrowed by WeightBits), it sees the weight as a wround.Layer, collects
// the layer's input statistics on the calibration set, lets the algorithm
// choose the codes, and hands back the weight's new float values
// scale*(q-zero), which QDQ insertion's nearest rounding turns into exactly
// those codes.
//
// Memory: statistics are collected for a batch of layers per pass over the
// calibration data, at most statsBudget bytes of them (a single layer that
// needs more runs alone): a K x K float64 Hessian, a reservoir of at most
// Needs.Rows sampled rows, K means. None of it grows with the number of
// samples. Layers reading the same tensor the same way share statistics.

// RoundingReport is what the engine did to one weight.
type RoundingReport struct {
	Algorithm string `json:"algorithm"`
	// OutputMSE before (nearest rounding) and after, over the layer's input
	// rows on the calibration set (from the Hessian: every row); absent
	// without calibration data.
	MSENearest *float64 `json:"output_mse_nearest,omitempty"`
	MSEAfter   *float64 `json:"output_mse,omitempty"`
	// Seconds is the algorithm's time on this weight; collecting the
	// statistics is the "weight rounding" phase's.
	Seconds float64 `json:"seconds"`
}

// statsBudget bounds the statistics held during one calibration pass.
var statsBudget int64 = 256 << 20 // a variable for tests

// roundTarget is one weight the engine handles.
type roundTarget struct {
	weight string
	node   *graph.Node
	algo   string
	clip   bool // the clipping search first, then algo on that grid
	enc    *passes.Encoding
	pinned bool
	tr     *TensorReport
	subs   []*roundSub // one per conv group (one for MatMul/Gemm)
	order  int         // the node's position in the graph
}

// roundSub is one wround.Layer of a target: rows of the weight matrix and the
// input columns they read.
type roundSub struct {
	layer *wround.Layer
	index func(n, k int) int // (n, k) -> flat index into the weight tensor
	param func(n, k int) int // (n, k) -> index into the encoding's scales
	src   *rowSource
}

// rowSource says how rows of width K are cut from one tensor: a MatMul/Gemm
// input's last (or, transA, first) axis, or one conv group's im2col patches.
type rowSource struct {
	tensor string
	k      int
	transA bool
	conv   *convGeom
	group  int
	stats  *rowStats
}

func (s *rowSource) key() string {
	if s.conv == nil {
		return fmt.Sprintf("%s|mm|%d|%v", s.tensor, s.k, s.transA)
	}
	return fmt.Sprintf("%s|conv|%+v|%d", s.tensor, *s.conv, s.group)
}

// convGeom is what im2col needs of a 1-D or 2-D Conv.
type convGeom struct {
	cg, kh, kw, sh, sw, dh, dw int
	padT, padL, padB, padR     int
	autoPad                    string
}

// roundWeights runs the engine. It returns each handled weight's new values
// (the model keeps its float weights: activation calibration and bias
// correction run on the float model, the latter against these values).
//
// AWQ's input scales are folded into the graph as they are chosen (see
// awqFold): the pass state learns the tensors whose values change, the
// report gets an "awq" pass entry, and inserted tensors (a Mul by 1/s where
// no producer could take the division) are returned for calibration.
func roundWeights(ctx context.Context, m *graph.Model, pl *plan, st *settings, opt Options, weights map[string]*passes.Encoding, reports []*TensorReport, rep *Report, pst *passes.State) (map[string][]float32, []string, error) {
	opt.Rounding = roundingDefaults(opt.Rounding)
	if opt.QuantizedTargets && !opt.Sequential {
		return nil, nil, fmt.Errorf("quantized targets are a choice of sequential weight rounding (--sequential): without it every layer's inputs and targets are the float model's")
	}
	targets, err := roundTargets(m.Graph, pl, st, opt, weights, reports, rep)
	if err != nil || len(targets) == 0 {
		return nil, nil, err
	}
	for _, t := range targets {
		if needs, _ := wround.NeedsOf(t.algo, opt.Rounding); needs.Hessian || needs.Rows > 0 || needs.AbsMean {
			if opt.Calib == "" {
				return nil, nil, fmt.Errorf("weight %q: weight rounding %s needs calibration data (--calib); nearest and hqq do not", t.weight, t.algo)
			}
		}
	}
	out := map[string][]float32{}
	if opt.Calib == "" {
		for _, t := range targets {
			if err := runTarget(t, opt, out, rep, nil); err != nil {
				return nil, nil, err
			}
		}
		return out, nil, nil
	}
	src, err := dataset.Open(opt.Calib, dataset.InputsOf(m), opt.Dataset)
	if err != nil {
		return nil, nil, err
	}
	rep.Samples = src.Len()
	// Sequential rounding runs later layers on the model with the earlier
	// ones already rounded; the float values come back at the end.
	orig := map[string][]float32{}
	fold := &awqFold{g: m.Graph, weights: weights, out: out, orig: orig, state: pst,
		change: &passes.Change{Pass: "awq", MaxRelDiff: -1}, pinned: map[string]bool{}}
	for _, tr := range reports {
		if tr.Observer == "overrides" || st.weight[tr.Name].Min != nil {
			fold.pinned[tr.Name] = true // the user's grid: no fold divides it
		}
	}
	defer func() {
		for name, w := range orig {
			copy(m.Graph.Value(name).Const.Float32s(), w)
		}
	}()
	rest := adjacentBySource(targets)
	for len(rest) > 0 {
		batch := nextBatch(m.Graph, rest, opt)
		rest = rest[len(batch):]
		if err := collect(ctx, m, src, batch, opt, orig); err != nil {
			return nil, nil, err
		}
		for _, job := range awqGroups(batch) {
			var err error
			if len(job) > 1 {
				err = runShared(job, opt, out, rep, fold)
			} else {
				err = runTarget(job[0], opt, out, rep, fold)
			}
			if err != nil {
				return nil, nil, err
			}
		}
		for _, t := range batch {
			for _, s := range t.subs {
				s.src.stats = nil // release as soon as the layer is done
			}
			if opt.Sequential {
				w := m.Graph.Value(t.weight).Const.Float32s()
				orig[t.weight] = slices.Clone(w)
				copy(w, out[t.weight])
			}
		}
	}
	if fold.change.Count > 0 {
		rep.Passes = append(rep.Passes, fold.change)
	}
	return out, fold.inserted, nil
}

// roundingDefaults fills the knobs left zero with wround's defaults.
func roundingDefaults(o wround.Options) wround.Options {
	d := wround.DefaultOptions()
	set := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	seti := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&o.GPTQDamp, d.GPTQDamp)
	seti(&o.GPTQBlock, d.GPTQBlock)
	seti(&o.AdaRoundIters, d.AdaRoundIters)
	if o.AdaRoundBeta == [2]float64{} {
		o.AdaRoundBeta = d.AdaRoundBeta
	}
	set(&o.AdaRoundLR, d.AdaRoundLR)
	seti(&o.AdaRoundBatch, d.AdaRoundBatch)
	seti(&o.AWQGrid, d.AWQGrid)
	seti(&o.HQQIters, d.HQQIters)
	return o
}

// roundTargets lists the weights the engine handles, in graph order.
func roundTargets(g *graph.Graph, pl *plan, st *settings, opt Options, weights map[string]*passes.Encoding, reports []*TensorReport, rep *Report) ([]*roundTarget, error) {
	byName := map[string]*TensorReport{}
	for _, tr := range reports {
		byName[tr.Name] = tr
	}
	var targets []*roundTarget
	for i, n := range g.Nodes {
		if n.OpType != "Conv" && n.OpType != "Gemm" && n.OpType != "MatMul" || !graph.IsStandardDomain(n.Domain) {
			continue
		}
		wv := n.Input(1)
		if wv == nil || wv.Const == nil || weights[wv.Name] == nil {
			continue
		}
		algo := opt.WeightRounding
		c := st.weight[wv.Name]
		if c.WeightRounding != "" {
			algo = c.WeightRounding
		}
		if algo == "" {
			algo = "nearest"
		}
		clip := false
		r := c.WeightRange
		if r == "" {
			r = opt.WeightRange
		}
		if r == "" && algo == "gptq" {
			// GPTQ's default grid: the clipping search lowered the output
			// error, and the perplexity or accuracy, of every model measured
			// (docs/llm.md).
			r = "mse"
		}
		if r == "mse" {
			switch algo {
			case "nearest":
				algo = "mse"
			case "gptq", "adaround", "awq": // awq: after its scales, instead of its own clipping
				clip = true
			default: // hqq fits its own grid
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("weight %q: weight range mse does not combine with %s, which fits its own grid: ignored", wv.Name, algo))
			}
		}
		if algo == "awq" {
			// AWQ's input scales must be folded into the graph: passes
			// does it for MatMul/Gemm (transA 0) and ungrouped Conv readers.
			ta, _ := n.AttrInt("transA", 0)
			grp, _ := n.AttrInt("group", 1)
			if ta != 0 || grp != 1 {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("weight %q: awq's input scales are folded for MatMul, Gemm (transA 0) and ungrouped Conv layers only: nearest rounding", wv.Name))
				algo = "nearest"
			}
		}
		if algo == "nearest" && opt.WeightBits == 0 {
			continue
		}
		skip := func(why string) {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("weight %q: %s: nearest rounding", wv.Name, why))
		}
		switch {
		case len(wv.Consumers) > 1:
			skip(fmt.Sprintf("read by %d nodes, and weight rounding fits one layer's inputs", len(wv.Consumers)))
			continue
		case wv.Const.DType != graph.Float:
			skip(fmt.Sprintf("a %s weight (weight rounding works on float32)", wv.Const.DType.Short()))
			continue
		}
		enc := weights[wv.Name]
		t := &roundTarget{weight: wv.Name, node: n, algo: algo, clip: clip, enc: enc, tr: byName[wv.Name], order: i}
		t.pinned = t.tr != nil && t.tr.Observer == "overrides" || c.Min != nil
		dt, sym := st.weightType(wv.Name, opt)
		qmin, qmax, ok := kernels.QuantRange(enc.DType)
		if !ok {
			return nil, fmt.Errorf("weight %q: %s is not a quantized type", wv.Name, dt.Short())
		}
		lo, hi := int32(qmin), int32(qmax)
		if opt.ReduceRange && enc.DType == graph.Int8 {
			lo, hi = -64, 63
		}
		narrow := false
		if b := opt.WeightBits; b > 0 && b < enc.DType.BitWidth() {
			if t.pinned {
				return nil, fmt.Errorf("weight %q: --weight-bits %d narrows the codes, but its encoding is pinned by the overrides", wv.Name, b)
			}
			if lo < 0 {
				lo, hi = -(1 << (b - 1)), 1<<(b-1)-1
			} else {
				lo, hi = 0, 1<<b-1
			}
			narrow = true
		}
		subs, why, err := layersOf(n, wv.Const, enc, lo, hi, sym)
		if err != nil {
			return nil, fmt.Errorf("weight %q: %v", wv.Name, err)
		}
		if why != "" {
			skip(why)
			continue
		}
		for _, s := range subs {
			s.layer.Pinned = t.pinned
			if narrow {
				refit(s.layer)
			}
		}
		if narrow && enc.BlockSize == 0 && len(enc.Scale) == 1 && len(subs) > 1 {
			return nil, fmt.Errorf("weight %q: --weight-bits with a per-tensor grouped Conv weight is not supported (use per-channel weights)", wv.Name)
		}
		t.subs = subs
		targets = append(targets, t)
	}
	return targets, nil
}

// refit computes every group's grid again from its weights' min/max on the
// layer's (narrowed) code range.
func refit(l *wround.Layer) {
	rows, groups := l.N, l.Groups()
	if l.PerTensor {
		rows = 1
	}
	for n := range rows {
		for g := range groups {
			k0, k1 := g*max(l.Group, 1), min((g+1)*max(l.Group, 1), l.K)
			r0, r1 := n, n+1
			if l.PerTensor {
				k0, k1, r0, r1 = 0, l.K, 0, l.N
			}
			lo, hi := math.Inf(1), math.Inf(-1)
			for r := r0; r < r1; r++ {
				for _, v := range l.W[r*l.K+k0 : r*l.K+k1] {
					lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
				}
			}
			l.FitRange(l.Param(n, k0), lo, hi)
		}
	}
}

// layersOf sees a weight as wround Layers: MatMul [K, N] and Gemm (transB
// or not) as one N x K layer, a Conv [O, C/g, kh, kw] as one (O/g) x
// (C/g*kh*kw) layer per group, each with the encoding's scales in its own
// layout. why is set for weights it cannot handle.
func layersOf(n *graph.Node, w *graph.Tensor, enc *passes.Encoding, qmin, qmax int32, sym bool) (subs []*roundSub, why string, err error) {
	shape := w.Shape
	data := w.Float32s()
	in := n.Input(0)
	if in == nil {
		return nil, "no input", nil
	}
	encIdx := enc.ScaleIndex(shape)
	mk := func(N, K int, index func(n, k int) int, src *rowSource) *roundSub {
		l := &wround.Layer{N: N, K: K, QMin: qmin, QMax: qmax, Symmetric: sym}
		l.W = make([]float32, N*K)
		for r := range N {
			for k := range K {
				l.W[r*K+k] = data[index(r, k)]
			}
		}
		param := func(r, k int) int { return encIdx(index(r, k)) }
		switch {
		case len(enc.Scale) == 1:
			l.PerTensor = true
			l.Scale, l.Zero = []float32{enc.Scale[0]}, []int32{int32(enc.ZeroPoint[0])}
		default:
			l.Group = K
			if enc.BlockSize > 0 {
				l.Group = enc.BlockSize
			}
			groups := (K + l.Group - 1) / l.Group
			l.Scale, l.Zero = make([]float32, N*groups), make([]int32, N*groups)
			for r := range N {
				for g := range groups {
					p := param(r, g*l.Group)
					l.Scale[r*groups+g], l.Zero[r*groups+g] = enc.Scale[p], int32(enc.ZeroPoint[p])
				}
			}
		}
		return &roundSub{layer: l, index: index, param: param, src: src}
	}
	switch n.OpType {
	case "MatMul", "Gemm":
		if len(shape) != 2 {
			return nil, fmt.Sprintf("a rank-%d MatMul weight", len(shape)), nil
		}
		transA, transB := int64(0), int64(0)
		if n.OpType == "Gemm" {
			transA, _ = n.AttrInt("transA", 0)
			transB, _ = n.AttrInt("transB", 0)
		}
		if enc.BlockSize == 0 && len(enc.Scale) > 1 && enc.Axis != map[bool]int{true: 0, false: 1}[transB != 0] {
			return nil, "its per-channel axis is not the output channels", nil
		}
		K, N := shape[0], shape[1]
		index := func(r, k int) int { return k*N + r }
		if transB != 0 {
			N, K = shape[0], shape[1]
			index = func(r, k int) int { return r*K + k }
		}
		return []*roundSub{mk(N, K, index, &rowSource{tensor: in.Name, k: K, transA: transA != 0})}, "", nil
	case "Conv":
		if len(shape) != 3 && len(shape) != 4 {
			return nil, fmt.Sprintf("a %d-D convolution", len(shape)-2), nil
		}
		geo, groups, err := convGeomOf(n, shape)
		if err != nil {
			return nil, "", err
		}
		if len(enc.Scale) > 1 && (enc.BlockSize > 0 || enc.Axis != 0) {
			return nil, "its encoding is not per output channel", nil
		}
		O := shape[0]
		per := graph.Numel(shape[1:])
		mg := O / groups
		for grp := range groups {
			index := func(r, k int) int { return (grp*mg+r)*per + k }
			sub := mk(mg, per, index, &rowSource{tensor: in.Name, k: per, conv: geo, group: grp})
			sub.layer.Taps = geo.kh * geo.kw
			subs = append(subs, sub)
		}
		return subs, "", nil
	}
	return nil, n.OpType + " is not a weight layer", nil
}

func convGeomOf(n *graph.Node, shape []int) (*convGeom, int, error) {
	group, err := n.AttrInt("group", 1)
	if err != nil {
		return nil, 0, err
	}
	if group < 1 || shape[0]%int(group) != 0 {
		return nil, 0, fmt.Errorf("group %d does not divide %d output channels", group, shape[0])
	}
	spatial := len(shape) - 2
	ints := func(name string, def int64, count int) ([]int, error) {
		v, err := n.AttrInts(name, nil)
		if err != nil {
			return nil, err
		}
		out := make([]int, count)
		for i := range out {
			out[i] = int(def)
			if v != nil {
				if len(v) != count {
					return nil, fmt.Errorf("%s has %d values for a %d-D convolution", name, len(v), spatial)
				}
				out[i] = int(v[i])
			}
		}
		return out, nil
	}
	strides, err := ints("strides", 1, spatial)
	if err != nil {
		return nil, 0, err
	}
	dil, err := ints("dilations", 1, spatial)
	if err != nil {
		return nil, 0, err
	}
	pads, err := ints("pads", 0, 2*spatial)
	if err != nil {
		return nil, 0, err
	}
	ap, err := n.AttrString("auto_pad", "NOTSET")
	if err != nil {
		return nil, 0, err
	}
	g := &convGeom{cg: shape[1], kh: 1, kw: shape[len(shape)-1], sh: 1, sw: strides[spatial-1], dh: 1, dw: dil[spatial-1], autoPad: ap}
	if spatial == 1 {
		g.padL, g.padR = pads[0], pads[1]
	} else {
		g.kh, g.sh, g.dh = shape[2], strides[0], dil[0]
		g.padT, g.padL, g.padB, g.padR = pads[0], pads[1], pads[2], pads[3]
	}
	if min(g.sh, g.sw, g.dh, g.dw) < 1 {
		return nil, 0, fmt.Errorf("strides and dilations must be positive")
	}
	return g, int(group), nil
}

// pads resolves auto_pad for one axis: output size and leading padding.
func convAxis(in, k, s, d, pb, pe int, autoPad string) (out, lead int) {
	ek := d*(k-1) + 1
	switch autoPad {
	case "VALID":
		return (in-ek)/s + 1, 0
	case "SAME_UPPER", "SAME_LOWER":
		out = (in + s - 1) / s
		total := max(0, (out-1)*s+ek-in)
		if autoPad == "SAME_UPPER" {
			return out, total / 2
		}
		return out, total - total/2
	}
	return (in+pb+pe-ek)/s + 1, pb
}

// rows calls f with every row of width s.k that tensor t gives this source.
// row is reused between calls.
func (s *rowSource) rows(t *graph.Tensor, row []float32, f func([]float32)) error {
	d := t.Float32s()
	if s.conv == nil {
		if s.transA {
			if t.Rank() != 2 || t.Shape[0] != s.k {
				return fmt.Errorf("input %q has shape %v, want [%d, M]", s.tensor, t.Shape, s.k)
			}
			m := t.Shape[1]
			for r := range m {
				for k := range s.k {
					row[k] = d[k*m+r]
				}
				f(row)
			}
			return nil
		}
		if t.Rank() < 1 || t.Shape[t.Rank()-1] != s.k {
			return fmt.Errorf("input %q has shape %v, want the last axis %d", s.tensor, t.Shape, s.k)
		}
		for r := range len(d) / s.k {
			f(d[r*s.k : (r+1)*s.k])
		}
		return nil
	}
	g := s.conv
	var B, C, H, W int
	switch t.Rank() {
	case 3:
		B, C, H, W = t.Shape[0], t.Shape[1], 1, t.Shape[2]
	case 4:
		B, C, H, W = t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	default:
		return fmt.Errorf("conv input %q has shape %v", s.tensor, t.Shape)
	}
	if (s.group+1)*g.cg > C {
		return fmt.Errorf("conv input %q has %d channels, the weight reads %d in group %d", s.tensor, C, g.cg, s.group)
	}
	oh, top := convAxis(H, g.kh, g.sh, g.dh, g.padT, g.padB, g.autoPad)
	ow, left := convAxis(W, g.kw, g.sw, g.dw, g.padL, g.padR, g.autoPad)
	c0 := s.group * g.cg
	for b := range B {
		for y := range oh {
			for x := range ow {
				k := 0
				for c := range g.cg {
					plane := d[((b*C)+c0+c)*H*W:]
					for i := range g.kh {
						iy := y*g.sh - top + i*g.dh
						for j := range g.kw {
							ix := x*g.sw - left + j*g.dw
							if iy >= 0 && iy < H && ix >= 0 && ix < W {
								row[k] = plane[iy*W+ix]
							} else {
								row[k] = 0
							}
							k++
						}
					}
				}
				f(row)
			}
		}
	}
	return nil
}

// rowStats accumulates one source's statistics.
type rowStats struct {
	k     int
	needs wround.Needs
	h     []float64 // K x K sums of x x^T (upper triangle while collecting)
	abs   []float64
	count int64
	block []float64 // rows waiting for the rank-k update
	nb    int
	// With float targets: the sums of x (x_f - x)^T, and the waiting rows'
	// x_f - x beside block.
	cross  []float64
	dblock []float64
	res    []float32 // reservoir of sampled rows
	m      int
	rng    *rand.Rand
}

const hessianBlock = 64

func newRowStats(k int, needs wround.Needs, seed uint64, salt string) *rowStats {
	s := &rowStats{k: k, needs: needs}
	if needs.Hessian {
		s.h = make([]float64, k*k)
		s.block = make([]float64, hessianBlock*k)
	}
	if needs.AbsMean {
		s.abs = make([]float64, k)
	}
	if needs.Rows > 0 {
		var h uint64 = 14695981039346656037
		for i := range len(salt) {
			h = (h ^ uint64(salt[i])) * 1099511628211
		}
		s.rng = rand.New(rand.NewPCG(seed, h))
	}
	return s
}

// withCross makes s also collect the cross term of float targets.
func (s *rowStats) withCross() {
	s.cross = make([]float64, s.k*s.k)
	s.dblock = make([]float64, hessianBlock*s.k)
}

func statsBytes(k int, n wround.Needs, cross bool) int64 {
	b := int64(n.Rows*k) * 4
	if n.Hessian {
		b += int64(k*k+hessianBlock*k) * 8
	}
	if cross {
		b += int64(k*k+hessianBlock*k) * 8
	}
	if n.AbsMean {
		b += int64(k) * 8
	}
	return b
}

// addPair adds a row of the rounded model's input and the float model's
// input for the same position: the statistics of row, and the cross term.
func (s *rowStats) addPair(row, float []float32) {
	if s.cross != nil {
		d := s.dblock[s.nb*s.k : (s.nb+1)*s.k]
		for i, v := range row {
			d[i] = float64(float[i]) - float64(v)
		}
	}
	s.add(row)
}

func (s *rowStats) add(row []float32) {
	s.count++
	if s.abs != nil {
		for i, v := range row {
			s.abs[i] += math.Abs(float64(v))
		}
	}
	if s.h != nil {
		b := s.block[s.nb*s.k : (s.nb+1)*s.k]
		for i, v := range row {
			b[i] = float64(v)
		}
		if s.nb++; s.nb == hessianBlock {
			s.flush()
		}
	}
	if n := s.needs.Rows; n > 0 {
		switch {
		case s.m < n:
			s.res = append(s.res, row...)
			s.m++
		default:
			if j := s.rng.Int64N(s.count); j < int64(n) {
				copy(s.res[int(j)*s.k:], row)
			}
		}
	}
}

// flush adds the waiting rows' x x^T to the Hessian in one rank-k update.
func (s *rowStats) flush() {
	if s.nb == 0 {
		return
	}
	a := blas64.General{Rows: s.nb, Cols: s.k, Stride: s.k, Data: s.block[:s.nb*s.k]}
	c := blas64.Symmetric{N: s.k, Stride: s.k, Uplo: blas.Upper, Data: s.h}
	blas64.Syrk(blas.Trans, 1, a, 1, c)
	if s.cross != nil {
		d := blas64.General{Rows: s.nb, Cols: s.k, Stride: s.k, Data: s.dblock[:s.nb*s.k]}
		blas64.Gemm(blas.Trans, blas.NoTrans, 1, a, d, 1, blas64.General{Rows: s.k, Cols: s.k, Stride: s.k, Data: s.cross})
	}
	s.nb = 0
}

// inputs turns the sums into means.
func (s *rowStats) inputs() *wround.Inputs {
	in := &wround.Inputs{X: s.res, M: s.m}
	if s.count == 0 {
		if s.h != nil {
			in.H = make([]float64, s.k*s.k)
		}
		if s.abs != nil {
			in.AbsMean = make([]float64, s.k)
		}
		return in
	}
	if s.h != nil {
		s.flush()
		k := s.k
		h := make([]float64, k*k)
		for i := range k {
			for j := i; j < k; j++ {
				v := s.h[i*k+j] / float64(s.count)
				h[i*k+j], h[j*k+i] = v, v
			}
		}
		in.H = h
		if s.cross != nil {
			in.Cross = make([]float64, k*k)
			for i, v := range s.cross {
				in.Cross[i] = v / float64(s.count)
			}
		}
	}
	if s.abs != nil {
		in.AbsMean = make([]float64, s.k)
		for i, v := range s.abs {
			in.AbsMean[i] = v / float64(s.count)
		}
	}
	return in
}

// needsOf is what a target's algorithm reads, plus the Hessian the report's
// output errors are computed from.
func needsOf(t *roundTarget, o wround.Options) wround.Needs {
	n, _ := wround.NeedsOf(t.algo, o)
	n.Hessian = true
	if t.algo == "mse" {
		n.Rows = 0 // the Hessian has every row
	}
	return n
}

// nextBatch takes targets from the front of rest while their statistics fit
// statsBudget and, when sequential, while none reads a tensor computed from
// an earlier target of the batch (that one must be rounded first).
func nextBatch(g *graph.Graph, rest []*roundTarget, opt Options) []*roundTarget {
	var used int64
	tainted := map[string]bool{}
	seen := map[string]bool{}
	n := 0
	for _, t := range rest {
		var need int64
		for _, s := range t.subs {
			if !seen[s.src.key()] {
				need += statsBytes(s.src.k, needsOf(t, opt.Rounding), floatTargets(t, opt))
			}
		}
		// A layer whose inputs the batch already collects joins it: layers
		// reading one tensor stay together (AWQ needs them in one piece).
		if need > 0 && n > 0 && used+need > statsBudget {
			break
		}
		if need > 0 && opt.Sequential && tainted[t.node.Input(0).Name] {
			break
		}
		used += need
		for _, s := range t.subs {
			seen[s.src.key()] = true
		}
		n++
		if opt.Sequential {
			taint(g, t.node, tainted)
		}
	}
	return rest[:n]
}

// taint marks every value computed from node's outputs.
func taint(g *graph.Graph, node *graph.Node, tainted map[string]bool) {
	for _, o := range node.Outputs {
		tainted[o.Name] = true
	}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != nil && tainted[in.Name] {
				for _, o := range n.Outputs {
					tainted[o.Name] = true
				}
				break
			}
		}
	}
}

// collect runs the calibration set once through the model (as it is now)
// and fills the statistics of the batch's sources. floats holds the float
// values of the weights sequential rounding has replaced so far; when a
// target wants float targets (floatTargets) and floats is not empty, every
// sample also runs through the float model and its sources collect the
// cross term between the two models' inputs, row by row.
func collect(ctx context.Context, m *graph.Model, src dataset.Source, batch []*roundTarget, opt Options, floats map[string][]float32) error {
	shared := map[string]*rowStats{}
	bySource := map[string][]*rowSource{}
	want := map[string]bool{}
	paired := false
	width := 0
	for _, t := range batch {
		needs := needsOf(t, opt.Rounding)
		cross := len(floats) > 0 && floatTargets(t, opt)
		for _, s := range t.subs {
			key := s.src.key()
			st := shared[key]
			if st == nil {
				st = newRowStats(s.src.k, needs, opt.Rounding.Seed, key)
				shared[key] = st
				bySource[s.src.tensor] = append(bySource[s.src.tensor], s.src)
			} else {
				st.needs.Rows = max(st.needs.Rows, needs.Rows)
				if needs.AbsMean && st.abs == nil {
					st.abs = make([]float64, st.k)
				}
			}
			if cross && st.cross == nil {
				st.withCross()
			}
			paired = paired || cross
			s.src.stats = st
			want[s.src.tensor] = true
			width = max(width, s.src.k)
		}
	}
	var floatSess *kernels.Session
	floatOut := map[string]*graph.Tensor{}
	var tapErr error
	if paired {
		// The float model: the same graph with the replaced weights' float
		// values as constants (a session keeps the tensors it was built
		// with, so the graph gets its rounded ones back right after).
		saved := map[string]*graph.Tensor{}
		for name, w := range floats {
			v := m.Graph.Value(name)
			saved[name] = v.Const
			v.Const = graph.Float32Tensor(v.Const.Shape, w)
		}
		var err error
		floatSess, err = kernels.NewSession(m, kernels.Options{Threads: opt.Threads, TapOnly: want, Tap: func(name string, t *graph.Tensor) {
			if t.DType == graph.Float {
				floatOut[name] = t.Clone()
			}
		}})
		for name, t := range saved {
			m.Graph.Value(name).Const = t
		}
		if err != nil {
			return err
		}
	}
	row := make([]float32, width)
	var frows []float32
	sess, err := kernels.NewSession(m, kernels.Options{Threads: opt.Threads, TapOnly: want, Tap: func(name string, t *graph.Tensor) {
		if tapErr != nil || t.DType != graph.Float {
			return
		}
		for _, s := range bySource[name] {
			if s.stats.cross == nil {
				if err := s.rows(t, row[:s.k], s.stats.add); err != nil {
					tapErr = err
					return
				}
				continue
			}
			ft := floatOut[name]
			if ft == nil || !slices.Equal(ft.Shape, t.Shape) {
				tapErr = fmt.Errorf("input %q of the float model does not match the rounded model's (shape %v)", name, t.Shape)
				return
			}
			frows = frows[:0]
			if err := s.rows(ft, row[:s.k], func(r []float32) { frows = append(frows, r...) }); err != nil {
				tapErr = err
				return
			}
			i := 0
			if err := s.rows(t, row[:s.k], func(r []float32) {
				s.stats.addPair(r, frows[i*s.k:(i+1)*s.k])
				i++
			}); err != nil {
				tapErr = err
				return
			}
		}
	}})
	if err != nil {
		return err
	}
	for i := range src.Len() {
		if err := ctx.Err(); err != nil {
			return err
		}
		smp, err := src.Sample(i)
		if err != nil {
			return err
		}
		if floatSess != nil {
			clear(floatOut)
			outs, err := floatSess.Run(smp)
			if err != nil {
				return fmt.Errorf("weight rounding: calibration sample %d (float model): %w", i, err)
			}
			floatSess.Recycle(outs)
		}
		outs, err := sess.Run(smp)
		if err != nil {
			return fmt.Errorf("weight rounding: calibration sample %d: %w", i, err)
		}
		sess.Recycle(outs)
		if tapErr != nil {
			return fmt.Errorf("weight rounding: %v", tapErr)
		}
	}
	return nil
}

// floatTargets says whether target t reconstructs the float model's output
// (wround's Layer.Retarget): with --sequential unless --quantized-targets,
// for the algorithms that fit codes to a weight matrix (AWQ's input scales
// are folded into the graph and HQQ reads no data).
func floatTargets(t *roundTarget, opt Options) bool {
	return opt.Sequential && !opt.QuantizedTargets && (t.algo == "gptq" || t.algo == "adaround" || t.algo == "mse")
}

// runTarget runs the target's algorithm on each of its layers and writes the
// new weight values into out and the grids into the encoding.
// AWQ's input scales go through f into the graph (nil: AWQ is an error).
func runTarget(t *roundTarget, opt Options, out map[string][]float32, rep *Report, f *awqFold) error {
	start := time.Now()
	var before, after float64
	haveMSE := false
	algo := t.algo
	if unseen(t.subs[0].src) {
		// A layer the calibration data never reaches has no statistics:
		// GPTQ would take every input for dead and zero the weight.
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("weight %q: its input %q was never computed on the calibration data: nearest rounding", t.weight, t.subs[0].src.tensor))
		algo, t.clip = "nearest", false
	}
	for _, s := range t.subs {
		var in *wround.Inputs
		if s.src.stats != nil {
			in = s.src.stats.inputs()
		}
		l := s.layer
		nearest := l.Dequantized(l.RTN())
		if in != nil && in.Cross != nil && algo != "nearest" {
			// The float model's output is the target: the weights to
			// round become w~ (see wround's Retarget), and the grid, unless
			// pinned, is fit to them.
			if err := l.Retarget(in, opt.Rounding.GPTQDamp); err != nil {
				return fmt.Errorf("weight %q: %v", t.weight, err)
			}
			if !l.Pinned {
				refit(l)
			}
		}
		if in != nil && len(in.H) == l.K*l.K {
			// Against the layer's target: the float weights, or w~.
			before += valuesMSE(l.N, l.K, l.W, nearest, in.H) * float64(l.N)
			haveMSE = true
		}
		w0 := l.W
		if algo == "awq" {
			w0 = slices.Clone(l.W) // awq scales l.W in place
		}
		if t.clip && !l.Pinned && algo != "awq" {
			// The grid from the clipping search; the algorithm keeps it.
			if _, err := wround.Run("mse", l, in, opt.Rounding); err != nil {
				return fmt.Errorf("weight %q: mse: %v", t.weight, err)
			}
			l.Pinned = true
		}
		res, err := runAlgo(algo, t.clip, l, in, opt.Rounding)
		l.Pinned = t.pinned
		if err != nil {
			return fmt.Errorf("weight %q: %s: %v", t.weight, algo, err)
		}
		if haveMSE {
			after += hessianMSE(l, w0, res.Codes, in.H, res.InputScale) * float64(l.N)
		}
		if res.InputScale != nil {
			if f == nil || len(t.subs) != 1 {
				return fmt.Errorf("weight %q: awq chose input scales for %q that cannot be folded here", t.weight, t.node.Input(0).Name)
			}
			if err := f.apply([]*roundTarget{t}, res.InputScale); err != nil {
				return err
			}
		}
		writeBack(t, s, res.Codes, out)
	}
	if t.tr != nil {
		if t.clip {
			algo += "+mse"
		}
		r := &RoundingReport{Algorithm: algo, Seconds: time.Since(start).Seconds()}
		if haveMSE {
			rows := 0
			for _, s := range t.subs {
				rows += s.layer.N
			}
			b, a := before/float64(rows), after/float64(rows)
			r.MSENearest, r.MSEAfter = &b, &a
		}
		t.tr.Rounding = r
	}
	return nil
}

// adjacentBySource moves each target right after the first one reading the
// same input the same way (q, k and v after one norm), keeping graph order
// otherwise; their input is computed before the first of them, so sequential
// rounding is not affected.
func adjacentBySource(ts []*roundTarget) []*roundTarget {
	var keys []string
	by := map[string][]*roundTarget{}
	for _, t := range ts {
		k := t.subs[0].src.key()
		if by[k] == nil {
			keys = append(keys, k)
		}
		by[k] = append(by[k], t)
	}
	out := make([]*roundTarget, 0, len(ts))
	for _, k := range keys {
		out = append(out, by[k]...)
	}
	return out
}

// awqGroups splits a batch into jobs: AWQ MatMul/Gemm layers reading the
// same input share one job (one per-input-channel scale for all of them, as
// the fold into their common producer requires); every other target is its
// own job.
func awqGroups(batch []*roundTarget) [][]*roundTarget {
	var jobs [][]*roundTarget
	at := map[string]int{}
	for _, t := range batch {
		if t.algo == "awq" && len(t.subs) == 1 && t.node.OpType != "Conv" {
			k := fmt.Sprint(t.subs[0].src.key(), t.clip)
			if i, ok := at[k]; ok {
				jobs[i] = append(jobs[i], t)
				continue
			}
			at[k] = len(jobs)
		}
		jobs = append(jobs, []*roundTarget{t})
	}
	return jobs
}

// runAlgo runs algo on l; with clip (--weight-range mse) and awq, AWQ
// chooses the input scales s without its own clipping search, and the mse
// clipping search (on the inputs divided by s) chooses the scaled layer's
// grid, rounded to nearest. Other algorithms' clip is run before (runTarget).
func runAlgo(algo string, clip bool, l *wround.Layer, in *wround.Inputs, o wround.Options) (*wround.Result, error) {
	if algo != "awq" || !clip || l.Pinned {
		return wround.Run(algo, l, in, o)
	}
	o.AWQClip = false
	res, err := wround.Run("awq", l, in, o)
	if err != nil {
		return nil, err
	}
	scaled := in
	if s := res.InputScale; s != nil {
		k := l.K
		scaled = &wround.Inputs{M: in.M}
		if in.H != nil {
			scaled.H = make([]float64, len(in.H))
			for i := range k {
				for j := range k {
					scaled.H[i*k+j] = in.H[i*k+j] / (float64(s[i]) * float64(s[j]))
				}
			}
		}
		if in.X != nil {
			scaled.X = make([]float32, len(in.X))
			for i, v := range in.X {
				scaled.X[i] = v / s[i%k]
			}
		}
	}
	m, err := wround.Run("mse", l, scaled, o)
	if err != nil {
		return nil, err
	}
	return &wround.Result{Codes: m.Codes, InputScale: res.InputScale}, nil
}

// runShared runs one algorithm on the rows of several weights reading the
// same input, as one layer, and hands each weight its rows back.
func runShared(ts []*roundTarget, opt Options, out map[string][]float32, rep *Report, f *awqFold) error {
	start := time.Now()
	first := ts[0].subs[0].layer
	var names []string
	all := &wround.Layer{K: first.K, QMin: first.QMin, QMax: first.QMax, Group: first.Group, Symmetric: first.Symmetric}
	for _, t := range ts {
		l := t.subs[0].layer
		names = append(names, strconv.Quote(t.weight))
		if l.PerTensor || l.Group != first.Group || l.QMin != first.QMin || l.QMax != first.QMax || l.Symmetric != first.Symmetric {
			return fmt.Errorf("weights %s read one input and must share awq's input scales, but their grids differ (types, granularity or block size): give them the same", strings.Join(names, ", "))
		}
		all.W = append(all.W, l.W...)
		all.Scale = append(all.Scale, l.Scale...)
		all.Zero = append(all.Zero, l.Zero...)
		all.N += l.N
		all.Pinned = all.Pinned || l.Pinned
	}
	if unseen(ts[0].subs[0].src) {
		for _, t := range ts {
			if err := runTarget(t, opt, out, rep, f); err != nil {
				return err
			}
		}
		return nil
	}
	in := ts[0].subs[0].src.stats.inputs()
	before := hessianMSE(all, all.W, all.RTN(), in.H, nil)
	w0 := slices.Clone(all.W) // awq scales all.W in place
	res, err := runAlgo(ts[0].algo, ts[0].clip, all, in, opt.Rounding)
	if err != nil {
		return fmt.Errorf("weights %s: %s: %v", strings.Join(names, ", "), ts[0].algo, err)
	}
	after := hessianMSE(all, w0, res.Codes, in.H, res.InputScale)
	row, prow := 0, 0
	for _, t := range ts {
		s := t.subs[0]
		l := s.layer
		if !all.Pinned {
			copy(l.Scale, all.Scale[prow:])
			copy(l.Zero, all.Zero[prow:])
		}
		copy(l.W, all.W[row*l.K:]) // the scaled weights, when awq scaled them
		writeBack(t, s, res.Codes[row*l.K:(row+l.N)*l.K], out)
		row, prow = row+l.N, prow+len(l.Scale)
		if t.tr != nil {
			b, a := before, after
			algo := t.algo
			if t.clip {
				algo += "+mse"
			}
			t.tr.Rounding = &RoundingReport{Algorithm: algo, Seconds: time.Since(start).Seconds(), MSENearest: &b, MSEAfter: &a}
		}
	}
	if res.InputScale != nil {
		if f == nil {
			return fmt.Errorf("weights %s: awq chose input scales for %q that cannot be folded here", strings.Join(names, ", "), ts[0].node.Input(0).Name)
		}
		return f.apply(ts, res.InputScale)
	}
	return nil
}

// unseen reports a source whose statistics were collected and saw no row.
func unseen(s *rowSource) bool { return s.stats != nil && s.stats.count == 0 }

// writeBack puts one layer's codes into out (as the float values they stand
// for) and its grid into the weight's encoding.
func writeBack(t *roundTarget, s *roundSub, codes []int32, out map[string][]float32) {
	w := out[t.weight]
	if w == nil {
		w = slices.Clone(t.node.Input(1).Const.Float32s())
		out[t.weight] = w
	}
	l := s.layer
	for r := range l.N {
		for k := range l.K {
			w[s.index(r, k)] = l.Dequantize(r, k, codes[r*l.K+k])
		}
	}
	if l.Pinned {
		return
	}
	for r := range l.N {
		for k := 0; k < l.K; k += max(l.Group, 1) {
			p := s.param(r, k)
			t.enc.Scale[p], t.enc.ZeroPoint[p] = l.Scale[l.Param(r, k)], int64(l.Zero[l.Param(r, k)])
		}
		if l.PerTensor {
			break
		}
	}
}

// hessianMSE is the output MSE of codes q against the weights w over every
// input row, from H = mean x x^T: mean over rows and outputs of (x.d)^2 =
// d^T H d per output. With AWQ's input scales s, the codes stand for
// weights times s (the input is divided by s): the error is q/s - w.
func hessianMSE(l *wround.Layer, w []float32, q []int32, h []float64, s []float32) float64 {
	v := l.Dequantized(q)
	if s != nil {
		for i := range v {
			v[i] /= s[i%l.K]
		}
	}
	return valuesMSE(l.N, l.K, w, v, h)
}

// valuesMSE is hessianMSE for weights v standing in for w (both N x K).
func valuesMSE(n, k int, w, v []float32, h []float64) float64 {
	var sum float64
	d := make([]float64, k)
	for r := range n {
		for c := range k {
			d[c] = float64(v[r*k+c]) - float64(w[r*k+c])
		}
		for i := range k {
			if d[i] == 0 {
				continue
			}
			var s float64
			for j, hv := range h[i*k : (i+1)*k] {
				s += hv * d[j]
			}
			sum += d[i] * s
		}
	}
	return sum / float64(n)
}

// RoundingSummary is one line on the weight rounding engine's work: per
// algorithm, the weights it chose, their output MSE summed over layers with
// nearest rounding and with the algorithm, and the time. Empty when it did
// nothing.
func RoundingSummary(rep *Report) string {
	type sum struct {
		n             int
		before, after float64
		haveMSE       bool
		seconds       float64
	}
	var algos []string
	by := map[string]*sum{}
	for _, t := range rep.Tensors {
		r := t.Rounding
		if r == nil {
			continue
		}
		s := by[r.Algorithm]
		if s == nil {
			s = &sum{}
			by[r.Algorithm] = s
			algos = append(algos, r.Algorithm)
		}
		s.n++
		s.seconds += r.Seconds
		if r.MSENearest != nil {
			s.before += *r.MSENearest
			s.after += *r.MSEAfter
			s.haveMSE = true
		}
	}
	var parts []string
	for _, a := range algos {
		s := by[a]
		p := fmt.Sprintf("%s on %d weights", a, s.n)
		if s.haveMSE {
			p += fmt.Sprintf(", output MSE %.3g -> %.3g (summed over layers)", s.before, s.after)
		}
		parts = append(parts, p+fmt.Sprintf(", %.2f s", s.seconds))
	}
	return strings.Join(parts, "; ")
}

// awqFold puts AWQ's input scales into the graph as they are chosen: the
// readers' weights become W diag(s) (the very float32 products wround
// quantized, which apply checks) and their input is divided by s, folded
// into its producer by passes.MigrateInputScaleWith, or a Mul inserted
// where no producer can take it. A MatMul/Gemm producer's weight may be
// quantized already: its grid is per output channel (per-tensor grids veto
// the fold), so dividing the channel's scales with its weights keeps its
// codes. Later layers' statistics are collected on the folded graph.
type awqFold struct {
	g         *graph.Graph
	weights   map[string]*passes.Encoding
	out, orig map[string][]float32 // rounded weights, and sequential's saved floats
	state     *passes.State
	change    *passes.Change
	inserted  []string
	pinned    map[string]bool // weights whose encodings the overrides pin
}

func (f *awqFold) apply(ts []*roundTarget, s []float32) error {
	input := ts[0].node.Input(0)
	readers := make([]*graph.Node, len(ts))
	for i, t := range ts {
		readers[i] = t.node
	}
	var mig passes.Migration
	var err error
	if ts[0].node.OpType == "Conv" {
		// One scale per input channel, repeated over its taps in s.
		taps := max(1, ts[0].subs[0].layer.Taps)
		sc := make([]float32, len(s)/taps)
		for c := range sc {
			sc[c] = s[c*taps]
		}
		s = sc
		mig, err = passes.MigrateConvInputScale(f.g, input, readers, s, f.canFold)
	} else {
		mig, err = passes.MigrateInputScaleWith(f.g, input, readers, s, f.canFold)
	}
	if err != nil {
		return fmt.Errorf("awq: %v", err)
	}
	for _, t := range ts {
		sub, l := t.subs[0], t.subs[0].layer
		w := t.node.Input(1).Const.Float32s()
		for r := range l.N {
			for k := range l.K {
				if a, b := w[sub.index(r, k)], l.W[r*l.K+k]; a != b {
					return fmt.Errorf("weight %q: awq quantized %v at (%d, %d), the folded graph holds %v", t.weight, b, r, k, a)
				}
			}
		}
	}
	for _, p := range mig.Producers {
		f.divideOutputs(p, s)
	}
	for _, name := range mig.Changed {
		f.state.Changed[name] = true
	}
	if mig.Inserted != nil {
		f.inserted = append(f.inserted, mig.Inserted.Name)
	}
	f.change.Count++
	for _, n := range readers {
		f.change.Nodes = append(f.change.Nodes, n.Name)
	}
	f.change.Notes = append(f.change.Notes, fmt.Sprintf("%q: input scales in [%.3g, %.3g]; %s", input.Name, slices.Min(s), slices.Max(s), mig.How))
	return nil
}

// canFold says whether a fold may divide the output channels of a MatMul,
// Gemm or Conv p: not through a Gemm bias (it is planned by name, and the
// fold replaces it; a Conv's is divided in place), not into a shared
// quantized weight (the fold's private copy would have no encoding), not
// into a grid the overrides pin or one that is per tensor.
func (f *awqFold) canFold(p *graph.Node) bool {
	w := p.Input(1)
	if b := p.Input(2); b != nil && (p.OpType == "Gemm" || len(b.Consumers) > 1) {
		return false
	}
	enc := f.weights[w.Name]
	if enc == nil {
		return true
	}
	if len(w.Consumers) > 1 || f.pinned[w.Name] {
		return false
	}
	_, ok := outChannels(enc, w.Const.Shape, outChannelOf(p))
	return ok
}

// divideOutputs divides output channel n of p's weight encoding, and of its
// rounded (and saved) values, by s_n, as the fold did to its float weights.
func (f *awqFold) divideOutputs(p *graph.Node, s []float32) {
	w := p.Input(1)
	enc := f.weights[w.Name]
	if enc == nil {
		return
	}
	ch := outChannelOf(p)
	chOf, _ := outChannels(enc, w.Const.Shape, ch)
	for i, n := range chOf {
		enc.Scale[i] /= s[n]
	}
	for _, m := range []map[string][]float32{f.out, f.orig} {
		v := m[w.Name]
		for i := range v {
			v[i] /= s[ch(i)]
		}
	}
}

// outChannelOf maps a flat index of a MatMul, Gemm or Conv weight to its
// output channel.
func outChannelOf(n *graph.Node) func(i int) int {
	shape := n.Input(1).Const.Shape
	per := graph.Numel(shape[1:])
	tb, _ := n.AttrInt("transB", 0)
	switch {
	case n.OpType == "Conv" || n.OpType == "Gemm" && tb != 0:
		return func(i int) int { return i / per }
	}
	return func(i int) int { return i % per }
}

// outChannels maps each scale of a weight's encoding to the output channel
// (ch) it belongs to; false when one scale spans several.
func outChannels(enc *passes.Encoding, shape []int, ch func(int) int) ([]int, bool) {
	chOf := make([]int, len(enc.Scale))
	for i := range chOf {
		chOf[i] = -1
	}
	idx := enc.ScaleIndex(shape)
	for i := range graph.Numel(shape) {
		n := ch(i)
		p := idx(i)
		if chOf[p] >= 0 && chOf[p] != n {
			return nil, false
		}
		chOf[p] = n
	}
	return chOf, true
}
