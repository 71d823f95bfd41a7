// Package vec holds the float32 slice loops the kernels spend their elementwise
// time in, with AVX2 versions chosen at run time. The arithmetic routines give
// bit-identical results on every path (no fused multiply-add), so fused and
// unfused graphs and machines with and without AVX2 agree exactly. The
// transcendentals (transcendental.go) are polynomials built on FMA: their
// paths agree within an ulp, and each is within a documented few ulps of the
// exact value.
package vec

import (
	"math"
	"unsafe"
)

// useSIMD is set by the architecture file when AVX2 is available; tests switch it.
var useSIMD = false

// simdLen is how many leading elements the assembly handles (a multiple of 8).
func simdLen(n int) int {
	if !useSIMD {
		return 0
	}
	return n &^ 7
}

// MinMax returns the smallest and largest value of x, ignoring NaNs (+Inf and
// -Inf when there is no other value). Calibration runs it over every observed
// tensor of every sample.
func MinMax(x []float32) (lo, hi float32) {
	lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
	k := simdLen(len(x))
	if k > 0 {
		var lanes [16]float32 // written by the assembly, from +Inf and -Inf
		minMaxAsm(&x[0], k, &lanes)
		for i := 0; i < 8; i++ {
			if lanes[i] < lo {
				lo = lanes[i]
			}
			if lanes[8+i] > hi {
				hi = lanes[8+i]
			}
		}
	}
	for _, v := range x[k:] {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// MaxOf returns the largest value of x, ignoring NaNs (-Inf when there is no
// other value): MinMax's upper half at half the cost, for Softmax.
func MaxOf(x []float32) float32 {
	if useSIMD && len(x) > 0 {
		return maxOfAsm(&x[0], len(x)) // any length: a masked last step
	}
	hi := float32(math.Inf(-1))
	for _, v := range x {
		if v > hi {
			hi = v
		}
	}
	return hi
}

// Add sets dst[i] = a[i] + b[i].
func Add(dst, a, b []float32) {
	n := len(dst)
	a, b = a[:n], b[:n]
	k := simdLen(n)
	if k > 0 {
		addAsm(&dst[0], &a[0], &b[0], k)
	}
	for i := k; i < n; i++ {
		dst[i] = a[i] + b[i]
	}
}

// Add3 sets dst[i] = (a[i] + b[i]) + c[i]: the two adds of Add(dst, a, b)
// then Add(dst, dst, c), in one pass.
func Add3(dst, a, b, c []float32) {
	n := len(dst)
	a, b, c = a[:n], b[:n], c[:n]
	k := simdLen(n)
	if k > 0 {
		add3Asm(&dst[0], &a[0], &b[0], &c[0], k)
	}
	for i := k; i < n; i++ {
		dst[i] = (a[i] + b[i]) + c[i]
	}
}

// SeekNotBelow returns the first index i >= from with !(x[i] < t), a NaN
// included, or len(x): TopK's scan for the values that may enter its
// heap of the largest, eight compares an instruction.
func SeekNotBelow(x []float32, from int, t float32) int {
	return seek(x, from, t, seekNotBelowAsm, func(v float32) bool { return !(v < t) })
}

// SeekAtMost returns the first index i >= from with x[i] <= t (false for
// a NaN), or len(x): SeekNotBelow for the smallest.
func SeekAtMost(x []float32, from int, t float32) int {
	return seek(x, from, t, seekAtMostAsm, func(v float32) bool { return v <= t })
}

// seek is SeekNotBelow and SeekAtMost: asm scans whole vectors, hit the
// tail.
func seek(x []float32, from int, t float32, asm func(*float32, int, float32) int, hit func(float32) bool) int {
	i := from
	if k := simdLen(len(x) - from); k > 0 {
		if i = from + asm(&x[from], k, t); i < from+k {
			return i
		}
	}
	for ; i < len(x); i++ {
		if hit(x[i]) {
			return i
		}
	}
	return len(x)
}

// Sub sets dst[i] = a[i] - b[i].
func Sub(dst, a, b []float32) {
	n := len(dst)
	a, b = a[:n], b[:n]
	k := simdLen(n)
	if k > 0 {
		subAsm(&dst[0], &a[0], &b[0], k)
	}
	for i := k; i < n; i++ {
		dst[i] = a[i] - b[i]
	}
}

// SubScalar sets dst[i] = a[i] - v.
func SubScalar(dst, a []float32, v float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		subScalarAsm(&dst[0], &a[0], k, v)
	}
	for i := k; i < n; i++ {
		dst[i] = a[i] - v
	}
}

// RSubScalar sets dst[i] = v - a[i].
func RSubScalar(dst, a []float32, v float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		rsubScalarAsm(&dst[0], &a[0], k, v)
	}
	for i := k; i < n; i++ {
		dst[i] = v - a[i]
	}
}

