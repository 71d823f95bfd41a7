//go:build amd64 && !purego

package vec

//go:noescape
func sumTapsAVX2(dst, src *float32, offs *int, w *float32, taps, n int, bias float32)

//go:noescape
func stride2AVX2(dst, src *float32, n int)

// Direct calls, not function values: escape analysis then sees the
// assembly's go:noescape, and the small accumulator and lane arrays the
// callers pass stay on the stack instead of one heap allocation per call.
func sumTapsAsm(dst, src *float32, offs *int, w *float32, taps, n int, bias float32) {
	sumTapsAVX2(dst, src, offs, w, taps, n, bias)
}
func stride2Asm(dst, src *float32, n int) { stride2AVX2(dst, src, n) }

//go:noescape
func tapRowsAVX2(dst, src *float32, offs *int, w *float32, taps, rows, cols, srcRow, sx int, bias float32, ep *Epilogue)

//go:noescape
func tapRows3AVX512(dst, src, w *float32, rows, cols, srcRow int, bias float32, ep *Epilogue)

func tapRows3Asm(dst, src, w *float32, rows, cols, srcRow int, bias float32, ep *Epilogue) {
	tapRows3AVX512(dst, src, w, rows, cols, srcRow, bias, ep)
}

//go:noescape
func tapRowsAVX512(dst, src *float32, offs *int, w *float32, taps, rows, cols, srcRow, sx int, bias float32, ep *Epilogue)

// tapRowsAsm takes the AVX-512 kernel on maps at least one 16-float vector
// wide (same bits as AVX2; narrower ones would store past their rows).
func tapRowsAsm(dst, src *float32, offs *int, w *float32, taps, rows, cols, srcRow, sx int, bias float32, ep *Epilogue) {
	if use512 && cols >= 16 {
		tapRowsAVX512(dst, src, offs, w, taps, rows, cols, srcRow, sx, bias, ep)
	} else {
		tapRowsAVX2(dst, src, offs, w, taps, rows, cols, srcRow, sx, bias, ep)
	}
}

//go:noescape
func copyRowsAVX2(dst *float32, dstRow int, src *float32, srcRow, rows, cols int)

func copyRowsAsm(dst *float32, dstRow int, src *float32, srcRow, rows, cols int) {
	copyRowsAVX2(dst, dstRow, src, srcRow, rows, cols)
}

//go:noescape
func epilogueAVX2(dst *float32, n int, ep *Epilogue)

func epilogueAsm(dst *float32, n int, ep *Epilogue) { epilogueAVX2(dst, n, ep) }

//go:noescape
func splitRowsAVX2(a, b *float32, dstRow int, src *float32, srcRow, rows, cols int)

func splitRowsAsm(a, b *float32, dstRow int, src *float32, srcRow, rows, cols int) {
	splitRowsAVX2(a, b, dstRow, src, srcRow, rows, cols)
}
