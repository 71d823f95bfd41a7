//go:build !amd64 || purego

package gemm

// packPanel has no vector routine here: the caller packs in Go.
func packPanel(dst, src []float32, mr, lds, groups int) bool { return groups == 0 }