// RDivScalar sets dst[i] = v / a[i].
func RDivScalar(dst, a []float32, v float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		rdivScalarAsm(&dst[0], &a[0], k, v)
	}
	for i := k; i < n; i++ {
		dst[i] = v / a[i]
	}
}

// Mul sets dst[i] = a[i] * b[i].
func Mul(dst, a, b []float32) {
	n := len(dst)
	a, b = a[:n], b[:n]
	k := simdLen(n)
	if k > 0 {
		mulAsm(&dst[0], &a[0], &b[0], k)
	}
	for i := k; i < n; i++ {
		dst[i] = a[i] * b[i]
	}
}

// AddScalar sets dst[i] = a[i] + v.
func AddScalar(dst, a []float32, v float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		addScalarAsm(&dst[0], &a[0], k, v)
	}
	for i := k; i < n; i++ {
		dst[i] = a[i] + v
	}
}

// AddScalar2 sets dst[i] = (a[i] + u) + v: AddScalar by u, then by v, in
// one pass (LogSoftmax's x - max - log(sum)), with the two adds' bits.
func AddScalar2(dst, a []float32, u, v float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		addScalar2Asm(&dst[0], &a[0], k, u, v)
	}
	for i := k; i < n; i++ {
		dst[i] = (a[i] + u) + v
	}
}

// MulScalar sets dst[i] = a[i] * v.
func MulScalar(dst, a []float32, v float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		mulScalarAsm(&dst[0], &a[0], k, v)
	}
	for i := k; i < n; i++ {
		dst[i] = a[i] * v
	}
}

// DivScalar sets dst[i] = a[i] / v.
func DivScalar(dst, a []float32, v float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		divScalarAsm(&dst[0], &a[0], k, v)
	}
	for i := k; i < n; i++ {
		dst[i] = a[i] / v
	}
}

// MulAddMax sets dst[i] = a[i]*v + b[i], rounded after the multiply and
// after the add (the bits of MulScalar then Add), and returns MaxOf(dst):
// attention's scale, mask and row maximum in one pass. dst may be a.
func MulAddMax(dst, a, b []float32, v float32) float32 {
	return scaleAddMax(dst, a, b, v, false)
}

// DivAddMax is MulAddMax for a scale that divides: dst[i] = a[i]/v + b[i].
func DivAddMax(dst, a, b []float32, v float32) float32 {
	return scaleAddMax(dst, a, b, v, true)
}

func scaleAddMax(dst, a, b []float32, v float32, div bool) float32 {
	n := len(dst)
	a, b = a[:n], b[:n]
	if useSIMD && n > 0 {
		// The assembly takes any n (a masked last step).
		if div {
			return divAddMaxAsm(&dst[0], &a[0], &b[0], n, v)
		}
		return mulAddMaxAsm(&dst[0], &a[0], &b[0], n, v)
	}
	hi := float32(math.Inf(-1))
	for i := range n {
		var x float32
		if div {
			x = float32(a[i]/v) + b[i]
		} else {
			x = float32(a[i]*v) + b[i]
		}
		dst[i] = x
		if x > hi {
			hi = x
		}
	}
	return hi
}

