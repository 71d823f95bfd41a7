package converter

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/passes"
)

// SmoothQuant (Xiao et al. 2023): per input channel j of a MatMul/Gemm,
// s_j = max|X_j|^alpha / max|W_j|^(1-alpha) moves the activation's outlier
// channels into the weights, which per-channel weight quantization absorbs
// far better than per-tensor activation quantization does. max|X_j| comes
// from one pass over the calibration samples (K values per tensor kept),
// max|W_j| from the weights of every layer reading X (they share one s);
// passes.MigrateInputScale does the exact float rewrite.

// smoothTarget is a tensor read by the layers to smooth, with their alpha.
type smoothTarget struct {
	input   *graph.Value
	readers []*graph.Node
	alpha   float64
	src     string // the overrides entry that set alpha, "" for the command line
	// auto: alpha from Options.SmoothQuantDefault, which smooths only where
	// 1/s folds upstream (an inserted Mul would change the graph's shape).
	auto     bool
	estimate string // the default's choice, for the report
}

// smoothTargets resolves each MatMul/Gemm's alpha (overrides rule, else
// opt.SmoothQuant) and groups the layers by the tensor they read. Readers
// of one tensor share one scale, so their alphas must agree.
func smoothTargets(g *graph.Graph, opt Options) ([]*smoothTarget, error) {
	var out []*smoothTarget
	byInput := map[*graph.Value]*smoothTarget{}
	for _, n := range g.Nodes {
		if n.OpType != "MatMul" && n.OpType != "Gemm" {
			continue
		}
		x := n.Input(0)
		if x == nil || !slices.Contains(passes.WeightReaders(g, x), n) {
			continue
		}
		alpha, src, auto := opt.SmoothQuant, "", false
		if alpha == 0 && defaultSmoothing(n, opt) {
			alpha, auto = 0.5, true
		}
		a, s, ok, err := opt.Overrides.SmoothQuantOf(n.Name, n.OpType)
		if err != nil {
			return nil, fmt.Errorf("overrides: %v", err)
		}
		if ok {
			alpha, src, auto = a, s, false
		}
		if alpha == 0 {
			continue
		}
		if _, skipped := opt.Overrides.Skipped(n.Name, n.OpType); skipped {
			continue
		}
		t := byInput[x]
		if t == nil {
			t = &smoothTarget{input: x, alpha: alpha, src: src, auto: auto}
			byInput[x] = t
			out = append(out, t)
		} else if t.alpha != alpha {
			return nil, fmt.Errorf("smooth quant: %s and %s read the same tensor %q with alphas %v and %v; one scale serves every reader of a tensor, give them the same alpha", t.readers[0], n, x.Name, t.alpha, alpha)
		}
		t.readers = append(t.readers, n)
		t.auto = t.auto && auto
	}
	// The default leaves a tensor alone where the fold is not possible.
	kept := out[:0]
	for _, t := range out {
		if !t.auto || passes.FoldsUpstream(g, t.input, t.readers) {
			kept = append(kept, t)
		}
	}
	return kept, nil
}

// defaultSmoothing reports whether Options.SmoothQuantDefault covers n.
func defaultSmoothing(n *graph.Node, opt Options) bool {
	if !opt.SmoothQuantDefault || n.OpType != "MatMul" || opt.Calib == "" || opt.WeightOnly {
		return false
	}
	act := opt.ActType
	if act == graph.Undefined || opt.Dynamic {
		act = graph.Uint8
	}
	if act.BitWidth() != 8 {
		return false
	}
	// A rule that types the input (by tensor, its producer or the
	// producer's op type) decides instead of the command line's type.
	x := n.Input(0)
	var nodes, ops []string
	if p := x.Producer; p != nil {
		nodes, ops = []string{p.Name}, []string{p.OpType}
	}
	if st, err := opt.Overrides.Activation(x.Name, nodes, ops); err == nil && st.DType != "" {
		dt, err := graph.ParseDataType(st.DType)
		return err == nil && dt.BitWidth() == 8
	}
	return true
}

// smoothStats are one tensor's per-channel statistics over the
// calibration samples (channels on its last axis).
type smoothStats struct {
	lo, hi []float32 // per channel min and max
	sumSq  []float64 // per channel sum of x^2
	rows   int64
}

// absMax is max|x| per channel: SmoothQuant's max|X_j|.
func (c *smoothStats) absMax() []float32 {
	out := make([]float32, len(c.hi))
	for j := range out {
		out[j] = max(c.hi[j], -c.lo[j])
		if c.hi[j] != c.hi[j] || c.lo[j] != c.lo[j] {
			out[j] = float32(math.NaN()) // SmoothScales then keeps s = 1
		}
	}
	return out
}

