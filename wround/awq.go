package wround

import (
	"fmt"
	"math"
	"runtime"

	"github.com/onnxq/onnxq/kernels/gemm"
)

// awqClipRatios are the shrink factors of a group's range that the clipping
// search tries (1 is the group's full range): down to 55% in steps of 5%, as
// AWQ's reference search (20 grid points, at most half the range shrunk).
var awqClipRatios = []float64{0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55}

// awq is activation-aware weight quantization (Lin et al. 2023, "AWQ:
// Activation-aware Weight Quantization for LLM Compression and
// Acceleration"). Weights that meet large inputs matter most; scaling input
// channel k's weight column up by s_k (and the input down by it, folded into
// the producer) gives those weights a finer grid relative to their size. The
// scales are s_k = AbsMean_k^alpha, divided by sqrt(max s * min s) so they
// centre on 1 (AbsMean below 1e-4 counts as 1e-4), with alpha the best of
// AWQGrid points spread evenly over [0, 1] (both ends included; the
// reference steps 0, 0.05, ..., 0.95) by the layer's output error
// ||X W^T - X diag(1/s) Q(W diag(s))^T||^2 on the sampled rows (or on all
// calibration rows through Inputs.H, when the engine collected it). For each
// alpha the group scales and zero points are refitted to the scaled weights
// the way the layer's own were fitted (see gridFit; l.Symmetric is kept).
// With AWQClip, each group's range is then shrunk by the ratio (1, 0.95,
// ..., 0.55) that gives the least output error, group after group, each
// choice seeing the ones before it (the reference judges groups alone).
//
// What is left in l (written in place): W is the scaled weights W diag(s),
// Scale and Zero their grid, and Result.Codes are codes of W diag(s) on it;
// Result.InputScale is s per k (one value repeated over a Conv channel's
// Taps), which the caller must divide the layer's input by (fold into the
// producer) for the float model to stay the same. InputScale is nil when the search kept s = 1
// (alpha = 0), and then W is unchanged (Scale and Zero may still be
// clipped).
//
// Names elsewhere: the reference implementation's auto_scale (the alpha
// search) and auto_clip (the clipping search); msModelSlim's AWQ (one of
// its outlier-suppression algorithms, for W4A16/W8A16); ModelOpt's INT4 AWQ
// (int4_awq); ONNX Runtime's AWQ for MatMulNBits. All of them fold 1/s into
// the producer (a norm or the previous linear layer), as SmoothQuant does.
//
// With l.Pinned the grid is the user's and describes the unscaled weights: no
// scale and no clipping can be chosen, so awq returns nearest rounding, with
// InputScale nil and l unchanged.
func awq(l *Layer, in *Inputs, o Options) (*Result, error) {
	if in == nil || len(in.H) != l.K*l.K {
		if err := checkRows("awq", l, in); err != nil {
			return nil, err
		}
	}
	if len(in.AbsMean) != l.K {
		return nil, fmt.Errorf("awq: %d input means for K=%d (the engine collects them: see NeedsOf)", len(in.AbsMean), l.K)
	}
	for k, a := range in.AbsMean {
		if !(a >= 0) || math.IsInf(a, 0) {
			return nil, fmt.Errorf("awq: input mean |x| of column %d is %v", k, a)
		}
	}
	if o.AWQGrid < 1 {
		return nil, fmt.Errorf("awq: %d alpha grid points (want at least 1; the reference uses 20)", o.AWQGrid)
	}
	if l.Pinned {
		return &Result{Codes: l.RTN()}, nil
	}
	taps := max(1, l.Taps)
	n, k := l.N, l.K
	fit := newGridFit(l)
	meter := newErrorMeter(in, k)

	// The channels' mean |x|, shared by their taps.
	chMean := make([]float64, k/taps)
	for c := range chMean {
		for t := range taps {
			chMean[c] += in.AbsMean[c*taps+t]
		}
		chMean[c] /= float64(taps)
	}

	w0 := l.W
	d := make([]float32, n*k)
	var best struct {
		err   float64
		s     []float32
		scale []float32
		zero  []int32
		codes []int32
	}
	best.err = math.Inf(1)
	for i := range o.AWQGrid {
		alpha := 0.0
		if o.AWQGrid > 1 {
			alpha = float64(i) / float64(o.AWQGrid-1)
		}
		s := awqScales(chMean, alpha, taps)
		cand := *l
		cand.W = w0
		if s != nil {
			cand.W = make([]float32, n*k)
			for j := range cand.W {
				cand.W[j] = w0[j] * s[j%k]
			}
			cand.Scale, cand.Zero = fit.refit(cand.W, 1)
		}
		codes := cand.RTN()
		// The error in the original space: Q(W s)/s - W.
		for j, q := range codes {
			r, c := j/k, j%k
			v := cand.Dequantize(r, c, q)
			if s != nil {
				v /= s[c]
			}
			d[j] = v - w0[j]
		}
		if e := meter.sse(d, n); e < best.err {
			best.err, best.s, best.scale, best.zero, best.codes = e, s, cand.Scale, cand.Zero, codes
			if s != nil {
				best.scale, best.zero = append([]float32(nil), cand.Scale...), append([]int32(nil), cand.Zero...)
			}
		}
	}
	if best.s != nil { // in place: callers may hold the slices
		for j := range w0 {
			w0[j] *= best.s[j%k]
		}
		copy(l.Scale, best.scale)
		copy(l.Zero, best.zero)
	}
	codes := best.codes
	if o.AWQClip {
		codes = awqClip(l, fit, meter.gram(best.s), codes, meter.threads)
	}
	return &Result{Codes: codes, InputScale: best.s}, nil
}

