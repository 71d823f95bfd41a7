//go:build amd64 && !purego

package vec

//go:noescape
func maxAVX2(dst, a, b *float32, n int)

//go:noescape
func divAVX2(dst, a, b *float32, n int)

// Direct calls, not function values: escape analysis then sees the
// assembly's go:noescape, and the small accumulator and lane arrays the
// callers pass stay on the stack instead of one heap allocation per call.
func maxAsm(dst, a, b *float32, n int) { maxAVX2(dst, a, b, n) }
func divAsm(dst, a, b *float32, n int) { divAVX2(dst, a, b, n) }