// collectSmoothStats runs the calibration samples once and returns, for each
// named tensor, the statistics of every channel of its last axis.
func collectSmoothStats(ctx context.Context, m *graph.Model, opt Options, names []string) (map[string]*smoothStats, int, error) {
	src, err := dataset.Open(opt.Calib, dataset.InputsOf(m), opt.Dataset)
	if err != nil {
		return nil, 0, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]*smoothStats{}
	var tapErr error
	s, err := kernels.NewSession(m, kernels.Options{Threads: opt.Threads, TapOnly: want, Tap: func(name string, t *graph.Tensor) {
		if t.DType != graph.Float || t.Rank() == 0 || tapErr != nil {
			return
		}
		k := t.Shape[t.Rank()-1]
		acc := out[name]
		if acc == nil {
			acc = &smoothStats{lo: make([]float32, k), hi: make([]float32, k), sumSq: make([]float64, k)}
			for j := range k {
				acc.lo[j], acc.hi[j] = float32(math.Inf(1)), float32(math.Inf(-1))
			}
			out[name] = acc
		} else if len(acc.hi) != k {
			tapErr = fmt.Errorf("smooth quant: tensor %q has %d channels in one sample, %d in another", name, len(acc.hi), k)
			return
		}
		for i, v := range t.Float32s() {
			j := i % k
			if v < acc.lo[j] || v != v {
				acc.lo[j] = v // NaN propagates
			}
			if v > acc.hi[j] || v != v {
				acc.hi[j] = v
			}
			acc.sumSq[j] += float64(v) * float64(v)
		}
		acc.rows += int64(t.Len() / k)
	}})
	if err != nil {
		return nil, 0, err
	}
	for i := 0; i < src.Len(); i++ {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		smp, err := src.Sample(i)
		if err != nil {
			return nil, 0, err
		}
		outs, err := s.Run(smp)
		if err != nil {
			return nil, 0, fmt.Errorf("smooth quant: calibration sample %d: %w", i, err)
		}
		s.Recycle(outs)
		if tapErr != nil {
			return nil, 0, tapErr
		}
	}
	return out, src.Len(), nil
}

// autoAlphas are the strengths the default tries per tensor.
var autoAlphas = []float64{0.3, 0.4, 0.5, 0.6, 0.7}

// w8a8Error estimates the output noise power of the layers reading a tensor
// when the tensor is quantized per tensor to 8 bits (uniform noise of
// variance step^2/12, the step from the min/max range of x/s) and each
// weight column per channel to int8 (symmetric, step max|s_j W_jn| / 127):
//
//	step_x^2/12 * sum_jn (s_j W_jn)^2  +  sum_n step_n^2/12 * sum_j E[x_j^2]/s_j^2
//
// s nil is no smoothing. It is the quantity SmoothQuant trades: smaller
// activation steps for larger weight steps.
func w8a8Error(c *smoothStats, ws []*graph.Node, s []float32) float64 {
	k := len(c.hi)
	sj := func(j int) float64 {
		if s == nil {
			return 1
		}
		return float64(s[j])
	}
	lo, hi := 0.0, 0.0
	for j := range k {
		lo, hi = min(lo, float64(c.lo[j])/sj(j)), max(hi, float64(c.hi[j])/sj(j))
	}
	stepX := (hi - lo) / 255
	var xPow float64 // sum_j E[x_j^2] / s_j^2, the same for every reader
	for j := range k {
		xPow += c.sumSq[j] / float64(max(c.rows, 1)) / (sj(j) * sj(j))
	}
	var wPow, wNoise float64
	for _, n := range ws {
		w := n.Input(1).Const
		vals, rows, cols := w.Float32s(), w.Shape[0], w.Shape[1]
		trans := passes.GemmTransB(n)
		outs := cols
		if trans {
			outs = rows
		}
		colMax := make([]float64, outs)
		for r := range rows {
			for q := range cols {
				j, o := r, q
				if trans {
					j, o = q, r
				}
				v := float64(vals[r*cols+q]) * sj(j)
				wPow += v * v
				colMax[o] = max(colMax[o], math.Abs(v))
			}
		}
		for _, m := range colMax {
			step := m / 127
			wNoise += step * step / 12 * xPow
		}
	}
	return stepX*stepX/12*wPow + wNoise
}

