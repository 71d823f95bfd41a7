package vec

import "math"

// Float32 transcendentals. Each is a range reduction and a minimax polynomial
// (coefficients from fitcoeffs.go, in coeffs.go) evaluated in float32 with fused
// multiply-adds. The Go functions below are the specification: the AVX2 and
// AVX-512 code (one generator, gen_math.py, 8 and 16 lanes) performs the same
// operations in the same order, so AVX2 and AVX-512 give the same bits and
// the Go code agrees with them to within an ulp (Go's float32 FMA goes
// through float64 and can round twice, in rare cases one ulp apart). Every
// element of a slice takes the same path: a tail shorter than a vector is
// padded (AVX2) or masked (AVX-512) and run through the vector code as well.
// (Erf and GeluErf on AVX-512 run erf's costly branch only on the lanes that
// take it, packed together, with the same bits: erfsplit_amd64.go.)
// Throughput, input GB/s on 4096 floats, AVX-512 / AVX2 on one Sapphire
// Rapids-class core (BenchmarkMath, medians of 10): exp 7.8 / 4.6, sigmoid
// 6.2 / 5.2, silu 5.6 / 4.8, tanh 5.7 / 4.6, gelu-tanh 3.0 / 2.4; the scalar
// float64 loop they replaced 0.05-0.14.
//
// Errors against float64 over 1.5e7 inputs each (a stride over all float32
// bit patterns and a dense sample of the working range; TestAccuracy prints
// and asserts them, on 1.1e7 inputs each by default). Bounds are in ulps of the float32 result; subnormal
// results are held to an absolute bound instead (they carry the rounding of a
// subnormal e^x times |x|), and GeluErf returns -0 below x = -8.48 where
// |y| < 1e-16:
//
//	         measured max   relative   asserted
//	Exp        1.04 ulp     8.5e-08    1.05 ulp
//	Log        0.90 ulp     8.1e-08    1 ulp
//	Sigmoid    2.21 ulp     1.8e-07    2.5 ulp
//	Tanh       2.46 ulp     1.7e-07    2.5 ulp
//	Erf        1.08 ulp     7.9e-08    2 ulp
//	Silu       3.04 ulp     2.1e-07    3.5 ulp
//	GeluErf    5.62 ulp     3.8e-07    6 ulp (4.97 for |x| <= 3)
//	GeluTanh   3.82 ulp     2.5e-07    4 ulp
//	Mish       4.03 ulp     2.9e-07    4.5 ulp
//	Softplus   1.88 ulp     1.7e-07    2 ulp
//	Elu        0.96 ulp     9.3e-08    2 ulp
//
// NaN gives NaN; +-Inf give the limits (0 for x*g(x) forms at -Inf); exp
// overflows to +Inf above 88.72 and underflows through the subnormals to 0.

const (
	log2e = 0x1.715476p+00 // float32(1/ln 2)
	ln2hi = 0x1.62e43p-01  // float32(ln 2): n*ln2hi is exact in an FMA
	ln2lo = -0x1.05c61p-29 // ln 2 - ln2hi

	// expLo and expHi bound exp's argument: below expLo the result rounds to 0,
	// above expHi it overflows to +Inf; within them n stays in [-150, 128].
	expLo = -104
	expHi = 89

	// ExpUnderflow: Exp and ExpSum give exactly 0 (and add 0) for every
	// argument below it (x - sub for ExpSum), on every path.
	ExpUnderflow = expLo

	erfSplit   = 0.921875  // erf uses x + x*P(x^2) below, 1 - exp(P(|x|)) above
	erfcMax    = 6         // the fit of log(erfc) ends here; erfc(6) = 2e-17
	erfcCenter = 3.4609375 // the middle of [erfSplit, erfcMax]

	invSqrt2   = 0x1.6a09e6p-01 // float32(1/sqrt2)
	invSqrt2Lo = 0.7071067811865476 - invSqrt2
)

