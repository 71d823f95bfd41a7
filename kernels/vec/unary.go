package vec

import "math"

// Unary float32 maps that are exact: each result is the float32 rounding of
// the real (or float64) result, so the SIMD and scalar paths give the same
// bits. NaN stays NaN.

// unaryExact runs asm over the SIMD part of a and f over the rest.
func unaryExact(dst, a []float32, asm func(dst, a *float32, n int), f func(float32) float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		asm(&dst[0], &a[0], k)
	}
	for i := k; i < n; i++ {
		dst[i] = f(a[i])
	}
}

// Sqrt sets dst[i] = sqrt(a[i]), correctly rounded (NaN below 0).
func Sqrt(dst, a []float32) {
	unaryExact(dst, a, sqrtAsm, func(x float32) float32 { return float32(math.Sqrt(float64(x))) })
}

// Floor sets dst[i] = floor(a[i]).
func Floor(dst, a []float32) {
	unaryExact(dst, a, floorAsm, func(x float32) float32 { return float32(math.Floor(float64(x))) })
}

// Ceil sets dst[i] = ceil(a[i]).
func Ceil(dst, a []float32) {
	unaryExact(dst, a, ceilAsm, func(x float32) float32 { return float32(math.Ceil(float64(x))) })
}

// RoundEven sets dst[i] to a[i] rounded to the nearest integer, ties to even.
func RoundEven(dst, a []float32) {
	unaryExact(dst, a, roundEvenAsm, func(x float32) float32 { return float32(math.RoundToEven(float64(x))) })
}

// Reciprocal sets dst[i] = 1 / a[i].
func Reciprocal(dst, a []float32) {
	unaryExact(dst, a, reciprocalAsm, func(x float32) float32 { return 1 / x })
}

// Abs sets dst[i] = |a[i]| (the sign bit cleared).
func Abs(dst, a []float32) {
	unaryExact(dst, a, absAsm, func(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) })
}

// Neg sets dst[i] = -a[i] (the sign bit flipped).
func Neg(dst, a []float32) {
	unaryExact(dst, a, negAsm, func(x float32) float32 { return -x })
}

// LeakyRelu sets dst[i] = alpha*a[i] where a[i] < 0, else a[i] (-0 and NaN
// as they are).
func LeakyRelu(dst, a []float32, alpha float32) {
	n := len(dst)
	a = a[:n]
	k := simdLen(n)
	if k > 0 {
		leakyReluAsm(&dst[0], &a[0], k, alpha)
	}
	for i := k; i < n; i++ {
		if v := a[i]; v < 0 {
			dst[i] = alpha * v
		} else {
			dst[i] = v
		}
	}
}

// AffineF64 sets dst[i] = float32(float64(a[i])*k + c), the multiply and the
// add each rounded in float64 (no fused multiply-add).
func AffineF64(dst, a []float32, k, c float64) {
	n := len(dst)
	a = a[:n]
	j := simdLen(n)
	if j > 0 {
		affineF64Asm(&dst[0], &a[0], j, k, c)
	}
	for i := j; i < n; i++ {
		dst[i] = float32(float64(a[i])*k + c)
	}
}

// Double2 sets dst[2i] and dst[2i+1] to a[i] (len(dst) = 2*len(a)): a row
// of a 2x nearest-neighbour upsample.
func Double2(dst, a []float32) {
	n := len(a)
	dst = dst[:2*n]
	k := simdLen(n)
	if k > 0 {
		double2Asm(&dst[0], &a[0], k)
	}
	for i := k; i < n; i++ {
		dst[2*i], dst[2*i+1] = a[i], a[i]
	}
}
