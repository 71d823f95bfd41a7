//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

//go:noescape
func interleave8AVX2(dst *float32, pos *int, src *float32, chans *[8]int, n int)

//go:noescape
func tapsC8AVX2(dst *float32, stride int, src *float32, base, offs *int, w *float32, taps int, bias *float32, ep *Epilogue8, n, nch int)

//go:noescape
func tapsC8x16AVX512(dst *float32, stride int, src *float32, base int, offs *int, w *float32, taps int, bias *float32, ep *Epilogue8, n, nch int)

// hasC8x16: runs of 16 or more consecutive positions take AVX-512.
var hasC8x16 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL

func tapsC8x16Asm(dst *float32, stride int, src *float32, base int, offs *int, w *float32, taps int, bias *float32, ep *Epilogue8, n, nch int) {
	tapsC8x16AVX512(dst, stride, src, base, offs, w, taps, bias, ep, n, nch)
}

func interleave8Asm(dst *float32, pos *int, src *float32, chans *[8]int, n int) {
	interleave8AVX2(dst, pos, src, chans, n)
}

func tapsC8Asm(dst *float32, stride int, src *float32, base, offs *int, w *float32, taps int, bias *float32, ep *Epilogue8, n, nch int) {
	tapsC8AVX2(dst, stride, src, base, offs, w, taps, bias, ep, n, nch)
}
