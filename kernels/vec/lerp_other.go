//go:build !amd64 || purego

package vec

func lerp64Asm(dst, a, b *float32, n int, wa, wb float64) {}
