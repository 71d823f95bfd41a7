//go:build !amd64 || purego

package gemm

func kernels() []kernel { return []kernel{portableKernel} }

func packRows(dst, src []float32, kc, stride, nr int) bool { return false }

func packRow(dst, src []float32, panels, pstride, nr int) bool { return false }
