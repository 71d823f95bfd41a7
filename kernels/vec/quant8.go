package vec

import (
	"math"
	"unsafe"
)

// quantWide says whether Quantize8 and Requant8 take their AVX-512 loops
// (tests switch it, to hold the other paths to the same bits).
var quantWide = quant512

// Requant8 sets dst[i] to the 8-bit code of the int32 accumulator acc[i]
// under multiplier m (mult[0] for every i when mult holds one, else
// mult[i]): float32(acc[i]) * m in float32, rounded half to even, plus zp,
// saturated to [lo, hi] (within T's range), 0 where the product is NaN.
// It is the requantization of an integer convolution or product (ONNX
// Runtime's QLinearConv and QLinearMatMul arithmetic) in one pass.
func Requant8[T uint8 | int8](dst []T, acc []int32, mult []float32, zp, lo, hi float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	acc = acc[:n]
	each := len(mult) != 1
	if each {
		mult = mult[:n]
	}
	if quantWide {
		step := 0
		if each {
			step = 1
		}
		requant8AVX512((*byte)(unsafe.Pointer(&dst[0])), &acc[0], n, &mult[0], step, zp, lo, hi)
		return
	}
	m := mult[0]
	for i, a := range acc {
		if each {
			m = mult[i]
		}
		dst[i] = quantCode[T](float32(a)*m, zp, lo, hi)
	}
}

// RequantFloat8 is Requant8 of sums held in float32 (integers that float32
// holds exactly, as the float kernels give them when every partial sum is
// under 2^24), each plus add (an integer, the op's bias) first, under one
// multiplier: (src[i] + add) * mult, rounded half to even, plus zp,
// saturated to [lo, hi]. It gives Requant8's codes for the int32 sums
// when src[i] + add is exact in float32 (magnitude at most 2^24).
func RequantFloat8[T uint8 | int8](dst []T, src []float32, add, mult, zp, lo, hi float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	src = src[:n]
	if quantWide {
		requantF8AVX512((*byte)(unsafe.Pointer(&dst[0])), &src[0], n, add, mult, zp, lo, hi)
		return
	}
	for i, v := range src {
		dst[i] = quantCode[T]((v+add)*mult, zp, lo, hi)
	}
}

// quantCode is one value's code: v rounded half to even, plus zp, clamped
// to [lo, hi]; 0 for NaN.
func quantCode[T uint8 | int8](v, zp, lo, hi float32) T {
	if v != v {
		return 0
	}
	r := float32(math.RoundToEven(float64(v))) + zp
	return T(int32(max(lo, min(hi, r))))
}

// FMA32 is the float32 fused multiply-add x*y + z, rounded once (half to
// even), as the CPU's VFMADD computes it. x*y is exact in float64; the
// float64 sum's own rounding error (TwoSum) decides the one case where
// rounding that sum to float32 again would err: a sum exactly halfway
// between two float32 values.
func FMA32(x, y, z float32) float32 {
	p, c := float64(x)*float64(y), float64(z)
	s := p + c
	bv := s - p
	e := (p - (s - bv)) + (c - bv)
	r := float32(s)
	if e == 0 || math.IsInf(s, 0) || math.IsNaN(s) {
		return r
	}
	// Halfway: the 29 bits of a float64 significand below float32's 24
	// hold exactly one half (normal float32 results).
	if bits := math.Float64bits(s); bits&(1<<29-1) != 1<<28 {
		return r
	}
	switch {
	case e > 0 && float64(r) < s:
		r = math.Nextafter32(r, float32(math.Inf(1)))
	case e < 0 && float64(r) > s:
		r = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	return r
}

// QLinearAdd8 sets dst[i] to ONNX Runtime's QLinearAdd code of x[i] and
// y[i] (y[0] for every i when ystep is 0), as its MLAS kernel computes it:
// fma(x, rx, fma(y, ry, fixed)) in float32 fused multiply-adds, rounded
// half to even, clamped to [lo, hi]. (rx and ry are the inputs' scales
// over the output's; fixed holds the zero points.)
func QLinearAdd8[T uint8 | int8](dst, x, y []T, ystep int, rx, ry, fixed, lo, hi float32) {
	if len(dst) == 0 {
		return
	}
	x, y = qlArgs(dst, x, y, ystep)
	if quantWide {
		yp, signed := qlOperand(y, ystep)
		qlAdd8AVX512((*byte)(unsafe.Pointer(&dst[0])), (*byte)(unsafe.Pointer(&x[0])), yp, len(dst), ystep, signed, rx, ry, fixed, lo, hi)
		return
	}
	for i, xv := range x {
		v := FMA32(float32(y[i*ystep]), ry, fixed)
		dst[i] = quantCode[T](FMA32(float32(xv), rx, v), 0, lo, hi)
	}
}

// QLinearMul8 sets dst[i] to ONNX Runtime's QLinearMul code of x[i] and
// y[i] (y[0] for every i when ystep is 0), as MLAS computes it: the exact
// integer product (x - zx) * (y - zy) in float32, times ratio, plus zc,
// rounded half to even, clamped to [lo, hi].
func QLinearMul8[T uint8 | int8](dst, x, y []T, ystep int, zx, zy int32, ratio, zc, lo, hi float32) {
	if len(dst) == 0 {
		return
	}
	x, y = qlArgs(dst, x, y, ystep)
	if quantWide {
		yp, signed := qlOperand(y, ystep)
		qlMul8AVX512((*byte)(unsafe.Pointer(&dst[0])), (*byte)(unsafe.Pointer(&x[0])), yp, len(dst), ystep, signed, zx, zy, ratio, zc, lo, hi)
		return
	}
	for i, xv := range x {
		p := (int32(xv) - zx) * (int32(y[i*ystep]) - zy)
		// The conversion keeps the product and the sum two roundings
		// where a compiler could fuse them.
		dst[i] = quantCode[T](float32(float32(p)*ratio)+zc, 0, lo, hi)
	}
}

// qlArgs is x and y held to dst's length (y to one value when ystep is
// 0): a short operand panics here, not in the assembly.
func qlArgs[T uint8 | int8](dst, x, y []T, ystep int) ([]T, []T) {
	if ystep == 0 {
		return x[:len(dst)], y[:1]
	}
	return x[:len(dst)], y[:len(dst)]
}

// qlOperand is y for the AVX-512 loops, which read sixteen values a step:
// with ystep 0, a copy of y[0] sixteen times over; and whether T is signed.
func qlOperand[T uint8 | int8](y []T, ystep int) (*byte, int) {
	var zero T
	signed := 0
	if zero-1 < 0 {
		signed = 1
	}
	if ystep != 0 {
		return (*byte)(unsafe.Pointer(&y[0])), signed
	}
	rep := new([16]T)
	for i := range rep {
		rep[i] = y[0]
	}
	return (*byte)(unsafe.Pointer(&rep[0])), signed
}

// useLookupVBMI says whether Lookup8 takes its AVX-512 VBMI loop (tests
// switch it).
var useLookupVBMI = lookupVBMI

// Lookup8 sets dst[i] = table[src[i]]: an elementwise op on 8-bit codes
// through the table of its 256 results (QLinearSigmoid, QLinearLeakyRelu).
func Lookup8(dst, src []byte, table *[256]byte) {
	n := len(dst)
	src = src[:n]
	if useLookupVBMI && n > 0 {
		lookup8VBMI(&dst[0], &src[0], n, table)
		return
	}
	for i, v := range src {
		dst[i] = table[v]
	}
}
