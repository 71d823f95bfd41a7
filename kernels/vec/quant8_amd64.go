//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

// quant512: AVX-512F's rounding (VRNDSCALEPS), masking and byte stores
// (VPMOVDB) for 8-bit quantization sixteen values a step.
var quant512 = cpu.X86.HasAVX512F

//go:noescape
func quant8AVX512(dst *byte, a *float32, n int, s, zp, lo, hi float32)

//go:noescape
func requant8AVX512(dst *byte, acc *int32, n int, mult *float32, mstep int, zp, lo, hi float32)

//go:noescape
func requantF8AVX512(dst *byte, src *float32, n int, add, mult, zp, lo, hi float32)

//go:noescape
func qlAdd8AVX512(dst, x, y *byte, n, ystep, signed int, rx, ry, fixed, lo, hi float32)

//go:noescape
func qlMul8AVX512(dst, x, y *byte, n, ystep, signed int, zx, zy int32, ratio, zc, lo, hi float32)

// lookupVBMI: AVX-512 VBMI's byte permutes (VPERMI2B), a 256-byte table
// lookup 64 bytes a step.
var lookupVBMI = cpu.X86.HasAVX512VBMI && cpu.X86.HasAVX512BW

//go:noescape
func lookup8VBMI(dst, src *byte, n int, table *[256]byte)
