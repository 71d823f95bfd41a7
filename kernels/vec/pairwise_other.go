//go:build !amd64 || purego

package vec

// Without assembly simdLen is always 0 and these are never called.
func maxAsm(dst, a, b *float32, n int) {}
func divAsm(dst, a, b *float32, n int) {}
