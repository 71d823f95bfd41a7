//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

func init() { useSIMD = cpu.X86.HasAVX2 }

//go:noescape
func addAVX2(dst, a, b *float32, n int)

//go:noescape
func normAffineAVX2(dst, a, s, b *float32, n int, neg, inv float32)

//go:noescape
func normScaleAVX2(dst, a, s *float32, n int, neg, inv float32)

//go:noescape
func subAVX2(dst, a, b *float32, n int)

//go:noescape
func subScalarAVX2(dst, a *float32, n int, v float32)

//go:noescape
func rsubScalarAVX2(dst, a *float32, n int, v float32)

//go:noescape
func rdivScalarAVX2(dst, a *float32, n int, v float32)

//go:noescape
func mulAVX2(dst, a, b *float32, n int)

//go:noescape
func addScalarAVX2(dst, a *float32, n int, v float32)

//go:noescape
func addScalar2AVX2(dst, a *float32, n int, u, v float32)

//go:noescape
func mulScalarAVX2(dst, a *float32, n int, v float32)

//go:noescape
func divScalarAVX2(dst, a *float32, n int, v float32)

//go:noescape
func affineAVX2(dst, a *float32, n int, m, c float32)

//go:noescape
func clipAVX2(dst, a *float32, n int, lo, hi float32)

//go:noescape
func quantizeAVX2(dst, a *float32, n int, s, zp, lo, hi float32)

//go:noescape
func dequantU8AVX2(dst *float32, src *uint8, n int, zp int32, s float32)

//go:noescape
func dequantI8AVX2(dst *float32, src *int8, n int, zp int32, s float32)

//go:noescape
func seekNotBelowAVX2(x *float32, n int, t float32) int

//go:noescape
func seekAtMostAVX2(x *float32, n int, t float32) int

//go:noescape
func add3AVX2(dst, a, b, e *float32, n int)

//go:noescape
func quantU8AVX2(dst *uint8, a *float32, n int, s, zp, lo, hi float32)

//go:noescape
func quantI8AVX2(dst *int8, a *float32, n int, s, zp, lo, hi float32)

//go:noescape
func axpyAVX2(dst, x *float32, n int, alpha float32)

//go:noescape
func hardSwishAVX2(dst, a *float32, n int, m, c, lo, hi float32)

//go:noescape
func hardSwish6AVX2(dst, a *float32, n int, c, lo, hi, d float32)

//go:noescape
func minMaxAVX2(x *float32, n int, lanes *[16]float32)

//go:noescape
func maxOfAVX2(x *float32, n int) float32

//go:noescape
func mulAddMaxAVX2(dst, a, b *float32, n int, v float32) float32

//go:noescape
func divAddMaxAVX2(dst, a, b *float32, n int, v float32) float32

