package wround

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/onnxq/onnxq/kernels/gemm"
)

// The rectified sigmoid's stretch (Nagel et al. 2020, eq. 23): h(V) =
// clip(sigmoid(V)*(zeta-gamma)+gamma, 0, 1) reaches exactly 0 and 1 for finite
// V, so a weight can settle on a grid point and stop moving.
const (
	adaZeta  = 1.1
	adaGamma = -0.1
	// The regulariser's weight lambda and the share of steps run without it
	// (AIMET's reg_param and warm_start defaults).
	adaRegParam  = 0.01
	adaWarmStart = 0.2
	// Adam's moment decays and epsilon (the usual defaults, as AIMET's
	// torch.optim.Adam uses them).
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// adaround is AdaRound (Nagel et al. 2020, "Up or Down? Adaptive Rounding for
// Post-Training Quantization"): each weight is rounded down or up, chosen by
// minimising the layer's output error on the sampled input rows instead of by
// distance. Per weight a continuous V gives the soft rounding h(V) in [0, 1]
// (the rectified sigmoid, initialised so floor + h reproduces the float
// weight); the loss on a mini-batch of AdaRoundBatch rows is
//
//	sum_n ||x (W - W~)_n||^2 / rows + lambda * sum (1 - |2h-1|^beta)
//
// with W~ = scale * (floor(W/scale) + h) on the layer's grid, minimised by
// Adam. The regulariser is off for the first 20% of the steps, then beta
// falls linearly from AdaRoundBeta[0] to AdaRoundBeta[1], pushing every h to
// 0 or 1; the final code is floor + (h >= 0.5). Weights whose floor is
// outside the grid (clipped by the range) have no choice and keep the
// clamped code. Scale and Zero are the layer's and are never changed.
//
// The optimisation runs in float32 on kernels/gemm (see batches for the
// products a step costs); the batches are visited in a seeded order, so a
// seed gives the same codes.
//
// Names elsewhere: AIMET's Adaround.apply_adaround with AdaroundParameters
// (default_num_iterations 10000 = AdaRoundIters, default_beta_range (20, 2)
// = AdaRoundBeta, default_reg_param 0.01 and default_warm_start 0.2 = the
// constants above, Adam at 1e-3 = AdaRoundLR) and QNN's --algorithms
// adaround; AMCT's ADA algorithm (ada_quantize: the same rectified sigmoid
// with zeta 1.1, gamma -0.1 and annealed regulariser, on scales AMCT fits
// first). Like them this is layer-wise reconstruction of the layer's own
// output (no activation after it: AIMET optionally includes it). Adam moves
// V by about the learning rate per step and h saturates at |V| = 2.4, so at
// 2000 steps AIMET's 1e-3 can leave weights short of a decision: on the
// synthetic test layer it reaches 0.39 x nearest's output error against
// 0.18 at 1e-2, though on FastestDet's real layers both reach 0.19-0.45.
func adaround(l *Layer, in *Inputs, o Options) (*Result, error) {
	if err := checkRows("adaround", l, in); err != nil {
		return nil, err
	}
	switch {
	case o.AdaRoundIters < 0:
		return nil, fmt.Errorf("adaround: %d iterations (want 0 or more; the paper and AIMET use 10000)", o.AdaRoundIters)
	case o.AdaRoundBatch <= 0:
		return nil, fmt.Errorf("adaround: batch of %d rows (want at least 1)", o.AdaRoundBatch)
	case !(o.AdaRoundLR > 0) || math.IsInf(o.AdaRoundLR, 0):
		return nil, fmt.Errorf("adaround: learning rate %v (want a positive number, e.g. 0.001)", o.AdaRoundLR)
	case !(o.AdaRoundBeta[0] >= 1 && o.AdaRoundBeta[1] >= 1) || math.IsInf(o.AdaRoundBeta[0], 0) || math.IsInf(o.AdaRoundBeta[1], 0):
		return nil, fmt.Errorf("adaround: beta range %v (want both at least 1, e.g. 20 to 2)", o.AdaRoundBeta)
	}
	n, k, m := l.N, l.K, in.M
	b := min(o.AdaRoundBatch, m)
	nw := n * k

	// Per weight: its scale, its floor on the grid (code - zero point) when it
	// may go either way, or the fixed error of its clamped code when it may not.
	sc := make([]float32, nw)
	lo := make([]float32, nw)
	free := make([]bool, nw)
	d := make([]float32, nw) // W~ - W: fixed entries keep their value throughout
	v := make([]float32, nw)
	codes := make([]int32, nw)
	for r := range n {
		for c := range k {
			i := r*k + c
			p := l.Param(r, c)
			s, z := l.Scale[p], l.Zero[p]
			t := float64(l.W[i]) / float64(s)
			f := math.Floor(t)
			code := int64(f) + int64(z)
			sc[i] = s
			switch {
			case code >= int64(l.QMin) && code < int64(l.QMax):
				free[i] = true
				lo[i] = float32(f)
				codes[i] = int32(code)
				// sigmoid(V) = (frac - gamma) / (zeta - gamma): h(V) = frac.
				u := (t - f - adaGamma) / (adaZeta - adaGamma)
				v[i] = float32(math.Log(u / (1 - u)))
			default:
				codes[i] = int32(max(int64(l.QMin), min(int64(l.QMax), code)))
				d[i] = float32(codes[i]-z)*s - l.W[i]
			}
		}
	}

	grad := newBatches(in, k, b, o.Seed, k < 2*b)
	sig := make([]float32, nw)
	h := make([]float32, nw)
	g := make([]float32, nw)
	m1 := make([]float32, nw)
	m2 := make([]float32, nw)
	iters := o.AdaRoundIters
	warm := int(adaWarmStart * float64(iters))
	lr := float32(o.AdaRoundLR)
	const span = adaZeta - adaGamma
	var p1, p2 float64 = 1, 1 // adamBeta1^t, adamBeta2^t
	threads := runtime.GOMAXPROCS(0)
	for it := range iters {
		// Forward: the soft weights' difference D = W~ - W; its gradient
		// from the batch's output error.
		parallel(nw, threads, func(i0, i1 int) {
			for i := i0; i < i1; i++ {
				if !free[i] {
					continue
				}
				s := rectSigmoid(v[i])
				sig[i] = s
				hv := min(1, max(0, s*span+adaGamma))
				h[i] = hv
				d[i] = sc[i]*(lo[i]+hv) - l.W[i]
			}
		})
		grad.next(d, g, n)

		// The regulariser and its beta (AIMET's linear temperature decay
		// after the warm start).
		reg := it >= warm
		var beta float32
		if reg {
			rel := float64(it-warm) / float64(max(1, iters-warm))
			beta = float32(o.AdaRoundBeta[1] + (o.AdaRoundBeta[0]-o.AdaRoundBeta[1])*max(0, 1-rel))
		}
		p1 *= adamBeta1
		p2 *= adamBeta2
		// Adam's bias corrections folded into the step size.
		step := lr * float32(math.Sqrt(1-p2)/(1-p1))
		eps := float32(adamEps * math.Sqrt(1-p2))
		parallel(nw, threads, func(i0, i1 int) {
			for i := i0; i < i1; i++ {
				if !free[i] {
					continue
				}
				var gv float32
				if raw := sig[i]*span + adaGamma; raw > 0 && raw < 1 {
					gh := g[i] * sc[i]
					if a := 2*h[i] - 1; reg && a != 0 {
						// d/dh of lambda*(1 - |2h-1|^beta).
						mag := beta * expf((beta-1)*logf(absf(a)))
						if a < 0 {
							mag = -mag
						}
						gh -= adaRegParam * 2 * mag
					}
					gv = gh * span * sig[i] * (1 - sig[i])
				}
				m1[i] = adamBeta1*m1[i] + (1-adamBeta1)*gv
				m2[i] = adamBeta2*m2[i] + (1-adamBeta2)*gv*gv
				v[i] -= step * m1[i] / (float32(math.Sqrt(float64(m2[i]))) + eps)
			}
		})
	}

	// Hard rounding: up where the soft rounding ended at or past one half.
	for i, f := range free {
		if !f {
			continue
		}
		if min(1, max(0, rectSigmoid(v[i])*span+adaGamma)) >= 0.5 {
			codes[i]++
		}
	}
	if !o.AdaRoundNoDescent {
		if h := hessianOf(l, in); h != nil {
			l.descend(codes, h)
		}
	}
	return &Result{Codes: codes}, nil
}

// checkRows reports inputs that do not hold the sampled rows an algorithm
// needs.
func checkRows(name string, l *Layer, in *Inputs) error {
	switch {
	case in == nil || in.M <= 0:
		return fmt.Errorf("%s: no sampled input rows (the engine collects them: see NeedsOf)", name)
	case len(in.X) < in.M*l.K:
		return fmt.Errorf("%s: %d input values for %d rows of K=%d", name, len(in.X), in.M, l.K)
	}
	for i, v := range l.W {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s: weight (%d, %d) is %v", name, i/l.K, i%l.K, v)
		}
	}
	for i, v := range in.X[:in.M*l.K] {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s: input row %d, column %d is %v", name, i/l.K, i%l.K, v)
		}
	}
	return nil
}