// awqScales are the per-k input scales for one alpha, or nil for alpha 0
// (all ones).
func awqScales(chMean []float64, alpha float64, taps int) []float32 {
	if alpha == 0 {
		return nil
	}
	sc := make([]float64, len(chMean))
	lo, hi := math.Inf(1), math.Inf(-1)
	for c, m := range chMean {
		sc[c] = math.Pow(max(m, 1e-4), alpha)
		lo, hi = min(lo, sc[c]), max(hi, sc[c])
	}
	norm := math.Sqrt(lo * hi)
	s := make([]float32, len(chMean)*taps)
	for c := range chMean {
		for t := range taps {
			s[c*taps+t] = float32(sc[c] / norm)
		}
	}
	return s
}

// awqClip shrinks each group's range by the ratio that lowers the layer's
// output error most, and returns the codes on the new grid (l.Scale and
// l.Zero are updated). h is the Gram matrix (K x K) of the inputs as the
// scaled weights see them. For output row n the error is d^T H d with d its
// dequantized-minus-float weights; changing group g's part by delta changes
// it by 2 delta.(H d)_g + delta^T H_gg delta. The groups are taken in order,
// for all rows at once, each choice seeing the ones before it: H D^T is
// formed once and updated by the chosen changes, all products on
// kernels/gemm.
func awqClip(l *Layer, fit *gridFit, h []float32, codes []int32, threads int) []int32 {
	n, k := l.N, l.K
	d := make([]float32, n*k)
	for i, q := range codes {
		d[i] = l.Dequantize(i/k, i%k, q) - l.W[i]
	}
	if l.PerTensor {
		return awqClipTensor(l, fit, h, codes, d, threads)
	}
	hd := make([]float32, n*k) // row r: H d_r
	gemm.Sgemm(n, k, k, 1, gemm.Matrix{Data: d, Stride: k}, gemm.Matrix{Data: h, Stride: k}, 0, hd, k, threads)
	groups, gs := l.Groups(), l.Group
	delta := make([]float32, n*gs)  // one ratio's change, all rows
	quad := make([]float32, n*gs)   // delta H_gg
	chosen := make([]float32, n*gs) // the best change per row (0: none)
	cand := make([]int32, n*gs)
	best := make([]int32, n*gs)
	gain := make([]float64, n)
	bestScale, bestZero := make([]float32, n), make([]int32, n)
	lo, hi := make([]float64, n), make([]float64, n)
	for g := range groups {
		c0, c1 := g*gs, min(k, (g+1)*gs)
		w := c1 - c0
		for r := range n {
			lo[r], hi[r] = groupRange(l.W[r*k+c0 : r*k+c1])
			gain[r] = 0
		}
		clear(chosen)
		for _, ratio := range awqClipRatios {
			var sc []float32
			var zs []int32
			for r := range n {
				s, z := fit.fit(r*groups+g, lo[r]*ratio, hi[r]*ratio)
				sc, zs = append(sc, s), append(zs, z)
				for c := c0; c < c1; c++ {
					q := Nearest(l.W[r*k+c], s, z, l.QMin, l.QMax)
					cand[r*w+c-c0] = q
					delta[r*w+c-c0] = float32(q-z)*s - l.W[r*k+c] - d[r*k+c]
				}
			}
			gemm.Sgemm(n, w, w, 1, gemm.Matrix{Data: delta, Stride: w}, gemm.Matrix{Data: h[c0*k+c0:], Stride: k}, 0, quad, w, threads)
			for r := range n {
				var e float64
				for j := range w {
					e += float64(delta[r*w+j]) * (2*float64(hd[r*k+c0+j]) + float64(quad[r*w+j]))
				}
				if e < gain[r] {
					gain[r], bestScale[r], bestZero[r] = e, sc[r], zs[r]
					copy(best[r*w:(r+1)*w], cand[r*w:(r+1)*w])
					copy(chosen[r*w:(r+1)*w], delta[r*w:(r+1)*w])
				}
			}
		}
		for r := range n {
			if gain[r] == 0 {
				continue
			}
			p := r*groups + g
			l.Scale[p], l.Zero[p] = bestScale[r], bestZero[r]
			for c := c0; c < c1; c++ {
				codes[r*k+c] = best[r*w+c-c0]
				d[r*k+c] = float32(codes[r*k+c]-bestZero[r])*bestScale[r] - l.W[r*k+c]
			}
		}
		// H d_r += H[:, g] chosen_r (H is symmetric: rows c0..c1 of H).
		gemm.Sgemm(n, k, w, 1, gemm.Matrix{Data: chosen, Stride: w}, gemm.Matrix{Data: h[c0*k:], Stride: k}, 1, hd, k, threads)
	}
	return codes
}

