package wround

import "math"

// HQQ's constants (Badri & Shaji, half-quadratic quantization): the lp norm
// (p < 1) of the weight error is minimised; beta weighs the split between
// the error and its sparse estimate and grows by kappa every iteration.
const (
	hqqP     = 0.7
	hqqBeta  = 10.0
	hqqKappa = 1.01
)

// hqq is data-free: per group (per channel, or for the whole tensor), the
// grid is optimised by half-quadratic splitting so the weight error
// W - dequant(quant(W)) is sparse (small in an lp norm, p < 1) rather than
// small on average, which suits heavy-tailed weights where min/max ranges
// waste codes on a few outliers.
//
// Where this departs from the reference and why: the reference keeps the
// scale and moves a real-valued zero point. ONNX DequantizeLinear needs an
// integer zero point, and moving an integer zero point under a fixed scale
// only slides the same grid (it cannot lower the error of a min/max grid),
// so the quadratic step here fits scale and zero together (least squares of
// the shrunk target on the codes), the zero point is rounded to an integer
// (and clamped to the code range) at the end, and the scale is refit for
// it. A group keeps its min/max grid if the result does not lower its
// squared weight error. Pinned layers keep their grid: RTN.
func hqq(l *Layer, o Options) (*Result, error) {
	if l.Pinned {
		return &Result{Codes: l.RTN()}, nil
	}
	iters := o.HQQIters
	if iters <= 0 {
		iters = 20
	}
	groups := l.Groups()
	rows := l.N
	if l.PerTensor {
		rows = 1
	}
	for n := range rows {
		for g := range groups {
			p := l.Param(n, g*max(l.Group, 1))
			vals := l.groupValues(n, g)
			s, z := l.hqqGrid(vals, float64(l.Scale[p]), float64(l.Zero[p]), iters)
			if s32 := float32(s); s32 > 0 && !math.IsInf(float64(s32), 0) && sqErr(vals, s32, z, l.QMin, l.QMax) < sqErr(vals, l.Scale[p], l.Zero[p], l.QMin, l.QMax) {
				l.Scale[p], l.Zero[p] = s32, z
			}
		}
	}
	return &Result{Codes: l.RTN()}, nil
}

// groupValues are the weights sharing row n's group g (all of W per tensor).
func (l *Layer) groupValues(n, g int) []float32 {
	if l.PerTensor {
		return l.W
	}
	k0, k1 := l.span(g)
	return l.W[n*l.K+k0 : n*l.K+k1]
}

// hqqGrid alternates the two half-quadratic steps: the error's sparse part
// by the generalised soft threshold (lp shrinkage), then scale and zero point
// in closed form as the affine map of the codes that best explains the rest.
// It stops when the mean absolute error stops falling, keeps the best grid
// seen, and returns it with the zero point made an integer.
func (l *Layer) hqqGrid(w []float32, scale, zero float64, iters int) (float64, int32) {
	beta := hqqBeta
	bestS, bestZ, bestErr := scale, zero, math.Inf(1)
	qmin, qmax := float64(l.QMin), float64(l.QMax)
	codes := func(s, z float64, q []float64) {
		for i, v := range w {
			q[i] = math.Max(qmin, math.Min(qmax, math.RoundToEven(float64(v)/s+z)))
		}
	}
	q := make([]float64, len(w))
	n := float64(len(w))
	for range iters {
		codes(scale, zero, q)
		var abs float64
		for i, v := range w {
			abs += math.Abs(float64(v) - (q[i]-zero)*scale)
		}
		if abs /= n; abs >= bestErr {
			break
		}
		bestS, bestZ, bestErr = scale, zero, abs
		// Target t = W - sparse error; fit t ~ a q + b.
		var sq, st, sqq, sqt float64
		for i, v := range w {
			t := float64(v) - shrinkLp(float64(v)-(q[i]-zero)*scale, beta)
			sq += q[i]
			st += t
			sqq += q[i] * q[i]
			sqt += q[i] * t
		}
		vq := sqq/n - (sq/n)*(sq/n)
		if a := (sqt/n - (sq/n)*(st/n)) / vq; vq > 0 && a > 0 {
			scale = a
			zero = -(st/n - a*sq/n) / a
		} else {
			zero = (sq - st/scale) / n
		}
		beta *= hqqKappa
	}
	z := int32(math.Max(qmin, math.Min(qmax, math.RoundToEven(bestZ))))
	// The least-squares scale for these codes around the integer zero point.
	codes(bestS, float64(z), q)
	var num, den float64
	for i, v := range w {
		d := q[i] - float64(z)
		num += float64(v) * d
		den += d * d
	}
	if den > 0 && num > 0 {
		bestS = num / den
	}
	return bestS, z
}

// shrinkLp is the proximal step of |x|^p at 1/beta: x shrunk towards zero by
// |x|^(p-1)/beta, and zero when that passes it.
func shrinkLp(x, beta float64) float64 {
	a := math.Abs(x)
	if a == 0 {
		return 0
	}
	s := a - math.Pow(a, hqqP-1)/beta
	if s <= 0 {
		return 0
	}
	return math.Copysign(s, x)
}

func sqErr(w []float32, scale float32, zero, qmin, qmax int32) float64 {
	var s float64
	for _, v := range w {
		q := Nearest(v, scale, zero, qmin, qmax)
		d := float64(float32(q-zero)*scale) - float64(v)
		s += d * d
	}
	return s
}
