package vec

import "math"

// Float32 transcendentals. Each is a range reduction and a minimax polynomial
// (coefficients from fitcoeffs.go, in coeffs.go) evaluated in float32 with fused
// multiply-adds. The Go functions below are the specification: the AVX2 code
// performs the same operations in the same order, so the two agree to within
// an ulp (Go's float32 FMA goes through float64 and can round twice, in rare
// cases one ulp apart). Every element of a slice takes the same path: a tail
// shorter than a vector is padded and run through the vector code as well.
//
// Measured maximum errors against float64 (TestAccuracy prints them; bounds in
// ulps of the float32 result, or absolute where the result is near a zero of
// the function or subnormal):
//
//	Exp       1 ulp            Log       1 ulp
//	Sigmoid   2 ulp            Tanh      2 ulp
//	Erf       2 ulp            Silu      2 ulp
//	GeluTanh  3 ulp            GeluErf   3 ulp, relative 2^-15 where |y| < 1e-7
//	Mish      3 ulp            Softplus  2 ulp            Elu 2 ulp

const (
	log2e = 0x1.715476p+00 // float32(1/ln 2)
	ln2hi = 0x1.62e43p-01  // float32(ln 2): n*ln2hi is exact in an FMA
	ln2lo = -0x1.05c61p-29 // ln 2 - ln2hi

	// expLo and expHi bound exp's argument: below expLo the result rounds to 0,
	// above expHi it overflows to +Inf; within them n stays in [-150, 128].
	expLo = -104
	expHi = 89

	erfSplit = 0.921875 // erf uses x + x*P(x^2) below, 1 - exp(P(|x|)) above
	erfcMax  = 6        // the fit of log(erfc) ends here; erfc(6) = 2e-17

	invSqrt2   = 0x1.6a09e6p-01 // float32(1/sqrt2)
	invSqrt2Lo = 0.7071067811865476 - invSqrt2

	// Gelu's tanh form: 2z = x * (geluK1 + geluK3 x^2).
	geluK1 = 2 * 0.7978845608028654            // 2 sqrt(2/pi)
	geluK3 = 2 * 0.044715 * 0.7978845608028654 // 2 * 0.044715 sqrt(2/pi)
)

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
// subnormal range round once, correctly.
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

// erfcLarge is erfc(t) for t >= erfSplit: exp of the fitted log(erfc), 0 past erfcMax.
func erfcLarge(t float32) float32 {
	if t > erfcMax {
		return 0
	}
	q := fma32(logErfc11, t, logErfc10)
	q = fma32(q, t, logErfc9)
	q = fma32(q, t, logErfc8)
	q = fma32(q, t, logErfc7)
	q = fma32(q, t, logErfc6)
	q = fma32(q, t, logErfc5)
	q = fma32(q, t, logErfc4)
	q = fma32(q, t, logErfc3)
	q = fma32(q, t, logErfc2)
	q = fma32(q, t, logErfc1)
	q = fma32(q, t, logErfc0)
	return expf(q)
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
		y = 1 - erfcLarge(a)
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
	// error from it grows as 2|u|du, so the tail corrects erfc by (1 - 2|u|du).
	du := fma32(x, invSqrt2Lo, fma32(x, invSqrt2, -u))
	a := abs32(u)
	var f float32
	if a < erfSplit {
		f = 1 + copysign32(erfSmallPoly(a), u)
	} else {
		e := erfcLarge(a)
		d := math.Float32frombits(math.Float32bits(du) ^ math.Float32bits(u)&(1<<31)) // |x/sqrt2| - a
		if a <= erfcMax { // past it e is 0, and du may be NaN (x = Inf)
			e = fma32(e, a*d*-2, e)
		}
		f = e
		if u > 0 {
			f = 2 - e
		}
	}
	return 0.5 * x * f
}

// geluTanhf is x/2 * (1 + tanh(z)), z = sqrt(2/pi)*(x + 0.044715x^3), computed
// as x * sigmoid(2z) (the same function, 1 + tanh z = 2/(1+e^-2z)) so the
// negative tail does not cancel.
func geluTanhf(x float32) float32 {
	if x != x {
		return x
	}
	x = max(x, -200)
	z2 := x * fma32(geluK3, x*x, geluK1) // 2z
	return x * sigmoidf(z2)
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

// useFMA is set when the CPU has AVX2 and FMA, which the assembly versions need.
var useFMA = false

// unary runs f over x into dst (dst and x may alias): whole vectors in
// assembly, the tail through the same assembly on a padded copy.
func unary(dst, x []float32, asm func(dst, x *float32, n int), f func(float32) float32) {
	n := len(dst)
	x = x[:n]
	if !useFMA {
		for i, v := range x {
			dst[i] = f(v)
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

// ExpSum sets dst[i] = e^(x[i] - sub) and returns the sum of dst, accumulated
// in float64 (Softmax's numerator and denominator in one pass).
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
	var acc [4]float64
	k := n &^ 7
	if k > 0 {
		expSubSumAsm(&dst[0], &x[0], k, sub, &acc)
	}
	if k < n {
		// Padding of -Inf adds e^-Inf = 0 to the sum.
		buf := [8]float32{}
		for i := range buf {
			buf[i] = float32(math.Inf(-1))
		}
		copy(buf[:], x[k:])
		expSubSumAsm(&buf[0], &buf[0], 8, sub, &acc)
		copy(dst[k:], buf[:n-k])
	}
	return (acc[0] + acc[1]) + (acc[2] + acc[3])
}