// batches are the sampled rows split once, in a seeded shuffle, into
// mini-batches; a step takes the next batch, and every pass over them goes
// in a fresh seeded order. The gradient of sum_n ||Xb d_n||^2 / rows with
// respect to D (N x K) is 2/rows D Xb^T Xb: when K is below twice the batch
// each batch's Gram matrix Xb^T Xb (K x K) is formed once and a step is one
// N x K x K product; otherwise a step is the two products through the
// batch's output error, Xb D^T and its transpose back (with the rows kept in
// both layouts so no product reads a transposed operand).
type batches struct {
	k, rows int
	size    []int       // rows in each batch
	gram    [][]float32 // K x K per batch (the Gram path)
	x, xt   []float32   // shuffled rows, M x K, and their transpose K x M (the row path)
	start   []int       // first row of each batch
	order   []int
	pos     int
	rng     *rand.Rand
	e       []float32 // N x batch output error (the row path)
	threads int
}

func newBatches(in *Inputs, k, b int, seed uint64, useGram bool) *batches {
	m := in.M
	bs := &batches{k: k, rows: m, rng: rand.New(rand.NewPCG(seed, 0x616461726f756e64)), threads: runtime.GOMAXPROCS(0)}
	perm := bs.rng.Perm(m)
	x := make([]float32, m*k)
	for i, src := range perm {
		copy(x[i*k:(i+1)*k], in.X[src*k:(src+1)*k])
	}
	for s := 0; s < m; s += b {
		bs.start = append(bs.start, s)
		bs.size = append(bs.size, min(b, m-s))
	}
	bs.order = make([]int, len(bs.start))
	bs.pos = len(bs.order)
	bs.xt = make([]float32, k*m)
	for r := range m {
		for c := range k {
			bs.xt[c*m+r] = x[r*k+c]
		}
	}
	if !useGram {
		bs.x = x
		return bs
	}
	for j, s := range bs.start {
		g := make([]float32, k*k)
		gemm.Sgemm(k, k, bs.size[j], 1, gemm.Matrix{Data: bs.xt[s:], Stride: m}, gemm.Matrix{Data: x[s*k:], Stride: k}, 0, g, k, bs.threads)
		bs.gram = append(bs.gram, g)
	}
	bs.xt = nil
	return bs
}

