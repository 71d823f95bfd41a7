//go:build amd64 && !purego

package vec

//go:noescape
func sumTapsAVX2(dst, src *float32, offs *int, w *float32, taps, n int, bias float32)

var sumTapsAsm = sumTapsAVX2

//go:noescape
func stride2AVX2(dst, src *float32, n int)

var stride2Asm = stride2AVX2