// Gelu's tanh form: w = 2z = x * (k1 + k3 x^2), with k1 = 2 sqrt(2/pi) and
// k3 = 2 * 0.044715 * sqrt(2/pi), each as a float32 and its remainder. The
// float64 products are computed at run time as gen_math.py computes them.
var (
	geluK1x, geluK3x   = geluConsts()
	geluK1, geluK3     = float32(geluK1x), float32(geluK3x)
	geluK1Lo, geluK3Lo = float32(geluK1x - float64(geluK1)), float32(geluK3x - float64(geluK3))
)

func geluConsts() (float64, float64) {
	c := [2]float64{0.7978845608028654, 0.044715}
	return 2 * c[0], 2 * c[1] * c[0]
}

func fma32(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

// pow2 is 2^n for n in [-126, 127].
func pow2(n int32) float32 { return math.Float32frombits(uint32(n+127) << 23) }

// expReduce splits x = n*ln2 + r with |r| <= ln2/2 (Cody-Waite, ln 2 in two parts)
// and returns n and expm1(r).
func expReduce(x float32) (int32, float32) {
	n := float32(math.RoundToEven(float64(x * log2e)))
	r := fma32(n, -ln2hi, x)
	r = fma32(n, -ln2lo, r)
	q := fma32(expm16, r, expm15)
	q = fma32(q, r, expm14)
	q = fma32(q, r, expm13)
	q = fma32(q, r, expm12)
	return int32(n), fma32(r*r, q, r)
}

// expf is e^x; the scale 2^n is applied in two halves so that results in the
// subnormal range round once, correctly. (The sigmoid forms' assembly, whose
// argument is <= 0, scales (1+em)*2^-25 by 2^(n+25) instead: one rounding
// too, the same bits.)
func expf(x float32) float32 {
	if x != x {
		return x
	}
	x = min(max(x, expLo), expHi)
	n, em := expReduce(x)
	p := 1 + em
	n1 := n >> 1
	return p * pow2(n1) * pow2(n-n1)
}

// expm1f is e^x - 1 for x in [-20, 20] (callers clamp): 2^n * expm1(r) + (2^n - 1),
// exact in its last step for n = 0, so small x keep their relative accuracy.
func expm1f(x float32) float32 {
	n, em := expReduce(x)
	s := pow2(n)
	return fma32(s, em, s-1)
}

// logf is the natural logarithm: x = 2^e * m with m in [sqrt(1/2), sqrt(2)),
// log(x) = e*ln2 + log1p(m-1).
func logf(x float32) float32 {
	switch {
	case x != x || x == float32(math.Inf(1)):
		return x
	case x == 0:
		return float32(math.Inf(-1))
	case x < 0:
		return float32(math.NaN())
	}
	return logPositive(x)
}

// logPositive is logf for finite x > 0.
func logPositive(x float32) float32 {
	var adj float32
	if x < 0x1p-126 { // subnormal: scale into the normal range
		x *= 0x1p23
		adj = -23
	}
	// Adding 1 - sqrt(1/2) to the bits moves the exponent up exactly when the
	// mantissa is at or above sqrt(2).
	b := math.Float32bits(x) + (0x3f800000 - 0x3f3504f3)
	e := float32(int32(b>>23)-127) + adj
	m := math.Float32frombits(b&0x007fffff + 0x3f3504f3)
	f := m - 1
	q := fma32(log1p11, f, log1p10)
	q = fma32(q, f, log1p9)
	q = fma32(q, f, log1p8)
	q = fma32(q, f, log1p7)
	q = fma32(q, f, log1p6)
	q = fma32(q, f, log1p5)
	q = fma32(q, f, log1p4)
	q = fma32(q, f, log1p3)
	q = fma32(q, f, -0.5)
	y := fma32(f*f, q, f)
	return fma32(e, ln2hi, fma32(e, ln2lo, y))
}

// sigmoidf is 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) below, so neither side
// overflows and small results keep their relative accuracy.
func sigmoidf(x float32) float32 {
	e := expf(-abs32(x))
	num := float32(1)
	if math.Signbit(float64(x)) {
		num = e
	}
	return num / (1 + e)
}

// tanhf is expm1(2|x|) / (expm1(2|x|) + 2) with the sign of x: no cancellation
// near 0; |x| >= 9.5 rounds to 1.
func tanhf(x float32) float32 {
	a := min(abs32(x), 9.5)
	if x != x {
		return x
	}
	em := expm1f(2 * a)
	return copysign32(em/(em+2), x)
}

// erfcLarge is erfc(t) for t >= erfSplit, 0 past erfcMax: exp(P(t) - t^2) with
// P the fit of log(erfc(t)) + t^2 in t - erfcCenter. The exponent is formed exactly as qh + ql
// (t^2 split with an FMA, TwoSum for the difference) and e^(qh+ql) is
// e^qh (1 + ql); extra is a further small correction of the exponent.
func erfcLarge(t, extra float32) float32 {
	if t > erfcMax {
		return 0
	}
	v := t - erfcCenter
	m := fma32(logErfc11, v, logErfc10)
	m = fma32(m, v, logErfc9)
	m = fma32(m, v, logErfc8)
	m = fma32(m, v, logErfc7)
	m = fma32(m, v, logErfc6)
	m = fma32(m, v, logErfc5)
	m = fma32(m, v, logErfc4)
	m = fma32(m, v, logErfc3)
	m = fma32(m, v, logErfc2)
	m = fma32(m, v, logErfc1)
	m = fma32(m, v, logErfc0)
	// v is rounded for t < erfcCenter/2; its error vl moves P by P'(t) vl,
	// and P' = d/dt log(erfc(t)) + 2t is within [-0.67, -0.47] there.
	vl := t - (v + erfcCenter)
	extra = fma32(vl, -0.57, extra)
	s := t * t
	sl := fma32(t, t, -s)
	qh := m - s
	bb := qh - m
	ql := ((m - (qh - bb)) + (-s - bb)) - sl
	e := expf(qh)
	return fma32(e, ql+extra, e)
}

// erfSmallPoly is erf(a) for a < erfSplit.
func erfSmallPoly(a float32) float32 {
	s := a * a
	q := fma32(erfSmall6, s, erfSmall5)
	q = fma32(q, s, erfSmall4)
	q = fma32(q, s, erfSmall3)
	q = fma32(q, s, erfSmall2)
	q = fma32(q, s, erfSmall1)
	q = fma32(q, s, erfSmall0)
	return fma32(a, q, a)
}

func erff(x float32) float32 {
	if x != x {
		return x
	}
	a := abs32(x)
	var y float32
	if a < erfSplit {
		y = erfSmallPoly(a)
	} else {
		y = 1 - erfcLarge(a, 0)
	}
	return copysign32(y, x)
}

// geluErff is x/2 * (1 + erf(x/sqrt2)); for x/sqrt2 <= -erfSplit the factor is
// erfc(|x|/sqrt2) itself, so the negative tail keeps its relative accuracy.
func geluErff(x float32) float32 {
	if x != x {
		return x
	}
	x = max(x, -200) // -Inf gives the limit, -0
	u := x * invSqrt2
	// du = x/sqrt2 - u: the rounding of u and of the constant. erfc's relative
	// error from it grows as 2|u|du, so the tail corrects erfc's exponent by -2|u|du.
	du := fma32(x, invSqrt2Lo, fma32(x, invSqrt2, -u))
	a := abs32(u)
	var f float32
	if a < erfSplit {
		f = 1 + copysign32(erfSmallPoly(a), u)
	} else {
		d := math.Float32frombits(math.Float32bits(du) ^ math.Float32bits(u)&(1<<31)) // |x/sqrt2| - a
		e := erfcLarge(a, a*d*-2)
		f = e
		if u > 0 {
			f = 2 - e
		}
	}
	return 0.5 * x * f
}

// geluTanhf is x/2 * (1 + tanh(z)), z = sqrt(2/pi)*(x + 0.044715x^3), computed
// as x * sigmoid(2z) (the same function, 1 + tanh z = 2/(1+e^-2z)) so the
// negative tail does not cancel. In the tail the result's relative error is
// |2z| times that of 2z, so 2z is carried as w + wl (error-free products and
// sums with FMA, and the constants' remainders), and sigmoid(w + wl) is
// sigmoid(w) + sigmoid'(w) wl.
func geluTanhf(x float32) float32 {
	if x != x {
		return x
	}
	x = max(x, -200)
	xc := min(x, 20) // above, the factor is 1 (and x^3 would overflow)
	s := xc * xc
	sl := fma32(xc, xc, -s) // x^2 = s + sl exactly
	p := geluK3 * s
	pl := fma32(geluK3, s, -p)
	t := geluK1 + p // TwoSum: t + tl = k1 + p exactly
	bb := t - geluK1
	tl := (geluK1 - (t - bb)) + (p - bb)
	tl = tl + (pl + fma32(geluK3, sl, fma32(s, geluK3Lo, geluK1Lo)))
	w := xc * t
	wl := fma32(xc, tl, fma32(xc, t, -w))
	sg := sigmoidf(w)
	return x * fma32(sg*(1-sg), wl, sg)
}

// siluf is x * sigmoid(x) (Swish with beta 1).
func siluf(x float32) float32 {
	if x != x {
		return x
	}
	x = max(x, -200)
	return x * sigmoidf(x)
}

// mishf is x * tanh(softplus(x)) = x * n/(n+2) with n = e^x (e^x + 2): one exp,
// no log; above 20 the factor rounds to 1.
func mishf(x float32) float32 {
	if x != x {
		return x
	}
	x = max(x, -200)
	e := expf(min(x, 20))
	n := e * (e + 2)
	return x * (n / (n + 2))
}

// softplusf is max(x, 0) + log1p(e^-|x|); log1p(e) is log(1+e) plus the rounding
// error of 1+e divided by 1+e (exact numerator), so tiny e stays accurate.
func softplusf(x float32) float32 {
	if x != x {
		return x
	}
	e := expf(-abs32(x))
	u := 1 + e
	c := (e - (u - 1)) / u
	return max(x, 0) + (logPositive(u) + c)
}

// eluf is x for x > 0, alpha * expm1(x) otherwise (expm1 clamped at -20, where it is -1).
func eluf(x, alpha float32) float32 {
	if x > 0 {
		return x
	}
	if x != x {
		return x
	}
	return alpha * expm1f(max(x, -20))
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

func copysign32(y, x float32) float32 {
	return math.Float32frombits(math.Float32bits(y)&^(1<<31) | math.Float32bits(x)&(1<<31))
}

// useFMA is set when the CPU has AVX2 and FMA, which the assembly versions
// need; use512 when it also has AVX-512 (sixteen lanes, the same operations
// per lane, so the same bits as AVX2).
var useFMA, use512 = false, false

// unary runs f over x into dst (dst and x may alias): whole vectors in
// assembly, the tail through the same assembly on a padded copy (AVX2) or
// under a lane mask (AVX-512).
func unary(dst, x []float32, asm func(dst, x *float32, n int), f func(float32) float32) {
	n := len(dst)
	x = x[:n]
	if !useFMA {
		for i, v := range x {
			dst[i] = f(v)
		}
		return
	}
	if use512 {
		if n > 0 { // the last partial vector runs under a lane mask
			asm(&dst[0], &x[0], n)
		}
		return
	}
	k := n &^ 7
	if k > 0 {
		asm(&dst[0], &x[0], k)
	}
	if k < n {
		var buf [8]float32
		copy(buf[:], x[k:])
		asm(&buf[0], &buf[0], 8)
		copy(dst[k:], buf[:n-k])
	}
}

// Exp sets dst[i] = e^x[i].
func Exp(dst, x []float32) { unary(dst, x, expAsm, expf) }

// Log sets dst[i] = ln x[i] (NaN for x < 0, -Inf for 0).
func Log(dst, x []float32) { unary(dst, x, logAsm, logf) }

// Sigmoid sets dst[i] = 1 / (1 + e^-x[i]).
func Sigmoid(dst, x []float32) { unary(dst, x, sigmoidAsm, sigmoidf) }

// Tanh sets dst[i] = tanh x[i].
func Tanh(dst, x []float32) { unary(dst, x, tanhAsm, tanhf) }

// Erf sets dst[i] = erf x[i].
func Erf(dst, x []float32) { unary(dst, x, erfAsm, erff) }

// Silu sets dst[i] = x[i] * sigmoid(x[i]) (SiLU, Swish).
func Silu(dst, x []float32) { unary(dst, x, siluAsm, siluf) }

// GeluErf sets dst[i] = x/2 * (1 + erf(x/sqrt 2)), ONNX Gelu with approximate="none".
func GeluErf(dst, x []float32) { unary(dst, x, geluErfAsm, geluErff) }

// GeluTanh sets dst[i] = x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
// ONNX Gelu with approximate="tanh".
func GeluTanh(dst, x []float32) { unary(dst, x, geluTanhAsm, geluTanhf) }

// Mish sets dst[i] = x * tanh(ln(1 + e^x)).
func Mish(dst, x []float32) { unary(dst, x, mishAsm, mishf) }

// Softplus sets dst[i] = ln(1 + e^x[i]).
func Softplus(dst, x []float32) { unary(dst, x, softplusAsm, softplusf) }

// Elu sets dst[i] = x for x > 0, alpha * (e^x - 1) otherwise.
func Elu(dst, x []float32, alpha float32) {
	unary(dst, x, func(d, s *float32, n int) { eluAsm(d, s, n, alpha) }, func(v float32) float32 { return eluf(v, alpha) })
}

// SoftmaxRows sets each of rows rows of dst (t values, rows ld apart) to
// the Softmax of x's row given the row's largest value in maxes: e^(x -
// max) times float32(1 / sum), as ExpSum and MulScalar compute it, the same
// bits. With AVX-512 it is one call for all the rows (softmaxShortAVX512
// holds a row of 16 or fewer in a register; softmaxRowsAVX512 scales a
// longer one in a second pass), else ExpSum and MulScalar row by row. dst
// may be x.
func SoftmaxRows(dst, x []float32, rows, t, ld int, maxes []float32) {
	if rows == 0 || t == 0 {
		return
	}
	_ = dst[(rows-1)*ld+t-1]
	_ = x[(rows-1)*ld+t-1]
	_ = maxes[rows-1]
	if useFMA && softmaxRowsAsm(&dst[0], &x[0], rows, t, ld, &maxes[0]) {
		return
	}
	for r := range rows {
		d := dst[r*ld : r*ld+t]
		s := ExpSum(d, x[r*ld:r*ld+t], maxes[r])
		MulScalar(d, d, float32(1/s))
	}
}

// ExpSum sets dst[i] = e^(x[i] - sub) and returns the sum of dst, accumulated
// in float64 (Softmax's numerator and denominator in one pass); the SIMD
// loops first add four values at a time in float32 (gen_math.py), within
// 1.2e-7 of the sum.
func ExpSum(dst, x []float32, sub float32) float64 {
	n := len(dst)
	x = x[:n]
	if !useFMA {
		s := 0.0
		for i, v := range x {
			e := expf(v - sub)
			dst[i] = e
			s += float64(e)
		}
		return s
	}
	var acc [8]float64
	if n > 0 {
		expSubSumAsm(&dst[0], &x[0], n, sub, &acc)
	}
	return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}
