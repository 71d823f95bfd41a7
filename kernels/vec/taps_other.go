//go:build !amd64 || purego

package vec

// Without assembly simdLen is always 0 and this is never called.
func sumTapsAsm(dst, src *float32, offs *int, w *float32, taps, n int, bias float32) {}

func stride2Asm(dst, src *float32, n int) {}

func tapRowsAsm(dst, src *float32, offs *int, w *float32, taps, rows, cols, srcRow, sx int, bias float32, ep *Epilogue) {
}

func copyRowsAsm(dst *float32, dstRow int, src *float32, srcRow, rows, cols int) {}

func epilogueAsm(dst *float32, n int, ep *Epilogue) {}

func splitRowsAsm(a, b *float32, dstRow int, src *float32, srcRow, rows, cols int) {}

func tapRows3Asm(dst, src, w *float32, rows, cols, srcRow int, bias float32, ep *Epilogue) {}