// smoothQuant migrates each target's scales and returns the report's change
// and how many calibration samples it ran;
// tensors whose values change on purpose (folded norms' outputs) go into
// st.Changed so a layerwise compare against the original model skips them.
func smoothQuant(ctx context.Context, m *graph.Model, opt Options, st *passes.State) (*passes.Change, int, error) {
	g := m.Graph
	if !(opt.SmoothQuant >= 0 && opt.SmoothQuant <= 1) {
		return nil, 0, fmt.Errorf("smooth quant: alpha %v is not in [0, 1]", opt.SmoothQuant)
	}
	targets, err := smoothTargets(g, opt)
	if err != nil || len(targets) == 0 {
		return nil, 0, err
	}
	if opt.Calib == "" {
		return nil, 0, fmt.Errorf("smooth quant needs calibration data (--calib): its scales come from the activations' per-channel ranges")
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.input.Name
	}
	xMax, samples, err := collectSmoothStats(ctx, m, opt, names)
	if err != nil {
		return nil, 0, err
	}
	ch := &passes.Change{Pass: "smooth-quant", MaxRelDiff: -1}
	// Every scale from the weights as they were: a fold into a layer's
	// output channels (SwiGLU's up_proj) must not move another tensor's s.
	scales := make([][]float32, len(targets))
	for i, t := range targets {
		x := xMax[t.input.Name].absMax()
		wMax, err := passes.InputChannelMax(g, t.input, t.readers)
		if err != nil {
			return nil, 0, fmt.Errorf("smooth quant: %v", err)
		}
		if len(x) != len(wMax) {
			ch.Notes = append(ch.Notes, fmt.Sprintf("%q left alone: %d activation channels on its last axis, the weights have %d input channels", t.input.Name, len(x), len(wMax)))
			continue
		}
		if !t.auto {
			if scales[i], err = passes.SmoothScales(x, wMax, t.alpha); err != nil {
				return nil, 0, fmt.Errorf("smooth quant: tensor %q: %v", t.input.Name, err)
			}
			continue
		}
		// The default picks, per tensor, the strength (or none) with the
		// lowest estimated W8A8 output noise: a model without activation
		// outliers (PaddleOCR rec's SVTR blocks) is left as it is.
		c := xMax[t.input.Name]
		best := w8a8Error(c, t.readers, nil)
		none := best
		for _, a := range autoAlphas {
			cand, err := passes.SmoothScales(x, wMax, a)
			if err != nil {
				return nil, 0, fmt.Errorf("smooth quant: tensor %q: %v", t.input.Name, err)
			}
			if e := w8a8Error(c, t.readers, cand); e < best {
				best, scales[i], t.alpha = e, cand, a
			}
		}
		if scales[i] == nil {
			ch.Notes = append(ch.Notes, fmt.Sprintf("%q left alone: smoothing would not lower its estimated W8A8 noise (default for 8-bit MatMul inputs)", t.input.Name))
		} else {
			t.estimate = fmt.Sprintf(", estimated W8A8 output noise %.3g -> %.3g", none, best)
		}
	}
	for i, t := range targets {
		s := scales[i]
		if s == nil {
			continue
		}
		x := xMax[t.input.Name].absMax()
		before, after := outlierRatio(x, nil), outlierRatio(x, s)
		mig, err := passes.MigrateInputScaleOf(g, t.input, t.readers, s)
		if err != nil {
			return nil, 0, fmt.Errorf("smooth quant: %v", err)
		}
		for _, name := range mig.Changed {
			st.Changed[name] = true
		}
		ch.Count++
		for _, n := range t.readers {
			ch.Nodes = append(ch.Nodes, n.Name)
		}
		src := ""
		switch {
		case t.src != "":
			src = ", from overrides " + t.src
		case t.auto:
			src = ", default for 8-bit MatMul inputs where 1/s folds upstream" + t.estimate
		}
		ch.Notes = append(ch.Notes, fmt.Sprintf("%q (alpha %g%s): channel max/median of |x| %.3g -> %.3g; %s", t.input.Name, t.alpha, src, before, after, mig.How))
	}
	return ch, samples, nil
}

// outlierRatio is the largest per-channel max|x| (divided by s when given)
// over its median: how far the outlier channels stick out.
func outlierRatio(x, s []float32) float64 {
	v := make([]float64, len(x))
	for j := range x {
		v[j] = float64(x[j])
		if s != nil {
			v[j] /= float64(s[j])
		}
	}
	slices.Sort(v)
	if len(v) == 0 || v[len(v)/2] == 0 {
		return math.Inf(1)
	}
	return v[len(v)-1] / v[len(v)/2]
}
