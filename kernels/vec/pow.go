package vec

import (
	"math"
	"math/bits"
)

// Pow and PowScalar give float32(math.Pow(float64(x), float64(y))) bit for
// bit at a small fraction of its cost (ONNX Pow with an exponent other than 2
// or 0.5 ran math.Pow per element).
//
// The fast lanes are finite x != 0 (x < 0 only with an integer y, |y| <
// 2^31) whose result is a normal float32. They compute, in float64,
//
//	x^y = 2^t,  t = y*log2|x|
//
// log2|x| = k + log2(m) with m in [sqrt(1/2), sqrt(2)) and, for
// s = (m-1)/(m+1), log2(m) = s*C1 + s^3*Q(s^2), C1 = 2/ln 2 (the series of
// 2*atanh(s)/ln 2 with a minimax Q); then 2^t = 2^n * 2^r with n = round(t),
// |r| <= 1/2, and 2^r = 1 + r*E(r) minimax. The polynomials are within 3e-18
// (log) and 2e-17 (exp) relative. With the roundings, mostly t's (whose
// error grows with |t|), the float64 result v is within 4e-14 relative of
// x^y (measured: 2.1e-14, 160 float64 ulps; 1.1e-15 for results between 2^-8
// and 2^8).
//
// float32(v) is then the correctly rounded x^y, and equal to float32 of
// math.Pow's own result, unless either value lies near a float32 rounding
// boundary (halfway between two float32s). A lane whose v is within
// powTieUlps float64 ulps (at most 2^-40 = 9.1e-13 relative) of one is
// recomputed with math.Pow itself, as are all lanes outside the fast cases
// (NaN, ±0, ±Inf, negative x with a non-integer y, overflow, underflow and
// subnormal results, and t within 2^-20 of -126 or 128). A result can
// therefore differ from math.Pow's only where math.Pow is itself off by more
// than ~4.4e-13 relative, which its repeated squaring for y's integer part
// (error about |y|*2^-53) reaches only for |y| in the thousands and beyond:
// in the test's 10^7 inputs, 6 results differ, all with |y| > 2*10^5 and by
// 1 ulp, and each one checked is correctly rounded where math.Pow is not.
// About 1 lane in 65,000 (2*powTieUlps/2^29) takes the math.Pow path.
//
// The assembly (AVX2+FMA, 4 float64 lanes a register; AVX-512, 8) performs
// powPositive's operations in the same order, so every path gives the same
// bits.

// powTieUlps is the half-width, in float64 ulps of v, of the band around a
// float32 rounding boundary where math.Pow decides.
const powTieUlps = 1 << 12

// Polynomial coefficients: "python3 gen_pow.py fit" (a Remez fit in mpmath),
// rounded to float64. Q fits (log2((1+s)/(1-s)) - C1*s)/s^3 in z = s^2 for
// |s| <= (sqrt(2)-1)/(sqrt(2)+1), weighted for the relative error of log2(m);
// E fits (2^r - 1)/r for |r| <= 1/2, weighted for the relative error of 2^r.
const (
	powLogC1 = 0x1.71547652b82fep+1 // 2/ln 2
	powLogQ0 = 0x1.ec709dc3a0435p-1
	powLogQ1 = 0x1.2776c50eea867p-1
	powLogQ2 = 0x1.a61762cec8db3p-2
	powLogQ3 = 0x1.484afd74edf75p-2
	powLogQ4 = 0x1.0ca125a2524d0p-2
	powLogQ5 = 0x1.c4730110f9889p-3
	powLogQ6 = 0x1.b597c2cf66972p-3

	powExpE1  = 0x1.62e42fefa39f3p-1
	powExpE2  = 0x1.ebfbdff82c598p-3
	powExpE3  = 0x1.c6b08d7048f31p-5
	powExpE4  = 0x1.3b2ab6fba1e1cp-7
	powExpE5  = 0x1.5d87fe7bbbe07p-10
	powExpE6  = 0x1.4309130961163p-13
	powExpE7  = 0x1.ffcbee3b0af8cp-17
	powExpE8  = 0x1.62bfd49ed0adfp-20
	powExpE9  = 0x1.b54167a0b9061p-24
	powExpE10 = 0x1.e605f979c7a5dp-28
	powExpE11 = 0x1.c0638527edf34p-32
)