// Affine sets dst[i] = a[i]*m + c (rounded after the multiply and after the add).
func Affine(dst, a []float32, m, c float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		affineAsm(&dst[0], &a[0], k, m, c)
	}
	for i := k; i < n; i++ {
		dst[i] = a[i]*m + c
	}
}

// NormAffine sets dst[i] = ((a[i] + neg) * inv) * s[i] + b[i], each operation
// rounded: the bits of AddScalar, MulScalar, Mul and Add in turn, in one pass
// (a row of LayerNormalization: its mean's negation, 1/sqrt(var + eps), the
// scale and the shift). Without b (nil) the shift is left out. dst may be a.
func NormAffine(dst, a, s, b []float32, neg, inv float32) {
	n := len(dst)
	a, s = a[:n], s[:n]
	if b != nil {
		b = b[:n]
	}
	k := simdLen(n)
	if k > 0 {
		if b != nil {
			normAffineAsm(&dst[0], &a[0], &s[0], &b[0], k, neg, inv)
		} else {
			normScaleAsm(&dst[0], &a[0], &s[0], k, neg, inv)
		}
	}
	for i := k; i < n; i++ {
		// The conversions round each product before the next step: Go may
		// otherwise fuse a multiply and an add (FMA on arm64).
		v := float32(float32(a[i]+neg)*inv) * s[i]
		if b != nil {
			v = float32(v) + b[i]
		}
		dst[i] = v
	}
}

// HardSwish sets dst[i] = a[i] * min(max(a[i]/6 + 1/2, 0), 1), rounding the
// affine step, the clip and the product as Affine, Clip and Mul do (the
// same bits as those three passes), in one pass. dst may be a.
func HardSwish(dst, a []float32) {
	const m, c = float32(1.0 / 6), float32(0.5)
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		hardSwishAsm(&dst[0], &a[0], k, m, c, 0, 1)
	}
	for i := k; i < n; i++ {
		x := a[i]
		t := float32(x*m) + c // the conversion keeps the multiply rounded (no FMA)
		if t < 0 {
			t = 0
		}
		if t > 1 {
			t = 1
		}
		dst[i] = x * t
	}
}

// HardSwish6 sets dst[i] = a[i] * min(max(a[i] + 3, 0), 6) / 6, rounding
// after the add, the clip, the product and the division: the bits of the
// Add, Clip, Mul, Div nodes that exporters write for HardSwish, in one pass.
// dst may be a.
func HardSwish6(dst, a []float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		hardSwish6Asm(&dst[0], &a[0], k, 3, 0, 6, 6)
	}
	for i := k; i < n; i++ {
		x := a[i]
		t := x + 3
		if t < 0 {
			t = 0
		}
		if t > 6 {
			t = 6
		}
		p := x * t
		dst[i] = p / 6
	}
}

// Clip sets dst[i] to a[i] limited to [lo, hi] (lo first, so hi wins if lo > hi);
// NaN passes through.
func Clip(dst, a []float32, lo, hi float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		clipAsm(&dst[0], &a[0], k, lo, hi)
	}
	for i := k; i < n; i++ {
		v := a[i]
		if v < lo {
			v = lo
		}
		if v > hi {
			v = hi
		}
		dst[i] = v
	}
}

// QuantizeRound sets dst[i] = min(max(RoundHalfEven(a[i]/s) + zp, lo), hi):
// QuantizeLinear's arithmetic before the conversion to its integer type, in
// float32. The quotient is rounded as float32 division rounds it, and the
// rounding to an integer is exact; so is adding an integer zero point while
// the sum stays within 2^24, and past that the clamp to an integer type's
// range decides alone, so the result equals the float64 formula's. A NaN
// stays NaN. dst may be a.
func QuantizeRound(dst, a []float32, s, zp, lo, hi float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		quantizeAsm(&dst[0], &a[0], k, s, zp, lo, hi)
	}
	for i := k; i < n; i++ {
		v := float32(math.RoundToEven(float64(a[i]/s))) + zp
		if v < lo { // NaN compares false and stays
			v = lo
		}
		if v > hi {
			v = hi
		}
		dst[i] = v
	}
}

