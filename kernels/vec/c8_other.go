//go:build !amd64 || purego

package vec

// Without assembly useSIMD is always false and these are never called.
func interleave8Asm(dst *float32, pos *int, src *float32, chans *[8]int, n int) {}

func tapsC8Asm(dst *float32, stride int, src *float32, base, offs *int, w *float32, taps int, bias *float32, ep *Epilogue8, n, nch int) {
}

var hasC8x16 = false

func tapsC8x16Asm(dst *float32, stride int, src *float32, base int, offs *int, w *float32, taps int, bias *float32, ep *Epilogue8, n, nch int) {
}
