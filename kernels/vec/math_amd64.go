//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

func init() { useFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA }

//go:noescape
func expAVX2(dst, x *float32, n int)

//go:noescape
func logAVX2(dst, x *float32, n int)

//go:noescape
func sigmoidAVX2(dst, x *float32, n int)

//go:noescape
func tanhAVX2(dst, x *float32, n int)

//go:noescape
func erfAVX2(dst, x *float32, n int)

//go:noescape
func siluAVX2(dst, x *float32, n int)

//go:noescape
func geluErfAVX2(dst, x *float32, n int)

//go:noescape
func geluTanhAVX2(dst, x *float32, n int)

//go:noescape
func mishAVX2(dst, x *float32, n int)

//go:noescape
func softplusAVX2(dst, x *float32, n int)

//go:noescape
func eluAVX2(dst, x *float32, n int, alpha float32)

//go:noescape
func expSubSumAVX2(dst, x *float32, n int, sub float32, acc *[4]float64)

//go:noescape
func sumF64AVX2(x *float32, n int, acc *[4]float64)

//go:noescape
func sumSqDevAVX2(x *float32, n int, mean float64, acc *[4]float64)

var (
	sumF64Asm    = sumF64AVX2
	sumSqDevAsm  = sumSqDevAVX2
	expAsm       = expAVX2
	logAsm       = logAVX2
	sigmoidAsm   = sigmoidAVX2
	tanhAsm      = tanhAVX2
	erfAsm       = erfAVX2
	siluAsm      = siluAVX2
	geluErfAsm   = geluErfAVX2
	geluTanhAsm  = geluTanhAVX2
	mishAsm      = mishAVX2
	softplusAsm  = softplusAVX2
	eluAsm       = eluAVX2
	expSubSumAsm = expSubSumAVX2
)