// awqClipTensor is the clipping search for a per-tensor grid: one range for
// all rows, judged by the whole output error.
func awqClipTensor(l *Layer, fit *gridFit, h []float32, codes []int32, d []float32, threads int) []int32 {
	n, k := l.N, l.K
	lo, hi := groupRange(l.W)
	best := quadSum(d, h, n, k, threads)
	q := make([]int32, n*k)
	for _, ratio := range awqClipRatios {
		sc, z := fit.fit(0, lo*ratio, hi*ratio)
		for i, v := range l.W {
			q[i] = Nearest(v, sc, z, l.QMin, l.QMax)
			d[i] = float32(q[i]-z)*sc - v
		}
		if e := quadSum(d, h, n, k, threads); e < best {
			best, l.Scale[0], l.Zero[0] = e, sc, z
			copy(codes, q)
		}
	}
	return codes
}

// quadSum is sum_n d_n^T H d_n for the rows d_n of d (N x K).
func quadSum(d, h []float32, n, k, threads int) float64 {
	dh := make([]float32, n*k)
	gemm.Sgemm(n, k, k, 1, gemm.Matrix{Data: d, Stride: k}, gemm.Matrix{Data: h, Stride: k}, 0, dh, k, threads)
	var total float64
	for i, v := range dh {
		total += float64(v) * float64(d[i])
	}
	return total
}

func groupRange(w []float32) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range w {
		lo, hi = min(lo, float64(v)), max(hi, float64(v))
	}
	return lo, hi
}

// gridFit refits a layer's scales and zero points to new weight ranges the
// way the layer's own were fitted: the converter's min-max rule (FitRange,
// symmetric when the layer is), times each group's own ratio of its given
// scale to that rule's scale for the original weights, which carries over a
// reduced range or any other constant factor the caller applied.
type gridFit struct {
	l      *Layer
	one    Layer // a one-group scratch layer for FitRange
	factor []float64
}

func newGridFit(l *Layer) *gridFit {
	f := &gridFit{l: l, factor: make([]float64, len(l.Scale))}
	f.one = Layer{QMin: l.QMin, QMax: l.QMax, Symmetric: l.Symmetric, Scale: make([]float32, 1), Zero: make([]int32, 1)}
	lo, hi := l.paramRanges(l.W)
	for p := range f.factor {
		f.one.FitRange(0, lo[p], hi[p])
		f.factor[p] = float64(l.Scale[p]) / float64(f.one.Scale[0])
	}
	return f
}

