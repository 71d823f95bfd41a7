//go:build !amd64 || purego

package vec

// Without assembly useFMA is always false and this is never called.
func gemvAsm(y, x, a *float32, k, lda, n int) {}
