//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

func init() {
	useFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	use512 = useFMA && cpu.X86.HasAVX512F
}

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
func expSubSumAVX2(dst, x *float32, n int, sub float32, acc *[8]float64)

//go:noescape
func expAVX512(dst, x *float32, n int)

//go:noescape
func logAVX512(dst, x *float32, n int)

//go:noescape
func sigmoidAVX512(dst, x *float32, n int)

//go:noescape
func tanhAVX512(dst, x *float32, n int)

//go:noescape
func erfAVX512(dst, x *float32, n int)

//go:noescape
func siluAVX512(dst, x *float32, n int)

//go:noescape
func geluErfAVX512(dst, x *float32, n int)

//go:noescape
func geluTanhAVX512(dst, x *float32, n int)

//go:noescape
func mishAVX512(dst, x *float32, n int)

//go:noescape
func softplusAVX512(dst, x *float32, n int)

//go:noescape
func eluAVX512(dst, x *float32, n int, alpha float32)

//go:noescape
func expSubSumAVX512(dst, x *float32, n int, sub float32, acc *[8]float64)

//go:noescape
func softmaxShortAVX512(dst, x *float32, rows, t, ld int, maxes *float32)

//go:noescape
func softmaxRowsAVX512(dst, x *float32, rows, t, ld int, maxes *float32)

// softmaxRowsAsm runs softmaxShortAVX512 (rows of 16 or fewer) or
// softmaxRowsAVX512 and reports true, or false where the CPU has no
// AVX-512.
func softmaxRowsAsm(dst, x *float32, rows, t, ld int, maxes *float32) bool {
	switch {
	case !use512:
		return false
	case t <= 16:
		softmaxShortAVX512(dst, x, rows, t, ld, maxes)
	default:
		softmaxRowsAVX512(dst, x, rows, t, ld, maxes)
	}
	return true
}

//go:noescape
func sumF64AVX2(x *float32, n int, acc *[4]float64)

//go:noescape
func sumSqDevAVX2(x *float32, n int, mean float64, acc *[4]float64)

// Direct calls, not function values (the AVX-512 forms take any n, the
// AVX2 ones whole vectors, see unary): escape analysis then sees the
// assembly's go:noescape, and the small accumulator and lane arrays the
// callers pass stay on the stack instead of one heap allocation per call.
func sumF64Asm(x *float32, n int, acc *[4]float64)                 { sumF64AVX2(x, n, acc) }
func sumSqDevAsm(x *float32, n int, mean float64, acc *[4]float64) { sumSqDevAVX2(x, n, mean, acc) }
func expAsm(dst, x *float32, n int)                                { byISA(expAVX2, expAVX512, dst, x, n) }
func logAsm(dst, x *float32, n int)                                { byISA(logAVX2, logAVX512, dst, x, n) }
func sigmoidAsm(dst, x *float32, n int)                            { byISA(sigmoidAVX2, sigmoidAVX512, dst, x, n) }
func tanhAsm(dst, x *float32, n int)                               { byISA(tanhAVX2, tanhAVX512, dst, x, n) }
func siluAsm(dst, x *float32, n int)                               { byISA(siluAVX2, siluAVX512, dst, x, n) }
func geluTanhAsm(dst, x *float32, n int)                           { byISA(geluTanhAVX2, geluTanhAVX512, dst, x, n) }
func mishAsm(dst, x *float32, n int)                               { byISA(mishAVX2, mishAVX512, dst, x, n) }
func softplusAsm(dst, x *float32, n int)                           { byISA(softplusAVX2, softplusAVX512, dst, x, n) }

// Erf and GeluErf run their AVX-512 forms a block at a time (erfsplit_amd64.go);
// erfAVX512 and geluErfAVX512, the one-pass forms, are the tests' reference.
func erfAsm(dst, x *float32, n int) {
	if use512 {
		erfBlocks(false, dst, x, n)
	} else {
		erfAVX2(dst, x, n)
	}
}

func geluErfAsm(dst, x *float32, n int) {
	if use512 {
		erfBlocks(true, dst, x, n)
	} else {
		geluErfAVX2(dst, x, n)
	}
}

// byISA runs the AVX-512 form of a unary routine where the CPU has it, else
// the AVX2 one (unary passes these on as function values anyway).
func byISA(avx2, avx512 func(dst, x *float32, n int), dst, x *float32, n int) {
	if use512 {
		avx512(dst, x, n)
	} else {
		avx2(dst, x, n)
	}
}

func eluAsm(dst, x *float32, n int, alpha float32) {
	if use512 {
		eluAVX512(dst, x, n, alpha)
	} else {
		eluAVX2(dst, x, n, alpha)
	}
}
func expSubSumAsm(dst, x *float32, n int, sub float32, acc *[8]float64) {
	if use512 {
		expSubSumAVX512(dst, x, n, sub, acc)
	} else {
		expSubSumAVX2(dst, x, n, sub, acc)
	}
}
