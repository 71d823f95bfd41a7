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
