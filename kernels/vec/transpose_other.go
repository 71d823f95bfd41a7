//go:build !amd64 || purego

package vec

// Without assembly simdLen is always 0 and this is never called.
func transpose8Asm(dst *float32, ldd int, src *float32, lds int, blocks int) {}