// Quantize8 sets dst[i] = T(int32(v)) for v the value QuantizeRound gives
// a[i] (0 for a NaN, as Go converts it), lo and hi within T's range:
// QuantizeLinear per tensor into 8-bit integers in one pass.
func Quantize8[T uint8 | int8](dst []T, a []float32, s, zp, lo, hi float32) {
	n := len(dst)
	a = a[:n]
	if quantWide && n > 0 {
		quant8AVX512((*byte)(unsafe.Pointer(&dst[0])), &a[0], n, s, zp, lo, hi)
		return
	}
	k := 0
	if simdLen(n) > 0 {
		k = n &^ 15
	}
	if k > 0 {
		switch d := any(dst).(type) {
		case []uint8:
			quantU8Asm(&d[0], &a[0], k, s, zp, lo, hi)
		case []int8:
			quantI8Asm(&d[0], &a[0], k, s, zp, lo, hi)
		}
	}
	for i := k; i < n; i++ {
		dst[i] = quantCode[T](a[i]/s, zp, lo, hi)
	}
}

// Select sets dst[i] = a where c[i], else b: Where of two scalars (a causal
// mask's 0 and -Inf), SelectXY with both sides scalars.
func Select(dst []float32, c []bool, a, b float32) {
	SelectXY(dst, c, []float32{a}, 0, []float32{b}, 0)
}

// SelectXY sets dst[i] = x[i*sx] where c[i], else y[i*sy], with sx and sy
// 0 (a scalar: x[0] for every i) or 1 (a run): Where of a mask against a
// tensor and a scalar or two tensors. The values are copied as bits.
func SelectXY(dst []float32, c []bool, x []float32, sx int, y []float32, sy int) {
	n := len(dst)
	c = c[:n]
	if sx != 0 {
		x = x[:n]
	}
	if sy != 0 {
		y = y[:n]
	}
	k := simdLen(n)
	if k > 0 {
		// A scalar is read as 8 copies of itself, the pointer not advancing.
		var xb, yb [8]float32
		xp, yp := &x[0], &y[0]
		if sx == 0 {
			for i := range xb {
				xb[i] = x[0]
			}
			xp = &xb[0]
		}
		if sy == 0 {
			for i := range yb {
				yb[i] = y[0]
			}
			yp = &yb[0]
		}
		selectXYAsm(&dst[0], &c[0], xp, 32*sx, yp, 32*sy, k)
	}
	for i := k; i < n; i++ {
		if c[i] {
			dst[i] = x[i*sx]
		} else {
			dst[i] = y[i*sy]
		}
	}
}

// Dequantize sets dst[i] = float32(int32(src[i]) - zp) * s: DequantizeLinear
// with one scale and zero point, the bits of that expression on every path
// (the difference converts to float32 exactly). 8-bit inputs take AVX2.
func Dequantize[T uint8 | int8 | uint16 | int16 | int32](dst []float32, src []T, zp int32, s float32) {
	n := len(dst)
	src = src[:n]
	k := 0
	switch d := any(src).(type) {
	case []uint8:
		if k = simdLen(n); k > 0 {
			dequantU8Asm(&dst[0], &d[0], k, zp, s)
		}
	case []int8:
		if k = simdLen(n); k > 0 {
			dequantI8Asm(&dst[0], &d[0], k, zp, s)
		}
	}
	for i := k; i < n; i++ {
		dst[i] = float32(int32(src[i])-zp) * s
	}
}

// Axpy sets dst[i] += alpha * x[i].
func Axpy(dst, x []float32, alpha float32) {
	n := len(dst)
	x = x[:n]
	k := simdLen(n)
	if k > 0 {
		axpyAsm(&dst[0], &x[0], k, alpha)
	}
	for i := k; i < n; i++ {
		dst[i] += alpha * x[i]
	}
}
