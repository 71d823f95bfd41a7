//go:build !amd64 || purego

package vec

// Without assembly simdLen is always 0 and these are never called.
func addAsm(dst, a, b *float32, n int)                                  {}
func add3Asm(dst, a, b, c *float32, n int)                              {}
func seekNotBelowAsm(x *float32, n int, t float32) int                  { return 0 }
func seekAtMostAsm(x *float32, n int, t float32) int                    { return 0 }
func mulAsm(dst, a, b *float32, n int)                                  {}
func addScalarAsm(dst, a *float32, n int, v float32)                    {}
func addScalar2Asm(dst, a *float32, n int, u, v float32)                {}
func mulScalarAsm(dst, a *float32, n int, v float32)                    {}
func divScalarAsm(dst, a *float32, n int, v float32)                    {}
func subAsm(dst, a, b *float32, n int)                                  {}
func subScalarAsm(dst, a *float32, n int, v float32)                    {}
func rsubScalarAsm(dst, a *float32, n int, v float32)                   {}
func rdivScalarAsm(dst, a *float32, n int, v float32)                   {}
func affineAsm(dst, a *float32, n int, m, c float32)                    {}
func normAffineAsm(dst, a, s, b *float32, n int, neg, inv float32)      {}
func normScaleAsm(dst, a, s *float32, n int, neg, inv float32)          {}
func clipAsm(dst, a *float32, n int, lo, hi float32)                    {}
func quantizeAsm(dst, a *float32, n int, s, zp, lo, hi float32)         {}
func axpyAsm(dst, x *float32, n int, alpha float32)                     {}
func hardSwishAsm(dst, a *float32, n int, m, c, lo, hi float32)         {}
func hardSwish6Asm(dst, a *float32, n int, c, lo, hi, d float32)        {}
func minMaxAsm(x *float32, n int, lanes *[16]float32)                   {}
func maxOfAsm(x *float32, n int) float32                                { return 0 }
func mulAddMaxAsm(dst, a, b *float32, n int, v float32) float32         { return 0 }
func divAddMaxAsm(dst, a, b *float32, n int, v float32) float32         { return 0 }
func dequantU8Asm(dst *float32, src *uint8, n int, zp int32, s float32) {}
func dequantI8Asm(dst *float32, src *int8, n int, zp int32, s float32)  {}
func quantU8Asm(dst *uint8, a *float32, n int, s, zp, lo, hi float32)   {}
func quantI8Asm(dst *int8, a *float32, n int, s, zp, lo, hi float32)    {}
func sqrtAsm(dst, a *float32, n int)                                    {}
func floorAsm(dst, a *float32, n int)                                   {}
func ceilAsm(dst, a *float32, n int)                                    {}
func roundEvenAsm(dst, a *float32, n int)                               {}
func reciprocalAsm(dst, a *float32, n int)                              {}
func absAsm(dst, a *float32, n int)                                     {}
func negAsm(dst, a *float32, n int)                                     {}
func leakyReluAsm(dst, a *float32, n int, alpha float32)                {}
func affineF64Asm(dst, a *float32, n int, k, c float64)                 {}
func double2Asm(dst, a *float32, n int)                                 {}

func selectXYAsm(dst *float32, c *bool, x *float32, xstep int, y *float32, ystep int, n int) {}