// Bit constants of the reductions.
const (
	powSqrtHalf = 0x3FE6A09E667F3BCD // float64 bits of sqrt(1/2)
	// Adding 2^62 - bits(sqrt(1/2)) to x's bits puts its exponent, offset
	// so that m lands in [sqrt(1/2), sqrt(2)), plus 1024 in the top 12 bits
	// (the 2^62 keeps the sum positive for x < sqrt(1/2): AVX2 has no
	// 64-bit arithmetic shift).
	powLogAdd   = 1<<62 - powSqrtHalf
	powMantMask = 1<<52 - 1
	powKBits    = 0x4330000000000000 // 2^52 as bits: OR an integer < 2^52 in, subtract 2^52
	powKBias    = 0x1p52 + 1024
	powShift    = 0x1.8p52 // t + 1.5*2^52 rounds t to an integer, held in the low bits
	powOneBits  = 0x3FF0000000000000
	// -126 < t < 128 with a margin far above v's error (2^-20 in t is
	// 7e-7 relative in v): v is then a normal float32 (or rounds to Inf).
	powTHalf   = 127 - 0x1p-20
	powTieAdd  = 1<<28 + powTieUlps
	powTieMask = 1<<29 - 1 // the bits float32 rounding drops from a float64
)

// usePowAVX2 is set on amd64 with AVX2 and FMA, usePowAVX512 when the CPU
// also has AVX-512 (the same operations on twice the lanes, so the same
// bits); tests switch them.
var usePowAVX2, usePowAVX512 = false, false

// powBlock is how many elements one assembly call takes: its uint64 result
// has a bit for each group of 8 that holds a lane for math.Pow.
const powBlock = 512

// Pow sets dst[i] = x[i]^y[i] as float32(math.Pow(float64(x[i]),
// float64(y[i]))) does. dst may be x or y but not overlap them otherwise.
func Pow(dst, x, y []float32) {
	n := len(dst)
	x, y = x[:n], y[:n]
	if !usePowAVX2 {
		for i := range dst {
			dst[i] = pow32(x[i], y[i])
		}
		return
	}
	k := n &^ 7
	for i := 0; i < k; i += powBlock {
		m := min(powBlock, k-i)
		// A flagged group was not stored (so x and y are intact when dst
		// aliases them): redo its 8 lanes, the fast ones to the same bits.
		for redo := powAsm(dst[i:i+m], x[i:i+m], y[i:i+m]); redo != 0; redo &= redo - 1 {
			g := i + 8*bits.TrailingZeros64(redo)
			for j := g; j < g+8; j++ {
				dst[j] = pow32(x[j], y[j])
			}
		}
	}
	if k < n {
		// The tail through the assembly on a copy padded with 1^1.
		var bd, bx, by [8]float32
		for j := range bx {
			bx[j], by[j] = 1, 1
		}
		copy(bx[:], x[k:])
		copy(by[:], y[k:])
		if powAsm(bd[:], bx[:], by[:]) == 0 {
			copy(dst[k:], bd[:n-k])
			return
		}
		for j := k; j < n; j++ {
			dst[j] = pow32(x[j], y[j])
		}
	}
}

// PowScalar sets dst[i] = x[i]^y as float32(math.Pow(float64(x[i]),
// float64(y))) does. dst may be x but not overlap it otherwise.
func PowScalar(dst, x []float32, y float32) {
	n := len(dst)
	x = x[:n]
	if !usePowAVX2 || !(math.Abs(float64(y)) < math.Inf(1)) {
		for i := range dst {
			dst[i] = pow32(x[i], y)
		}
		return
	}
	k := n &^ 7
	for i := 0; i < k; i += powBlock {
		m := min(powBlock, k-i)
		for redo := powScalarAsm(dst[i:i+m], x[i:i+m], y); redo != 0; redo &= redo - 1 {
			g := i + 8*bits.TrailingZeros64(redo)
			for j := g; j < g+8; j++ {
				dst[j] = pow32(x[j], y)
			}
		}
	}
	if k < n {
		var bd, bx [8]float32
		for j := range bx {
			bx[j] = 1
		}
		copy(bx[:], x[k:])
		if powScalarAsm(bd[:], bx[:], y) == 0 {
			copy(dst[k:], bd[:n-k])
			return
		}
		for j := k; j < n; j++ {
			dst[j] = pow32(x[j], y)
		}
	}
}

// powAsm runs the assembly over len(dst) elements, a multiple of 8 up to
// powBlock: AVX-512 over the multiple of 16, AVX2 over a last 8.
func powAsm(dst, x, y []float32) uint64 {
	n := len(dst)
	if !usePowAVX512 || n < 16 {
		return powAVX2(&dst[0], &x[0], &y[0], n)
	}
	k := n &^ 15
	redo := powAVX512(&dst[0], &x[0], &y[0], k)
	if k < n {
		redo |= powAVX2(&dst[k], &x[k], &y[k], n-k) << (k / 8)
	}
	return redo
}

