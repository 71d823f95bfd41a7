//go:build amd64 && !purego

package vec

//go:noescape
func lerp64AVX2(dst, a, b *float32, n int, wa, wb float64)

func lerp64Asm(dst, a, b *float32, n int, wa, wb float64) { lerp64AVX2(dst, a, b, n, wa, wb) }
