package wround

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// shifted is x_f and x_q = the rows the rounded prefix gives: x_f with a
// per-channel gain error, a leak between neighbouring channels and noise, as
// an earlier layer's rounding would make them.
func shifted(r *rand.Rand, m, k int) (xf, xq []float32) {
	xf = correlated(r, m, k)
	xq = make([]float32, len(xf))
	gain := make([]float64, k)
	for i := range gain {
		gain[i] = 1 + 0.05*r.NormFloat64()
	}
	for row := range m {
		for c := range k {
			v := float64(xf[row*k+c]) * gain[c]
			v += 0.04 * float64(xf[row*k+(c+1)%k])
			xq[row*k+c] = float32(v + 0.02*r.NormFloat64())
		}
	}
	return xf, xq
}

// cross is mean x_q (x_f - x_q)^T.
func cross(xf, xq []float32, m, k int) []float64 {
	c := make([]float64, k*k)
	for row := range m {
		q, f := xq[row*k:(row+1)*k], xf[row*k:(row+1)*k]
		for i := range k {
			for j := range k {
				c[i*k+j] += float64(q[i]) * (float64(f[j]) - float64(q[j]))
			}
		}
	}
	for i := range c {
		c[i] /= float64(m)
	}
	return c
}

// floatTargetError is mean over rows and outputs of (v.x_q - w.x_f)^2, in
// float64 from the rows themselves: the objective Retarget serves.
func floatTargetError(v, w []float32, n, k int, xf, xq []float32, m int) float64 {
	var sum float64
	for r := range n {
		for row := range m {
			var e float64
			for c := range k {
				e += float64(v[r*k+c])*float64(xq[row*k+c]) - float64(w[r*k+c])*float64(xf[row*k+c])
			}
			sum += e * e
		}
	}
	return sum / float64(n*m)
}

// quadratic is mean over outputs of (v - t)^T H (v - t).
func quadratic(v, t []float32, n, k int, h []float64) float64 {
	var sum float64
	for r := range n {
		for i := range k {
			for j := range k {
				sum += (float64(v[r*k+i]) - float64(t[r*k+i])) * h[i*k+j] * (float64(v[r*k+j]) - float64(t[r*k+j]))
			}
		}
	}
	return sum / float64(n)
}

// TestRetargetIsTheFloatObjective: the float-target error of any weights v
// is (v - w~)^T H (v - w~) plus a constant, so w~ is its minimum.
func TestRetargetIsTheFloatObjective(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	const m, k, n = 1024, 24, 6
	xf, xq := shifted(r, m, k)
	l := randomLayer(r, n, k, k, -8, 7, true)
	w := slices.Clone(l.W)
	in := &Inputs{H: hessian(xq, m, k), Cross: cross(xf, xq, m, k)}
	if err := l.Retarget(in, 1e-12); err != nil {
		t.Fatal(err)
	}
	moved := 0.0
	for i := range w {
		moved = math.Max(moved, math.Abs(float64(l.W[i]-w[i])))
	}
	if !(moved > 1e-3) {
		t.Fatalf("w~ moved at most %g from w", moved)
	}
	// w~ is float32: the constant holds to float32 rounding of the errors.
	var consts []float64
	scale := 0.0
	for try := range 4 {
		v := slices.Clone(w)
		if try > 0 {
			for i := range v {
				v[i] += float32(0.02 * r.NormFloat64())
			}
		}
		e := floatTargetError(v, w, n, k, xf, xq, m)
		scale = math.Max(scale, e)
		consts = append(consts, e-quadratic(v, l.W, n, k, in.H))
	}
	for _, c := range consts[1:] {
		if math.Abs(c-consts[0]) > 1e-5*scale {
			t.Fatalf("error minus quadratic is not constant: %v", consts)
		}
	}
	atW := floatTargetError(w, w, n, k, xf, xq, m)
	atTarget := floatTargetError(l.W, w, n, k, xf, xq, m)
	if !(atTarget < 0.05*atW) {
		t.Errorf("float-target error %g at w~, %g at w", atTarget, atW)
	}
	t.Logf("float-target error: w %.4g, w~ %.4g (constant %v, largest error %.4g)", atW, atTarget, consts, scale)
}

// TestRetargetGPTQ: GPTQ on w~ reaches a lower float-target error than GPTQ
// on w (the layer compensates its inputs' error), and nearest rounding of
// either is worse than both.
func TestRetargetGPTQ(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	const m, k, n = 2048, 64, 16
	xf, xq := shifted(r, m, k)
	plain := randomLayer(r, n, k, k, -8, 7, true)
	w := slices.Clone(plain.W)
	in := &Inputs{H: hessian(xq, m, k), Cross: cross(xf, xq, m, k)}
	target := cloneLayer(plain)
	if err := target.Retarget(in, 0.01); err != nil {
		t.Fatal(err)
	}
	fitMinMax(target)
	errOf := func(l *Layer, q []int32) float64 {
		return floatTargetError(l.Dequantized(q), w, n, k, xf, xq, m)
	}
	o := DefaultOptions()
	qp, err := gptq(plain, in, o)
	if err != nil {
		t.Fatal(err)
	}
	qt, err := gptq(target, in, o)
	if err != nil {
		t.Fatal(err)
	}
	nearest, ep, et := errOf(plain, plain.RTN()), errOf(plain, qp.Codes), errOf(target, qt.Codes)
	t.Logf("float-target error: nearest %.4g, GPTQ %.4g, GPTQ on w~ %.4g", nearest, ep, et)
	if !(et < 0.6*ep && ep < nearest) {
		t.Errorf("float-target error: nearest %.4g, GPTQ %.4g, GPTQ on w~ %.4g: want w~ well under plain GPTQ", nearest, ep, et)
	}
}

// TestRetargetNoCross: without the cross term (float inputs) or with a zero
// one (the inputs agree) the layer keeps its weights.
func TestRetargetNoCross(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	const m, k, n = 256, 12, 3
	x := correlated(r, m, k)
	l := randomLayer(r, n, k, k, -8, 7, true)
	w := slices.Clone(l.W)
	h := hessian(x, m, k)
	for _, c := range [][]float64{nil, make([]float64, k*k)} {
		if err := l.Retarget(&Inputs{H: h, Cross: c}, 0.01); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(l.W, w) {
			t.Fatalf("cross %v changed the weights", c != nil)
		}
	}
	if err := l.Retarget(&Inputs{H: h[:k], Cross: make([]float64, k*k)}, 0.01); err == nil {
		t.Fatal("a short Hessian was accepted")
	}
}