// powScalarAsm is powAsm for PowScalar.
func powScalarAsm(dst, x []float32, y float32) uint64 {
	n := len(dst)
	if !usePowAVX512 || n < 16 {
		return powScalarAVX2(&dst[0], &x[0], n, y)
	}
	k := n &^ 15
	redo := powScalarAVX512(&dst[0], &x[0], k, y)
	if k < n {
		redo |= powScalarAVX2(&dst[k], &x[k], n-k, y) << (k / 8)
	}
	return redo
}

// Pow1 is one element of Pow: x^y with Pow's bits, for broadcast loops
// that take one element at a time.
func Pow1(x, y float32) float32 { return pow32(x, y) }

// pow32 is one lane: the specification that the assembly follows operation
// for operation.
func pow32(x, y float32) float32 {
	v, sign, ok := powFast(x, y)
	if !ok {
		return float32(math.Pow(float64(x), float64(y)))
	}
	return math.Float32frombits(math.Float32bits(float32(v)) ^ sign)
}

// powFast returns |x|^y in float64 and the result's sign bit, or ok false
// when the lane is outside the fast cases or near a rounding boundary.
func powFast(x, y float32) (v float64, sign uint32, ok bool) {
	xd, yd := float64(x), float64(y)
	ax := math.Abs(xd)
	if !(ax > 0 && ax < math.Inf(1)) {
		return 0, 0, false // (a y that is not finite fails powPositive's range test)
	}
	if xd < 0 {
		// (-a)^y = ±a^y for an integer y, negative for an odd one. The
		// assembly tests y by a round trip through int32, so |y| < 2^31.
		if !(yd >= -0x1p31 && yd < 0x1p31 && yd == math.Trunc(yd)) {
			return 0, 0, false
		}
		sign = uint32(int64(yd)&1) << 31
	}
	v, ok = powPositive(ax, yd)
	if !ok || powNearTie(v) {
		return 0, 0, false
	}
	return v, sign, true
}

// powPositive is 2^(y*log2(x)) for finite x > 0, with ok false (a math.Pow
// lane) unless the result is a normal float32; each step is one assembly
// instruction.
func powPositive(x, y float64) (v float64, ok bool) {
	// log2(x) = k + log2(m).
	u := math.Float64bits(x) + powLogAdd
	k := math.Float64frombits(u>>52|powKBits) - powKBias
	m := math.Float64frombits(u&powMantMask + powSqrtHalf)
	f := m - 1       // exact
	s := f / (m + 1) // m+1 exact: m has float32's 24 bits
	z := s * s
	// Q(z) and E(r) by Estrin's scheme: the chain of dependent steps, not
	// the arithmetic, bounds the assembly's speed.
	z2 := z * z
	qa := math.FMA(powLogQ1, z, powLogQ0)
	qb := math.FMA(powLogQ3, z, powLogQ2)
	qc := math.FMA(powLogQ5, z, powLogQ4)
	qc = math.FMA(powLogQ6, z2, qc)
	qb = math.FMA(qc, z2, qb)
	q := math.FMA(qb, z2, qa)
	s3 := s * z
	l := math.FMA(s, powLogC1, math.FMA(s3, q, k)) // s*C1 added last, unrounded

	t := float64(y * l) // no fused multiply-add: the assembly rounds here
	if !(math.Abs(t-1) < powTHalf) {
		return 0, false // v could be subnormal or overflow; t is not finite
	}

	// 2^t = 2^n * 2^r.
	nb := t + powShift
	r := t - (nb - powShift) // exact
	r2 := r * r
	r4 := r2 * r2
	ea := math.FMA(powExpE2, r, powExpE1)
	eb := math.FMA(powExpE4, r, powExpE3)
	ec := math.FMA(powExpE6, r, powExpE5)
	ed := math.FMA(powExpE8, r, powExpE7)
	ee := math.FMA(powExpE10, r, powExpE9)
	ea = math.FMA(eb, r2, ea)
	ec = math.FMA(ed, r2, ec)
	ee = math.FMA(powExpE11, r2, ee)
	ec = math.FMA(ee, r4, ec)
	e := math.FMA(ec, r4, ea)
	p := math.FMA(e, r, 1)
	scale := math.Float64frombits(math.Float64bits(nb)<<52 + powOneBits)
	return p * scale, true
}

// powNearTie reports whether v is within powTieUlps of halfway between two
// float32s (in the bits that the conversion to float32 drops).
func powNearTie(v float64) bool {
	return (math.Float64bits(v)+powTieAdd)&powTieMask < 2*powTieUlps
}
