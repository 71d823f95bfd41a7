//go:build !amd64 || purego

package gemm

// packA12 has no vector routine here: the caller packs in Go.
func packA12(dst, src []float32, lds, groups int) bool { return groups == 0 }