// fit is group p's scale and zero point for weights spanning [lo, hi].
func (f *gridFit) fit(p int, lo, hi float64) (float32, int32) {
	f.one.FitRange(0, lo, hi)
	s, z := f.one.Scale[0], f.one.Zero[0]
	if f.factor[p] == 1 {
		return s, z
	}
	scale := float32(float64(s) * f.factor[p])
	if !(scale > 0) || math.IsInf(float64(scale), 0) {
		return s, z
	}
	if !f.l.Symmetric { // the zero point for the scale in use
		zf := math.RoundToEven(float64(f.l.QMin) - min(lo, 0)/float64(scale))
		z = int32(max(float64(f.l.QMin), min(float64(f.l.QMax), zf)))
	}
	return scale, z
}

// refit is a whole grid for weights w (laid out as l.W), each group's range
// shrunk by ratio.
func (f *gridFit) refit(w []float32, ratio float64) ([]float32, []int32) {
	lo, hi := f.l.paramRanges(w)
	scale, zero := make([]float32, len(lo)), make([]int32, len(lo))
	for p := range lo {
		scale[p], zero[p] = f.fit(p, lo[p]*ratio, hi[p]*ratio)
	}
	return scale, zero
}

// paramRanges are the min and max of w over each scale group.
func (l *Layer) paramRanges(w []float32) (lo, hi []float64) {
	np := 1
	if !l.PerTensor {
		np = l.N * l.Groups()
	}
	lo, hi = make([]float64, np), make([]float64, np)
	for p := range lo {
		lo[p], hi[p] = math.Inf(1), math.Inf(-1)
	}
	for r := range l.N {
		for c := range l.K {
			p, v := l.Param(r, c), float64(w[r*l.K+c])
			lo[p], hi[p] = min(lo[p], v), max(hi[p], v)
		}
	}
	return lo, hi
}

// errorMeter measures sum_n ||X d_n||^2 for weight differences d (N x K):
// through the Gram matrix when it is cheaper (K at most the row count) or
// when the engine collected H (the mean x x^T over every calibration row,
// not only the sampled ones), else through X d^T on the sampled rows.
type errorMeter struct {
	x       []float32
	m, k    int
	h       []float32 // the Gram matrix, when used
	threads int
}

func newErrorMeter(in *Inputs, k int) *errorMeter {
	e := &errorMeter{k: k, threads: runtime.GOMAXPROCS(0)}
	switch {
	case len(in.H) == k*k:
		e.h = make([]float32, k*k)
		for i, v := range in.H {
			e.h[i] = float32(v)
		}
	case k <= in.M:
		e.h = e.rowsGram(in.X[:in.M*k], in.M)
	default:
		e.x, e.m = in.X[:in.M*k], in.M
	}
	return e
}

func (e *errorMeter) rowsGram(x []float32, m int) []float32 {
	h := make([]float32, e.k*e.k)
	gemm.Sgemm(e.k, e.k, m, 1, gemm.Matrix{Data: x, Stride: e.k, Trans: true}, gemm.Matrix{Data: x, Stride: e.k}, 0, h, e.k, e.threads)
	return h
}

func (e *errorMeter) sse(d []float32, n int) float64 {
	if e.h != nil {
		return quadSum(d, e.h, n, e.k, e.threads)
	}
	out := make([]float32, e.m*n)
	gemm.Sgemm(e.m, n, e.k, 1, gemm.Matrix{Data: e.x, Stride: e.k}, gemm.Matrix{Data: d, Stride: e.k, Trans: true}, 0, out, n, e.threads)
	var total float64
	for _, v := range out {
		total += float64(v) * float64(v)
	}
	return total
}

// gram is the Gram matrix (K x K) of the inputs divided by s, the inputs
// the scaled weights see (s nil: unscaled). Without H and with more columns
// than rows it is formed here, for the clipping search only.
func (e *errorMeter) gram(s []float32) []float32 {
	k := e.k
	var h []float32
	if e.h != nil {
		h = append([]float32(nil), e.h...)
	} else {
		h = e.rowsGram(e.x, e.m)
	}
	if s != nil {
		for i := range k {
			for j := range k {
				h[i*k+j] /= s[i] * s[j]
			}
		}
	}
	return h
}