// next writes into g the gradient, at d, of the next batch's output error.
func (bs *batches) next(d, g []float32, n int) {
	if bs.pos == len(bs.order) {
		for i := range bs.order {
			bs.order[i] = i
		}
		bs.rng.Shuffle(len(bs.order), func(i, j int) { bs.order[i], bs.order[j] = bs.order[j], bs.order[i] })
		bs.pos = 0
	}
	j := bs.order[bs.pos]
	bs.pos++
	k, rows := bs.k, bs.size[j]
	alpha := 2 / float32(rows)
	if bs.gram != nil {
		gemm.Sgemm(n, k, k, alpha, gemm.Matrix{Data: d, Stride: k}, gemm.Matrix{Data: bs.gram[j], Stride: k}, 0, g, k, bs.threads)
		return
	}
	if len(bs.e) < n*rows {
		bs.e = make([]float32, n*rows)
	}
	e := bs.e[:n*rows]
	s := bs.start[j]
	// E^T (N x rows) = D Xb^T, then G = 2/rows E^T Xb.
	gemm.Sgemm(n, rows, k, 1, gemm.Matrix{Data: d, Stride: k}, gemm.Matrix{Data: bs.xt[s:], Stride: bs.rows}, 0, e, rows, bs.threads)
	gemm.Sgemm(n, k, rows, alpha, gemm.Matrix{Data: e, Stride: rows}, gemm.Matrix{Data: bs.x[s*k:], Stride: k}, 0, g, k, bs.threads)
}

