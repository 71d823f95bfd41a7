//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

func init() { useSIMD = cpu.X86.HasAVX2 }

//go:noescape
func addAVX2(dst, a, b *float32, n int)

//go:noescape
func mulAVX2(dst, a, b *float32, n int)

//go:noescape
func addScalarAVX2(dst, a *float32, n int, v float32)

//go:noescape
func mulScalarAVX2(dst, a *float32, n int, v float32)

//go:noescape
func divScalarAVX2(dst, a *float32, n int, v float32)

//go:noescape
func affineAVX2(dst, a *float32, n int, m, c float32)

//go:noescape
func clipAVX2(dst, a *float32, n int, lo, hi float32)

//go:noescape
func axpyAVX2(dst, x *float32, n int, alpha float32)

//go:noescape
func hardSwishAVX2(dst, a *float32, n int, m, c, lo, hi float32)

//go:noescape
func hardSwish6AVX2(dst, a *float32, n int, c, lo, hi, d float32)

//go:noescape
func minMaxAVX2(x *float32, n int, lanes *[16]float32)

//go:noescape
func maxOfAVX2(x *float32, n int, lanes *[8]float32)

var (
	maxOfAsm      = maxOfAVX2
	minMaxAsm     = minMaxAVX2
	addAsm        = addAVX2
	mulAsm        = mulAVX2
	addScalarAsm  = addScalarAVX2
	mulScalarAsm  = mulScalarAVX2
	divScalarAsm  = divScalarAVX2
	affineAsm     = affineAVX2
	clipAsm       = clipAVX2
	axpyAsm       = axpyAVX2
	hardSwishAsm  = hardSwishAVX2
	hardSwish6Asm = hardSwish6AVX2
)