// Direct calls, not function values: escape analysis then sees the
// assembly's go:noescape, and the small accumulator and lane arrays the
// callers pass stay on the stack instead of one heap allocation per call.
func maxOfAsm(x *float32, n int) float32 { return maxOfAVX2(x, n) }
func mulAddMaxAsm(dst, a, b *float32, n int, v float32) float32 {
	return mulAddMaxAVX2(dst, a, b, n, v)
}
func divAddMaxAsm(dst, a, b *float32, n int, v float32) float32 {
	return divAddMaxAVX2(dst, a, b, n, v)
}
func minMaxAsm(x *float32, n int, lanes *[16]float32)    { minMaxAVX2(x, n, lanes) }
func addAsm(dst, a, b *float32, n int)                   { addAVX2(dst, a, b, n) }
func add3Asm(dst, a, b, c *float32, n int)               { add3AVX2(dst, a, b, c, n) }
func seekNotBelowAsm(x *float32, n int, t float32) int   { return seekNotBelowAVX2(x, n, t) }
func seekAtMostAsm(x *float32, n int, t float32) int     { return seekAtMostAVX2(x, n, t) }
func mulAsm(dst, a, b *float32, n int)                   { mulAVX2(dst, a, b, n) }
func addScalarAsm(dst, a *float32, n int, v float32)     { addScalarAVX2(dst, a, n, v) }
func mulScalarAsm(dst, a *float32, n int, v float32)     { mulScalarAVX2(dst, a, n, v) }
func addScalar2Asm(dst, a *float32, n int, u, v float32) { addScalar2AVX2(dst, a, n, u, v) }
func divScalarAsm(dst, a *float32, n int, v float32)     { divScalarAVX2(dst, a, n, v) }
func subAsm(dst, a, b *float32, n int)                   { subAVX2(dst, a, b, n) }
func subScalarAsm(dst, a *float32, n int, v float32)     { subScalarAVX2(dst, a, n, v) }
func rsubScalarAsm(dst, a *float32, n int, v float32)    { rsubScalarAVX2(dst, a, n, v) }
func rdivScalarAsm(dst, a *float32, n int, v float32)    { rdivScalarAVX2(dst, a, n, v) }
func affineAsm(dst, a *float32, n int, m, c float32)     { affineAVX2(dst, a, n, m, c) }
func normAffineAsm(dst, a, s, b *float32, n int, neg, inv float32) {
	normAffineAVX2(dst, a, s, b, n, neg, inv)
}
func normScaleAsm(dst, a, s *float32, n int, neg, inv float32) { normScaleAVX2(dst, a, s, n, neg, inv) }
func clipAsm(dst, a *float32, n int, lo, hi float32)           { clipAVX2(dst, a, n, lo, hi) }
func quantizeAsm(dst, a *float32, n int, s, zp, lo, hi float32) {
	quantizeAVX2(dst, a, n, s, zp, lo, hi)
}
func dequantU8Asm(dst *float32, src *uint8, n int, zp int32, s float32) {
	dequantU8AVX2(dst, src, n, zp, s)
}
func dequantI8Asm(dst *float32, src *int8, n int, zp int32, s float32) {
	dequantI8AVX2(dst, src, n, zp, s)
}
func quantU8Asm(dst *uint8, a *float32, n int, s, zp, lo, hi float32) {
	quantU8AVX2(dst, a, n, s, zp, lo, hi)
}
func quantI8Asm(dst *int8, a *float32, n int, s, zp, lo, hi float32) {
	quantI8AVX2(dst, a, n, s, zp, lo, hi)
}
func axpyAsm(dst, x *float32, n int, alpha float32) { axpyAVX2(dst, x, n, alpha) }
func hardSwishAsm(dst, a *float32, n int, m, c, lo, hi float32) {
	hardSwishAVX2(dst, a, n, m, c, lo, hi)
}
func hardSwish6Asm(dst, a *float32, n int, c, lo, hi, d float32) {
	hardSwish6AVX2(dst, a, n, c, lo, hi, d)
}

//go:noescape
func sqrtAVX2(dst, a *float32, n int)

//go:noescape
func floorAVX2(dst, a *float32, n int)

//go:noescape
func ceilAVX2(dst, a *float32, n int)

//go:noescape
func roundEvenAVX2(dst, a *float32, n int)

//go:noescape
func reciprocalAVX2(dst, a *float32, n int)

//go:noescape
func absAVX2(dst, a *float32, n int)

//go:noescape
func negAVX2(dst, a *float32, n int)

//go:noescape
func leakyReluAVX2(dst, a *float32, n int, alpha float32)

func sqrtAsm(dst, a *float32, n int)                     { sqrtAVX2(dst, a, n) }
func floorAsm(dst, a *float32, n int)                    { floorAVX2(dst, a, n) }
func ceilAsm(dst, a *float32, n int)                     { ceilAVX2(dst, a, n) }
func roundEvenAsm(dst, a *float32, n int)                { roundEvenAVX2(dst, a, n) }
func reciprocalAsm(dst, a *float32, n int)               { reciprocalAVX2(dst, a, n) }
func absAsm(dst, a *float32, n int)                      { absAVX2(dst, a, n) }
func negAsm(dst, a *float32, n int)                      { negAVX2(dst, a, n) }
func leakyReluAsm(dst, a *float32, n int, alpha float32) { leakyReluAVX2(dst, a, n, alpha) }

//go:noescape
func affineF64AVX2(dst, a *float32, n int, k, c float64)

func affineF64Asm(dst, a *float32, n int, k, c float64) { affineF64AVX2(dst, a, n, k, c) }

//go:noescape
func double2AVX2(dst, a *float32, n int)

func double2Asm(dst, a *float32, n int) { double2AVX2(dst, a, n) }

//go:noescape
func selectXYAVX2(dst *float32, c *bool, x *float32, xstep int, y *float32, ystep int, n int)

func selectXYAsm(dst *float32, c *bool, x *float32, xstep int, y *float32, ystep int, n int) {
	selectXYAVX2(dst, c, x, xstep, y, ystep, n)
}