// expf is e^x in float32 arithmetic, to about 2e-7 relative: x = n ln2 + r
// with |r| <= ln2/2, e^r by its Taylor series to r^6, times 2^n through the
// exponent bits. AdaRound's steps are dominated by one sigmoid per weight;
// float64 math.Exp costs several times more and buys nothing here.
func expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693145751953125 // ln 2 split so n*ln2hi is exact
		ln2lo = 1.42860682030941723212e-6
	)
	switch {
	case x > 88:
		return float32(math.Inf(1))
	case x < -87:
		return 0
	}
	n := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - n*ln2hi - n*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// logf is ln x for x > 0 (not checked) in float32 arithmetic, to about 1e-7
// absolute: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s)
// with s = (m-1)/(m+1), |s| < 0.172, by its series to s^9.
func logf(x float32) float32 {
	bits := math.Float32bits(x)
	e := int32(bits>>23) - 127
	m := math.Float32frombits(bits&0x007fffff | 127<<23) // [1, 2)
	if bits>>23 == 0 {                                   // subnormal: scale up first
		return logf(x*(1<<23)) - 23*math.Ln2
	}
	if m > math.Sqrt2 {
		m /= 2
		e++
	}
	s := (m - 1) / (m + 1)
	s2 := s * s
	return 2*s*(1+s2*(1.0/3+s2*(1.0/5+s2*(1.0/7+s2*(1.0/9))))) + float32(e)*math.Ln2
}

// rectSigmoid is the sigmoid of v as the rectified sigmoid reads it: past
// |v| = ln 11 (2.398) h is flat at 0 or 1 and its gradient is zero, so there
// the exact value does not matter and no exp is spent.
func rectSigmoid(v float32) float32 {
	switch {
	case v < -2.4:
		return 0
	case v > 2.4:
		return 1
	}
	return 1 / (1 + expf(-v))
}

// parallel runs f over [0, n) in up to threads contiguous parts, when n is
// large enough to pay for the goroutines.
func parallel(n, threads int, f func(i0, i1 int)) {
	const minPart = 8192
	parts := min(threads, n/minPart)
	if parts <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + parts - 1) / parts
	for i0 := 0; i0 < n; i0 += per {
		wg.Add(1)
		go func() { defer wg.Done(); f(i0, min(n, i0+per)) }()
	}
	wg.Wait()
}

func absf(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }
